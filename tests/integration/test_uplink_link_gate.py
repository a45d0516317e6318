#!/usr/bin/python3
# ctest: labels=integration;lab timeout=240
"""MQTT attempts only while some uplink may carry them (the uplink module's
"usable-changed" wired to ca_mqtt_set_link_available in agent.c).

One wired uplink in the device namespace, the broker in the "internet" namespace: the
uplink is the only path. With its carrier off before the agent starts, NetworkManager runs,
knows no default route and no uplink is usable: after at most the one attempt made before
the uplink module has its facts, the agent makes no connection attempt (no DNS, no SYN)
until the carrier is back; then it connects at once. The rule's other facts (no
NetworkManager, a broker on loopback: never gated) are unit-tested (test-settings-nm) and
kept by every test that runs the agent without NetworkManager or with a local broker.
"""
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402
import cellagent_test.lab  # noqa: E402
import cellagent_test.uplink  # noqa: E402

lab = broker = None
CONNECTING = re.compile(r"\[mqtt\] connecting to ")


def setUpModule():
    global lab, broker
    lab = ct.lab.Lab(personality=None, uplinks=1).start()
    lab.nm.wait_connected("eth1")
    ct.uplink.enable_ping_sockets(lab)
    broker = ct.uplink.inet_broker(lab)


def tearDownModule():
    lab.stop()


class LinkGate(unittest.TestCase):
    def setUp(self):
        self.agent = None
        ct.uplink.clear_retained(broker)
        self.sub = ct.uplink.subscribe(broker)

    def tearDown(self):
        rc = ct.uplink.stop_agent(self.agent)
        self.sub.close()
        lab.net.restore(1)
        if rc is not None:
            self.assertEqual(rc, 0, "agent exit code")

    def test_waits_for_a_usable_uplink(self):
        lab.net.carrier(1, False)
        ct.wait_until(lambda: lab.net.route_dev() is None, 30, "no route in the DUT")
        self.agent = ct.uplink.start_agent(lab, ct.uplink.agent_settings(
            lab, broker, {"wan1": {"connection": "uplink1", "priority": 10}}))
        self.agent.wait_log(r"\[mqtt\] uplink unavailable: no connection attempts", 30)
        self.agent.wait_log(r"\[mqtt\] .*waiting for the uplink", 10)
        log = self.agent.log_text()
        attempts = len(CONNECTING.findall(log))
        self.assertLessEqual(attempts, 1, "attempts before the uplink module knew")
        # Without the gate the backoff (1 s, doubling) would try three or four times here.
        time.sleep(10)
        self.assertEqual(len(CONNECTING.findall(self.agent.log_text())), attempts,
                         "connection attempts while no uplink is usable")
        t0 = time.monotonic()
        lab.net.carrier(1, True)
        self.agent.wait_log(r"\[mqtt\] uplink available", 40)
        ct.uplink.wait_link(self.sub, lambda l: l["uplinks"]["wan1"]["state"] in ("unknown", "up"), 40,
                     "the link published once connected")
        print("connected %.1f s after the carrier came back" % (time.monotonic() - t0))


if __name__ == "__main__":
    unittest.main(verbosity=2)
