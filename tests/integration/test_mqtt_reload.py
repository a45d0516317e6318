#!/usr/bin/python3
"""Config reload and the connection's socket:
- the live socket has SO_KEEPALIVE, TCP_KEEPIDLE = 1.5 x keepalive (past the latest
  PINGREQ, so no TCP keepalive probe goes out next to every PINGREQ) and TCP_USER_TIMEOUT =
  2 x keepalive (read from the agent's own fd through pidfd_getfd);
- SIGHUP with [mqtt] unchanged keeps the connection, and so does one that changes only the
  queue limits;
- SIGHUP pointing [mqtt] at another broker: the old broker publishes the Will (offline, no
  DISCONNECT was sent), the new one gets online; a changed device id moves the base topic."""
# ctest: labels=integration;mqtt timeout=120
import ctypes
import os
import re
import signal
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402

SYS_pidfd_getfd = 438  # x86_64 and aarch64 (asm-generic)
TCP_USER_TIMEOUT = 18


def broker_socket_fd(pid, port):
    """The agent's established TCP socket to 127.0.0.1:port, duplicated into this process."""
    inodes = set()
    with open(f"/proc/{pid}/net/tcp") as f:
        for line in f.readlines()[1:]:
            cols = line.split()
            rport = int(cols[2].split(":")[1], 16)
            if rport == port and cols[3] == "01":  # ESTABLISHED
                inodes.add(cols[9])
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        m = re.match(r"socket:\[(\d+)\]", target)
        if m and m.group(1) in inodes:
            libc = ctypes.CDLL(None, use_errno=True)
            pidfd = os.pidfd_open(pid)
            try:
                dup = libc.syscall(SYS_pidfd_getfd, pidfd, int(fd), 0)
            finally:
                os.close(pidfd)
            if dup < 0:
                return None
            return dup
    raise AssertionError(f"no established socket to port {port} in /proc/{pid}")


def test():
    ct.need("mosquitto", "mosquitto_sub")
    d = ct.run_dir()
    env = {"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=" + os.path.join(d, "no-bus")}
    a = ct.Broker(d).start()
    b = ct.Broker(d)
    b.conf, b.log = os.path.join(d, "b.conf"), os.path.join(d, "b.log")
    b.start()
    ct.on_failure(lambda: print(open(a.log).read()[-2000:]))
    settings = {"mqtt": {"host": "127.0.0.1", "port": a.port, "keepalive": 20}}
    agent = ct.Agent(d, settings, env=env, wrapper=ct.mqtt.WRAPPER)
    ct.on_failure(agent.dump_log)
    agent.start()
    ct.mqtt.wait_retained(a.port, "cellagent/dev1/status", lambda s: s.get("state") == "online")

    fd = broker_socket_fd(agent.proc.pid, a.port)
    if fd is None:
        print("pidfd_getfd not permitted here: socket options not checked")
    else:
        s = socket.socket(fileno=fd)
        try:
            assert s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 30
            assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 5
            assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 4
            assert s.getsockopt(socket.IPPROTO_TCP, TCP_USER_TIMEOUT) == 40000
        finally:
            s.detach()
            os.close(fd)

    # Unchanged [mqtt]: no reconnect.
    agent.proc.send_signal(signal.SIGHUP)
    agent.wait_log(r"configuration reloaded")
    assert "broker settings changed" not in agent.log_text()

    # Only the queue limits: applied in place, still no reconnect.
    settings["mqtt"]["queue-limit"] = 500
    ct.write_config(agent.config, settings)
    agent.proc.send_signal(signal.SIGHUP)
    agent.wait_log(r"outbound queue limits now 500 messages")
    agent.wait_log(r"configuration reloaded(.|\n)*configuration reloaded")
    assert "broker settings changed" not in agent.log_text()

    # Another broker and another device id.
    ct.write_config(agent.config, {"agent": dict(agent.settings["agent"], **{"device-id": "dev7"}),
                                   "mqtt": {"host": "127.0.0.1", "port": b.port, "keepalive": 20}})
    agent.proc.send_signal(signal.SIGHUP)
    agent.wait_log(r"broker settings changed: reconnecting to 127\.0\.0\.1:%d, base topic \"cellagent/dev7\"" % b.port)
    ct.mqtt.wait_retained(b.port, "cellagent/dev7/status", lambda s: s.get("state") == "online")
    ct.mqtt.wait_retained(a.port, "cellagent/dev1/status", lambda s: s == {"state": "offline"})
    # Commands follow the new base.
    sub = ct.Subscriber(b.port, "cellagent/dev7/cmd/+/result")
    ct.publish(b.port, "cellagent/dev7/cmd/ping", '{"id":"after-reload"}')
    r = sub.wait_for("cellagent/dev7/cmd/ping/result", lambda m: m["json"] and m["json"].get("id") == "after-reload", 10)
    assert r[-1]["json"]["ok"] is True
    rc, _ = agent.stop()
    assert rc == 0
    ct.mqtt.wait_retained(b.port, "cellagent/dev7/status", lambda s: s == {"state": "offline"})


if __name__ == "__main__":
    ct.main(test)
