#!/usr/bin/python3
# ctest: labels=integration;lab;memcheck timeout=300
"""Two wired uplinks and cellular (the ECM modem), all three up: the default route steps
down the priorities as they fail (carrier loss on wan1, then a silent blackhole on
wan2 moves it to cellular) and back up as they recover, each failback after hold-down."""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402
import cellagent_test.lab  # noqa: E402
import cellagent_test.uplink  # noqa: E402

lab = broker = None


def setUpModule():
    global lab, broker
    lab, broker = ct.uplink.start_lab(personality="ecm", broker="dut")


def tearDownModule():
    lab.stop()


class ThreeUplinks(unittest.TestCase):

    def test_step_down_and_back(self):
        settings = ct.uplink.agent_settings(lab, broker, {
            "wan1": {"connection": "uplink1", "priority": 10},
            "wan2": {"connection": "uplink2", "priority": 20},
            "cellular": {"priority": 30}})
        sub = ct.uplink.subscribe(broker)
        agent = ct.uplink.start_agent(lab, settings)
        hold = ct.uplink.FAST["hold-down"]
        try:
            l = ct.uplink.wait_link(sub, lambda l: l["active"] == "wan1" and all(
                u["state"] == "up" for u in l["uplinks"].values()), 60, "all three up")
            self.assertEqual(sorted(u["metric"] for u in l["uplinks"].values()), [100, 25030, 30010])
            self.assertEqual(l["uplinks"]["cellular"]["interface"], "usb0")
            watch = ct.uplink.RouteWatch(lab)

            t0 = time.monotonic()
            lab.net.carrier(1, False)
            print("wan1 carrier lost: route via eth2 after %.2f s" % (watch.wait_for("eth2", t0, 10) - t0))
            t1 = time.monotonic()
            lab.net.blackhole(2)
            t = watch.wait_for("usb0", t1, ct.uplink.silent_bound() + 5)
            print("wan2 blackholed: route via usb0 (cellular) after %.2f s" % (t - t1))
            self.assertLessEqual(t - t1, ct.uplink.switch_deadline())
            ct.uplink.wait_event(sub, "failover", lambda e: e["from"] == "wan2" and e["to"] == "cellular",
                                 after=t1, timeout=10)

            t2 = time.monotonic()
            lab.net.restore(2)
            up = ct.uplink.wait_event(sub, "uplink-up", lambda e: e["uplink"] == "wan2", after=t2, timeout=40)
            t_back = watch.wait_for("eth2", t2, 40)
            self.assertGreaterEqual(t_back - up["_rx"], hold - 0.5)
            t3 = time.monotonic()
            lab.net.restore(1)
            up = ct.uplink.wait_event(sub, "uplink-up", lambda e: e["uplink"] == "wan1", after=t3, timeout=40)
            t_back = watch.wait_for("eth1", t3, 40)
            self.assertGreaterEqual(t_back - up["_rx"], hold - 0.5)
            ct.uplink.wait_event(sub, "failback", lambda e: e["from"] == "wan2" and e["to"] == "wan1",
                                 after=t3, timeout=10)
            # Cellular stayed up (activate=always) and probed all along.
            self.assertEqual(ct.uplink.link(sub)["uplinks"]["cellular"]["state"], "up")
            watch.close()
        finally:
            self.assertEqual(ct.uplink.stop_agent(agent), 0)
            sub.close()
            lab.net.restore(1)
            lab.net.restore(2)


if __name__ == "__main__":
    ct.lab.main()
