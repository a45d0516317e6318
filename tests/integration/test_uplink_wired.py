#!/usr/bin/python3
# ctest: labels=integration;lab timeout=420
"""Uplink failover with two wired uplinks (real NetworkManager 1.42 in namespaces).

The agent runs in the device namespace with uplink1 (priority 10) and uplink2 (20), and
talks to a broker in the "internet" namespace, so its MQTT connection goes through the
uplinks too. Each fault on the primary must move the kernel's default route
(`ip -n DUT route get`) to eth2 within its bound, publish the failover, and make MQTT
reconnect over eth2 at once; recovery must move it back only after hold-down. The
on-demand case checks that the backup is brought up only when needed.
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
HOLD = ct.uplink.FAST["hold-down"]
SLACK = 2.0  # the shared 2-core machine: scheduling, nft/ip calls, python polling


def setUpModule():
    global lab, broker
    lab, broker = ct.uplink.start_lab()


def tearDownModule():
    lab.stop()


class WiredFailover(unittest.TestCase):
    uplinks = {"wan1": {"connection": "uplink1", "priority": 10},
               "wan2": {"connection": "uplink2", "priority": 20}}

    def setUp(self):
        for i in (1, 2):
            lab.net.restore(i)
        lab.nm.nmcli("connection", "up", "uplink2", check=False)
        lab.nm.wait_connected("eth2")
        ct.uplink.clear_retained(broker)
        self.sub = ct.uplink.subscribe(broker)
        self.agent = None
        self.watch = None

    def tearDown(self):
        if self.watch:
            self.watch.close()
        rc = ct.uplink.stop_agent(self.agent)
        self.sub.close()
        for i in (1, 2):
            lab.net.restore(i)
        if rc is not None:
            self.assertEqual(rc, 0, "agent exit code")

    def start(self, uplinks=None, health=None):
        self.agent = ct.uplink.start_agent(lab, ct.uplink.agent_settings(lab, broker, uplinks or self.uplinks, health))
        ct.uplink.wait_link(self.sub, lambda l: l["active"] == "wan1" and l["uplinks"]["wan1"]["state"] == "up",
                            30, "wan1 active and up")
        ct.wait_until(lambda: lab.net.route_dev() == "eth1", 10, "route via eth1")
        self.watch = ct.uplink.RouteWatch(lab)

    def failover_then_failback(self, fault, bound, what):
        """Apply fault to uplink 1: the route moves within bound; then restore and check
        failback after hold-down. Returns the measured switch time."""
        t0 = time.monotonic()
        fault()
        t_switch = self.watch.wait_for("eth2", t0, bound + SLACK + 5)
        dt = t_switch - t0
        print("%s: default route on eth2 after %.2f s (bound %.1f s)" % (what, dt, bound))
        self.assertLessEqual(dt, bound + SLACK, "%s: switch too slow" % what)
        ev = ct.uplink.wait_event(self.sub, "failover", lambda e: e["to"] == "wan2", timeout=15)
        self.assertEqual(ev["from"], "wan1")
        self.assertIn("evidence", ev)
        down = ct.uplink.wait_event(self.sub, "uplink-down", lambda e: e["uplink"] == "wan1", timeout=5)
        self.assertTrue(down["reason"])
        ct.uplink.wait_link(self.sub, lambda l: l["active"] == "wan2" and l["uplinks"]["wan1"]["state"] == "down",
                            10, "link: wan2 active, wan1 down")
        # MQTT reconnected over eth2 at once (keepalive is 60 s): a new online status,
        # from eth2's address (the broker sees the new path).
        ct.wait_until(lambda: [m for m in self.sub.matching(ct.uplink.BASE + "/status")
                               if m.get("_rx", 0) > t0 and m["json"].get("state") == "online"],
                      5, "MQTT online again after the switch")
        with open(lab.log_path("mosquitto")) as f:
            self.assertIn("connected from 10.201.2.2", f.read())

        # Recovery: failback only after hold-down.
        t1 = time.monotonic()
        lab.net.restore(1)
        up = ct.uplink.wait_event(self.sub, "uplink-up", lambda e: e["uplink"] == "wan1", after=t1, timeout=60)
        t_back = self.watch.wait_for("eth1", t1, 60)
        held = t_back - up["_rx"]
        print("%s: wan1 up again; failback %.2f s later (hold-down %d s)" % (what, held, HOLD))
        self.assertGreaterEqual(held, HOLD - 0.5, "failback before hold-down")
        self.assertLessEqual(held, HOLD + SLACK, "failback late")
        fb = ct.uplink.wait_event(self.sub, "failback", lambda e: e["to"] == "wan1", after=t1, timeout=10)
        self.assertEqual(fb["from"], "wan2")
        return dt

    def test_carrier_loss(self):
        self.start()
        self.failover_then_failback(lambda: lab.net.carrier(1, False), 2.0, "carrier loss")

    def test_silent_blackhole(self):
        self.start()
        self.failover_then_failback(lambda: lab.net.blackhole(1), ct.uplink.silent_bound(), "blackhole")

    def test_reject(self):
        self.start()
        # Rejected probes fail at once (ICMP admin-prohibited, TCP reset): down-after
        # rounds back to back after the next scheduled probe.
        self.failover_then_failback(lambda: lab.net.reject(1),
                                    ct.uplink.FAST["interval"] + ct.uplink.FAST["down-after"] * ct.uplink.FAST["fast-interval"],
                                    "reject")

    def test_steady_link_not_republished(self):
        # report-interval=0 (FAST): <base>/link goes out only when something in it changes
        # beyond the per-round figures (RTT, loss, probe results, ages). Each publish is a
        # QoS 1 message and its PUBACK over the uplink: on cellular, that is money.
        self.start()
        ct.uplink.wait_link(self.sub, lambda l: l["uplinks"]["wan2"]["state"] == "up", 30, "wan2 up")
        rounds = r"(wan1|wan2): probe round ok"
        n0 = len(re.findall(rounds, self.agent.log_text()))
        links0 = len(self.sub.matching(ct.uplink.BASE + "/link"))
        ct.wait_until(lambda: len(re.findall(rounds, self.agent.log_text())) >= n0 + 10, 60,
                      "ten more probe rounds (interval %d s)" % ct.uplink.FAST["interval"])
        links = self.sub.matching(ct.uplink.BASE + "/link")[links0:]
        self.assertEqual(lab.net.route_dev(), "eth1")
        self.assertEqual(links, [], "link republished with nothing changed: %s" % links[:2])

    def test_on_demand_backup(self):
        uplinks = {"wan1": {"connection": "uplink1", "priority": 10},
                   "wan2": {"connection": "uplink2", "priority": 20, "activate": "on-demand"}}
        self.start(uplinks)
        # NetworkManager had brought uplink2 up by itself: the agent takes it down.
        ct.wait_until(lambda: "uplink2" not in lab.nm.active_connections(), 15,
                      "uplink2 deactivated (not needed)")
        ct.uplink.wait_link(self.sub, lambda l: l["uplinks"]["wan2"]["state"] == "standby", 10, "wan2 standby")
        t0 = time.monotonic()
        lab.net.carrier(1, False)
        t_switch = self.watch.wait_for("eth2", t0, 20)
        print("on-demand: uplink2 activated and carrying traffic %.2f s after carrier loss" % (t_switch - t0))
        self.assertIn("uplink2", lab.nm.active_connections())
        ct.uplink.wait_event(self.sub, "failover", lambda e: e["to"] == "wan2", timeout=15)
        t1 = time.monotonic()
        lab.net.restore(1)
        t_back = self.watch.wait_for("eth1", t1, 60)
        self.assertGreaterEqual(t_back - t1, HOLD, "failback before hold-down")
        ct.wait_until(lambda: "uplink2" not in lab.nm.active_connections(), 15,
                      "uplink2 taken down again after failback")
        ct.uplink.wait_link(self.sub, lambda l: l["active"] == "wan1" and l["uplinks"]["wan2"]["state"] == "standby",
                            10, "wan1 active, wan2 standby")

    def test_link_topic(self):
        self.start()
        ct.wait_until(lambda: (ct.uplink.link(self.sub) or {}).get("uplinks", {}).get("wan2", {}).get("rtt_ms"),
                      20, "link with probe results")
        l = ct.uplink.link(self.sub)
        w1, w2 = l["uplinks"]["wan1"], l["uplinks"]["wan2"]
        self.assertEqual((w1["device"], w1["interface"], w2["device"]), ("eth1", "eth1", "eth2"))
        self.assertEqual((w1["metric"], w2["metric"]), (100, 30010))
        self.assertEqual(w1["connectivity"], "full")
        self.assertIn(w1["loss"], (0, 0.0))
        self.assertGreater(w2["rtt_ms"], 0)
        self.assertTrue(w1["since"].endswith("Z"))
        self.assertEqual(w1["probes"][0]["target"], "icmp:" + ct.lab.INTERNET_PROBE)
        # Retained: a late subscriber gets it at once.
        late = ct.uplink.subscribe(broker)
        try:
            ct.wait_until(lambda: ct.uplink.link(late), 5, "retained link")
        finally:
            late.close()
        # ICMP went through an unprivileged ping socket (ping_group_range), not raw.
        self.agent.wait_log("ICMP probes use: unprivileged ping socket", 5)


if __name__ == "__main__":
    ct.lab.main()
