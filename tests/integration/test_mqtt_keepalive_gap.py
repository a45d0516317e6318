#!/usr/bin/python3
"""The longest idle gap of the MQTT connection: after other traffic, the next PINGREQ leaves
at most keepalive + 10 s after the last packet (docs/mqtt.md, "The loop"). A carrier's NAT
drops idle mappings after as little as 5 minutes, and economy mode's keepalive (280 s) relies
on this bound (docs/economy.md). Before the bound, the agent polled libmosquitto every
keepalive/4 once other traffic had come and gone, so the PINGREQ could leave up to 1.25 x
keepalive after the last packet.

With keepalive 80 s: the connect at t0 arms the timer for t0 + 81 (right after the connect,
as right after a PINGREQ, both of libmosquitto's times are "now"); a command at about t0 + 5
(the broker's message and the agent's answer) moves libmosquitto's due time to t0 + 85, so
the call at t0 + 81 sends nothing and the timer polls: every 20 s before (the PINGREQ at
t0 + 101, 96 s after the command), every 10 s now (t0 + 91, 86 s after it). Labelled slow:
minutes of waiting on a timer, no code the sanitizer stage would see otherwise."""
# ctest: labels=integration;mqtt;slow timeout=300
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402

KEEPALIVE = 80


def pingreqs(broker):
    return len(re.findall(r"Received PINGREQ from dev1", broker.log_text()))


def test():
    ct.need("mosquitto", "mosquitto_sub")
    d = ct.run_dir()
    env = {"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=" + os.path.join(d, "no-bus")}
    broker = ct.Broker(d).start()
    ct.on_failure(lambda: print(broker.log_text()[-3000:]))
    sub = broker.subscribe("cellagent/dev1/cmd/+/result")
    agent = ct.Agent(d, {"mqtt": {"host": "127.0.0.1", "port": broker.port,
                                  "keepalive": KEEPALIVE},
                         "telemetry": {"interval": 0}},
                     env=env, wrapper=ct.mqtt.WRAPPER).start()
    ct.on_failure(agent.dump_log)
    # t0: the connect (its status is online within a second of it).
    ct.mqtt.wait_retained(broker.port, "cellagent/dev1/status",
                          lambda s: s.get("state") == "online")
    n0 = pingreqs(broker)
    time.sleep(4)
    broker.publish("cellagent/dev1/cmd/ping", {"id": "gap-1"})
    sub.wait_for("cellagent/dev1/cmd/ping/result",
                 lambda m: m["json"] and m["json"].get("id") == "gap-1", timeout=10)
    t_last = time.monotonic()  # the answer: the last packet before the idle gap
    assert pingreqs(broker) == n0 == 0, "a PINGREQ before the scenario started"
    ct.wait_until(lambda: pingreqs(broker) > n0, ct.scaled(2 * KEEPALIVE), "the first PINGREQ",
                  0.05)
    gap = time.monotonic() - t_last
    print("idle gap after the command: %.1f s (keepalive %d s)" % (gap, KEEPALIVE))
    assert gap <= KEEPALIVE + 10 + 2, "the PINGREQ left %.1f s after the last packet" % gap
    assert gap >= KEEPALIVE - 2, "a PINGREQ before the keepalive was due: %.1f s" % gap
    rc, _ = agent.stop()
    assert rc == 0


if __name__ == "__main__":
    ct.main(test)
