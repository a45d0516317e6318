#!/usr/bin/python3
"""Incoming packets are bounded under MQTT 3.1.1 too, plain and over TLS: a 40 MiB publish
on cmd/ping (the broker forwards anything: mosquitto's defaults have no size limit) makes
the agent close the connection before reading the body, with a log line naming the size;
its memory does not grow by the message (before the bound it grew from ~13 MB to ~135 MB,
past the unit's MemoryMax=64M); it reconnects with a clean session (mosquitto keeps the
packet in the session and would send it again at every reconnect), reports
mqtt-packet-too-large, and a normal command still works. A 900 kB command (under the 1 MiB bound) is still read."""
# ctest: labels=integration;mqtt timeout=180
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402

BASE = "cellagent/dev1"
BIG = 40 * 1024 * 1024


def vm_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def scenario(d, broker, settings, name):
    env = {"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=" + os.path.join(d, "no-bus")}
    agent = ct.Agent(d, settings, env=env, name=name)
    ct.on_failure(agent.dump_log)
    agent.start()
    sub = ct.Subscriber(broker.port, [f"{BASE}/cmd/+/result", f"{BASE}/events"], protocol="mqttv311")
    agent.wait_log(r"subscribed to \"cellagent/dev1/cmd/\+\"", timeout=20)
    pid = agent.proc.pid
    rss_before = vm_kb(pid, "VmRSS")

    # 40 MiB on a topic the agent reads, QoS 0 (not queued for it again after the cut).
    ct.publish(broker.port, f"{BASE}/cmd/ping", b"x" * BIG, qos=0)
    agent.wait_log(r"the broker sent a packet of \d+ bytes, more than the 1048576 the agent reads",
                   timeout=30)
    m = re.search(r"packet of (\d+) bytes", agent.log_text())
    assert int(m.group(1)) > BIG, m.group(0)
    ev = sub.wait_for(f"{BASE}/events",
                      lambda m: m["json"] and m["json"].get("type") == "mqtt-packet-too-large",
                      timeout=ct.scaled(20))[-1]["json"]
    assert ev["count"] == 1 and ev["largest_bytes"] > BIG and ev["limit_bytes"] == 1048576, ev
    # mosquitto keeps the packet in the device's session and would send it at every
    # reconnect: the agent started a clean session to be rid of it.
    assert ev["session_dropped"] is True, ev
    assert len(re.findall(r"packet of \d+ bytes", agent.log_text())) == 1, "sent again"
    grown_kb = vm_kb(pid, "VmHWM") - rss_before
    assert grown_kb < 16 * 1024, f"peak memory grew by {grown_kb} kB for a 40 MiB message"

    # Back online (the second connection): a command round trip, and a message under the
    # bound (900 kB, too large for a command) is still read whole and answered.
    ct.wait_until(lambda: len(re.findall(r'connected to \S+ as "dev1"', agent.log_text())) >= 2,
                  ct.scaled(20), "the agent connected again")
    ct.publish(broker.port, f"{BASE}/cmd/ping", '{"id":"p1"}', qos=1)
    r = sub.wait_for(f"{BASE}/cmd/ping/result",
                     lambda m: m["json"] and m["json"].get("id") == "p1", timeout=10)[-1]["json"]
    assert r["ok"] is True, r
    ct.publish(broker.port, f"{BASE}/cmd/ping", json.dumps({"id": "p2", "pad": "y" * 900000}), qos=1)
    r = sub.wait_for(f"{BASE}/cmd/ping/result",
                     lambda m: m["json"] and "payload too large (9000" in (m["json"].get("error") or ""),
                     timeout=10)[-1]["json"]
    assert r["ok"] is False, r
    assert agent.alive()
    sub.close()
    agent.stop()


def test():
    ct.need("mosquitto", "mosquitto_sub", "mosquitto_pub", "openssl")
    d = ct.run_dir()
    pki = ct.mqtt.make_pki(os.path.join(d, "pki"))
    tls_port = ct.free_port()
    broker = ct.Broker(d, extra_conf=(
        "user root\n"
        f"listener {tls_port} 127.0.0.1\n"
        f"cafile {pki['ca']}\ncertfile {pki['server_crt']}\nkeyfile {pki['server_key']}\n")).start()
    ct.on_failure(lambda: print(open(broker.log).read()[-3000:]))

    scenario(d, broker, {"mqtt": {"host": "127.0.0.1", "port": broker.port, "protocol": "3.1.1"}},
             "plain")
    scenario(d, broker, {"mqtt": {"host": "localhost", "port": tls_port, "protocol": "3.1.1",
                                  "tls": True, "ca-file": pki["ca"]}}, "tls")
    broker.stop()


if __name__ == "__main__":
    ct.main(test)
