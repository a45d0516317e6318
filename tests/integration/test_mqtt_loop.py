#!/usr/bin/python3
"""libmosquitto in the GLib loop:
- mosquitto_connect_async from the external loop: through a proxy that holds the TCP
  connection for 2 s before passing bytes on, the client's loop keeps answering (stats
  within 0.5 s) while CONNECT waits, and the connection then completes;
- link gating: no attempts while the uplink is unavailable, an immediate one when it is back;
- reconnect_now: a new connection at once, online again, queued QoS 1 delivered;
- keepalive: mosquitto_loop_misc runs every keepalive/4 (not every second); at keepalive 5 s
  the broker keeps receiving PINGREQs and never drops the idle connection;
- idle: a connected agent (keepalive 60 s) wakes fewer than 0.2 times a second (docs/benchmarks.md):
  voluntary context switches of its main thread and CPU time over 20 s (printed; the figures
  are in docs/mqtt.md)."""
# ctest: labels=integration;mqtt timeout=120
import os
import re
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402


class SlowProxy:
    """Accepts on a free port, waits hold seconds, then relays to the broker."""

    def __init__(self, target_port, hold):
        self.target_port, self.hold = target_port, hold
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.accepted = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _pipe(self, a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.set()
            time.sleep(self.hold)  # the proxy's own behaviour, not the test waiting
            u = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pipe, args=(c, u), daemon=True).start()
            threading.Thread(target=self._pipe, args=(u, c), daemon=True).start()


def ctxt_switches(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"voluntary_ctxt_switches:\s+(\d+)", f.read()).group(1))


def test():
    ct.need("mosquitto", "mosquitto_sub", "dbus-daemon")
    d = ct.run_dir()
    broker = ct.Broker(d).start()
    ct.on_failure(lambda: print(open(broker.log).read()[-2000:]))

    # connect_async through a proxy that sits on the connection for 2 s.
    proxy = SlowProxy(broker.port, hold=2.0)
    drv = ct.mqtt.Driver(d, {"mqtt": {"host": "127.0.0.1", "port": proxy.port, "keepalive": 10}})
    ct.on_failure(drv.dump)
    drv.send("start")
    assert proxy.accepted.wait(5), "no TCP connection"
    for _ in range(3):
        t0 = time.monotonic()
        st = drv.stats()
        took = time.monotonic() - t0
        assert took < 0.5, f"the loop took {took:.2f} s to answer while connecting"
        assert not st["connected"], st
    drv.expect(r"^connected$", 10)
    text = drv.log_text()
    assert "state: stopped -> connecting" in text
    assert "blocked the main loop" not in text
    t_connecting = re.search(r"(\d\d):(\d\d):(\d\d\.\d+) \S+ +\[mqtt\] connecting to", text).groups()
    t_connected = re.search(r"(\d\d):(\d\d):(\d\d\.\d+) \S+ +\[mqtt\] connected to", text).groups()
    secs = lambda g: int(g[0]) * 3600 + int(g[1]) * 60 + float(g[2])  # noqa: E731
    assert secs(t_connected) - secs(t_connecting) >= 1.5, "CONNACK came before the proxy passed anything on"
    assert drv.close() == 0

    # Link gating and reconnect_now, directly against the broker.
    drv = ct.mqtt.Driver(d, {"mqtt": {"host": "127.0.0.1", "port": broker.port}}, name="driver2")
    ct.on_failure(drv.dump)
    drv.send("link 0")
    drv.send("start")
    st = drv.stats()
    assert not st["connected"] and "connecting to" not in drv.log_text(), "attempted without a link"
    drv.send("link 1")
    drv.expect(r"^connected$", 5)
    sub = ct.Subscriber(broker.port, "cellagent/dev1/#")
    ct.wait_until(lambda: sub.matching("cellagent/dev1/status"), 10, "subscriber ready")
    drv.send("reconnect")
    drv.expect(r"^disconnected$", 5)
    drv.send('pub r1 events 1 0 normal {"tag":"r1"}')
    drv.expect(r"^connected$", 5, count=2)
    drv.expect(r"^done r1 ok$", 10)
    sub.wait_for("cellagent/dev1/events", lambda m: m["json"] and m["json"].get("tag") == "r1", 10)
    assert len(sub.matching("cellagent/dev1/status", lambda m: m["json"].get("state") == "online")) >= 2
    assert drv.close() == 0

    # Keepalive: PINGREQs keep an otherwise silent connection alive.
    log_start = len(open(broker.log, errors="replace").read())
    drv = ct.mqtt.Driver(d, {"mqtt": {"host": "127.0.0.1", "port": broker.port, "keepalive": 5}},
                         name="driver3")
    ct.on_failure(drv.dump)
    drv.send("start")
    drv.expect(r"^connected$", 5)

    def broker_since():
        return open(broker.log, errors="replace").read()[log_start:]
    ct.wait_until(lambda: broker_since().count("Received PINGREQ from dev1") >= 3, ct.scaled(40),
                  "three PINGREQs from the idle client")
    # Steady state: after a PINGREQ the keepalive timer sleeps until the next one can be due
    # (keepalive + 1 s), so a keepalive period costs the driver's main thread about two
    # wakeups (that timer, the PINGRESP); polling every keepalive/4 would cost five or more.
    if not ct.mqtt.WRAPPER:  # under valgrind its own scheduler wakes the thread
        n0 = broker_since().count("Received PINGREQ from dev1")
        sw0 = ctxt_switches(drv.proc.pid)
        ct.wait_until(lambda: broker_since().count("Received PINGREQ from dev1") >= n0 + 3,
                      ct.scaled(40), "three more PINGREQs")
        per_ping = (ctxt_switches(drv.proc.pid) - sw0) / 3
        print(f"keepalive 5 s: {per_ping:.1f} wakeups of the driver's main thread per PINGREQ")
        assert per_ping <= 3.5, f"{per_ping:.1f} wakeups per keepalive period"
    assert "exceeded timeout" not in broker_since(), broker_since()[-2000:]
    assert len(drv.matching(r"^connected$")) == 1 and not drv.matching(r"^disconnected$"), \
        "the idle connection was dropped"
    assert drv.close() == 0

    # Idle: a connected agent on a private "system" bus (so it is not retrying the bus).
    bus_path = os.path.join(d, "system_bus_socket")
    bus = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--nopidfile",
                            f"--address=unix:path={bus_path}"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    ct.at_exit(lambda: bus.poll() is None and bus.terminate())
    ct.wait_until(lambda: os.path.exists(bus_path), 10, "the private bus")
    env = {"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=" + bus_path}
    agent = ct.Agent(d, {"mqtt": {"host": "127.0.0.1", "port": broker.port}}, env=env, args=["--log-level", "info"], wrapper=ct.mqtt.WRAPPER)
    ct.on_failure(agent.dump_log)
    agent.start()
    ct.mqtt.wait_retained(broker.port, "cellagent/dev1/status", lambda s: s.get("state") == "online")
    # Both D-Bus adapters have looked at the bus and settled into waiting.
    agent.wait_log(r"\[uplink\] connected to NetworkManager \(not running yet\)")
    agent.wait_log(r"waiting for ModemManager on the system bus")
    pid = agent.proc.pid
    sw0, cpu0, t0 = ctxt_switches(pid), ct.cpu_seconds(pid), time.monotonic()
    time.sleep(20)  # the measurement window itself
    sw1, cpu1, t1 = ctxt_switches(pid), ct.cpu_seconds(pid), time.monotonic()
    wakeups = (sw1 - sw0) / (t1 - t0)
    print(f"idle connected agent: {sw1 - sw0} wakeups of the main thread in {t1 - t0:.1f} s "
          f"({wakeups:.2f}/s), CPU {cpu1 - cpu0:.3f} s ({(cpu1 - cpu0) / (t1 - t0):.3%})")
    # Right after connecting: the keepalive timer first fires keepalive + 1 s (61 s) after the
    # connect call, so nothing of the MQTT module wakes the agent in this window.
    assert wakeups < 0.2, f"{wakeups:.2f} wakeups/s"
    assert (cpu1 - cpu0) / (t1 - t0) < 0.005
    rc, _ = agent.stop()
    assert rc == 0
    broker.stop()


if __name__ == "__main__":
    ct.main(test)
