#!/usr/bin/python3
"""Broker stopped and restarted on the same port: the client backs off (growing delays),
reconnects within the delay it announced, publishes online again, and QoS 1 messages
published while the broker was down arrive exactly once, each completing on its PUBACK.
With a persistent session (default session-expiry) the broker resumes it and the
subscriptions are kept; with session-expiry=0 (set by a config reload, which reconnects) the
session is new and the client subscribes again. Commands arrive in both cases."""
# ctest: labels=integration;mqtt timeout=180
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402

BASE = "cellagent/dev1"


def delays(drv):
    return [float(x) for x in re.findall(r"reconnecting to \S+ in ([0-9.]+) s", drv.log_text())]


def restart_round(d, broker, drv, sub, tag, n, expect_session):
    connects_before = len(drv.matching(r"^connected$"))
    disconnects_before = len(drv.matching(r"^disconnected$"))
    fails_before = len(re.findall(r"connection to \S+ failed", drv.log_text()))
    broker.stop()
    drv.expect(r"^disconnected$", 15, count=disconnects_before + 1)
    for i in range(n):
        drv.send(f'pub {tag}{i} events 1 0 normal {{"tag":"{tag}","n":{i}}}')
    # Let the client fail a few times so the backoff grows.
    ct.wait_until(lambda: len(re.findall(r"connection to \S+ failed", drv.log_text())) >= fails_before + 3,
                  30, "three failed attempts")
    st = drv.stats()
    assert not st["connected"] and st["queue"] >= n, st
    assert not drv.matching(rf"^done {tag}"), "completed while the broker was down"
    d_round = delays(drv)[-3:]
    assert d_round[-1] > d_round[0], f"no backoff growth: {d_round}"

    broker.start()
    t0 = time.monotonic()
    drv.expect(r"^connected$", 60, count=connects_before + 1)
    took = time.monotonic() - t0
    bound = max(delays(drv)[-4:]) + 2.0
    assert took <= bound, f"reconnected {took:.1f} s after the broker came back (bound {bound:.1f} s)"
    print(f"{tag}: reconnected {took:.2f} s after the broker restart; delays {delays(drv)}")
    last = re.findall(r"session (new|resumed)\)", drv.log_text())[-1]
    assert last == ("resumed" if expect_session else "new"), f"session {last}"

    # Every message completes on its PUBACK and arrives exactly once.
    for i in range(n):
        drv.expect(rf"^done {tag}{i} ok$", 20)
    drv.send(f'pub {tag}-marker events 1 0 normal {{"tag":"{tag}-marker"}}')
    drv.expect(rf"^done {tag}-marker ok$", 20)
    sub.wait_for(f"{BASE}/events", lambda m: m["json"] and m["json"].get("tag") == f"{tag}-marker", 20)
    got = [m["json"]["n"] for m in sub.matching(f"{BASE}/events", lambda m: m["json"] and m["json"].get("tag") == tag)]
    assert sorted(got) == list(range(n)), f"{tag}: received {sorted(got)}"
    ct.mqtt.wait_retained(broker.port, f"{BASE}/status", lambda s: s.get("state") == "online")

    # Subscriptions work after the reconnect (kept in the session, or made again).
    ct.publish(broker.port, f"{BASE}/cmd/x", '{"id":"%s"}' % tag)
    drv.expect(r'^msg cmd/x \{"id":"%s"\}$' % tag, 10)


def test():
    ct.need("mosquitto", "mosquitto_sub", "mosquitto_pub")
    d = ct.run_dir()
    # Persistence: the subscriber's and the client's sessions survive a broker restart.
    broker = ct.Broker(d, extra_conf=f"user root\npersistence true\npersistence_location {d}/\n").start()
    ct.on_failure(lambda: print(open(broker.log).read()[-3000:]))
    sub = ct.Subscriber(broker.port, f"{BASE}/#", protocol="mqttv311", extra_args=["-c", "-i", "backend"])
    drv = ct.mqtt.Driver(d, {"mqtt": {"host": "127.0.0.1", "port": broker.port, "keepalive": 10}})
    ct.on_failure(drv.dump)
    drv.send("sub cmd/+")
    drv.send("start")
    drv.expect(r"^connected$", 15)
    ct.mqtt.wait_retained(broker.port, f"{BASE}/status", lambda s: s.get("state") == "online")
    restart_round(d, broker, drv, sub, "p", 50, expect_session=True)

    # session-expiry=0 (clean session each connect), applied by a reload (which reconnects):
    # the broker has no session for the client after the restart, so it subscribes again.
    settings = {"agent": {"device-id": "dev1", "state-dir": os.path.join(d, "state")},
                "mqtt": {"host": "127.0.0.1", "port": broker.port, "keepalive": 10, "session-expiry": 0}}
    ct.write_config(drv.config, settings)
    drv.send(f"reload {drv.config}")
    drv.expect(r"^reloaded$")
    drv.expect(r"^connected$", 20, count=3)
    restart_round(d, broker, drv, sub, "q", 20, expect_session=False)
    assert drv.close() == 0


if __name__ == "__main__":
    ct.main(test)
