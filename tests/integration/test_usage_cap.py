#!/usr/bin/python3
# ctest: labels=integration;lab timeout=600
"""The data plan's at-limit actions, end to end: the emulated ECM modem through the real
ModemManager and NetworkManager, a wired uplink (uplink1, eth1) and a broker reachable only
through the uplinks (198.51.100.20, "the internet"). cellular has the better priority. The
plan's limit (1 MB) is reached with cmd/usage-adjust; cmd/usage-override lifts the cap and
ending the override puts it back.

1. essential-only, cellular the only working uplink: NetworkManager gets the agent's routing
   rules; the broker and the cellular DNS server stay reachable through usb0 (commands still
   answer), the rest of the internet is unreachable; the override restores the default route.
2. next-uplink: traffic moves to eth1 at once (no hold-down); eth1 failing, cellular carries
   only the agent's traffic; eth1 back, traffic returns to it at once.
3. disconnect: the cellular connection is taken down and stays down; MQTT reconnects over
   eth1; an SMS still arrives and is published; the override brings cellular back.
"""
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402
import cellagent_test.lab  # noqa: E402
import cellagent_test.modem  # noqa: E402
import cellagent_test.uplink  # noqa: E402

BASE = ct.uplink.BASE
lab = broker = None


def setUpModule():
    global lab, broker
    lab = ct.lab.Lab(personality="ecm", uplinks=1).start()
    ct.uplink.enable_ping_sockets(lab)
    broker = ct.uplink.inet_broker(lab)


def tearDownModule():
    lab.stop()


def cap_rules():
    out = lab.net.ip(lab.net.dut, "rule").stdout
    return [l for l in out.splitlines() if l.split(":")[0].strip().isdigit()
            and 30200 <= int(l.split(":")[0]) <= 30299]


def cellular_active():
    return lab.nm.active_connections().get("cellular") is not None


class Cap(unittest.TestCase):

    def setUp(self):
        lab.net.carrier(1, True)
        ct.uplink.clear_retained(broker)
        self.sub = ct.uplink.subscribe(broker)
        self.agent = None

    def tearDown(self):
        rc = ct.uplink.stop_agent(self.agent)
        self.sub.close()
        lab.net.carrier(1, True)
        if not cellular_active():
            lab.nm.nmcli("connection", "up", "cellular", check=False)
        if rc is not None:
            self.assertEqual(rc, 0, "agent exit code")

    def start(self, at_limit):
        settings = ct.uplink.agent_settings(
            lab, broker,
            {"wan1": {"connection": "uplink1", "priority": 20},
             "cellular": {"priority": 10, "activate": "always"}},
            health={"probes": "icmp:%s;dns:%s" % (ct.lab.INTERNET_PROBE, ct.lab.INTERNET_DNS)},
            extra={"usage": {"sample-interval": 1, "publish-interval": 0, "timezone": "UTC"},
                   "plan-lab": {"iccid": lab.emu.identity["iccid"], "limit-mb": 1,
                                "at-limit": at_limit}})
        self.agent = ct.uplink.start_agent(lab, settings)
        ct.uplink.wait_link(self.sub, lambda l: l["active"] == "cellular"
                            and l["uplinks"]["cellular"]["state"] == "up", 60, "cellular in use")
        ct.wait_until(lambda: lab.net.route_dev() == "usb0", 15, "route via usb0")
        # The SIM is counted (usage commands need it).
        ct.wait_until(lambda: [m for m in self.sub.matching(BASE + "/usage")
                               if (m["json"] or {}).get("iccid")], 30, "usage of the SIM")

    def command(self, name, args=None):
        r = ct.modem.command(broker, self.sub, name, args, timeout=20)
        self.assertTrue(r["ok"], r)
        return r["result"]

    def reach_limit(self, action):
        u = self.command("usage-adjust", {"bytes": 2 * 1000 * 1000})
        self.assertEqual((u["state"], u["action"]), ("limit", action), u)
        ct.uplink.wait_event(self.sub, "usage-limit", lambda e: e["action"] == action, timeout=10)
        ct.uplink.wait_link(self.sub, lambda l: l.get("cap") == action, 10, "link cap " + action)

    def override(self, on):
        until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600)) if on else None
        u = self.command("usage-override", {"until": until})
        self.assertEqual(u["action"], "override" if on else u["action"], u)
        return u

    def assert_essential_only(self):
        ct.wait_until(lambda: len(cap_rules()) >= 4, 15, "the cap's routing rules")
        ct.wait_until(lambda: lab.net.route_dev(ct.lab.INTERNET_PROBE) is None, 10,
                      "the internet unreachable")
        self.assertEqual(lab.net.route_dev(ct.lab.INTERNET_BROKER), "usb0")
        self.assertEqual(lab.net.route_dev(ct.lab.INTERNET_DNS), "usb0")
        # The agent's own probe (bound to usb0) still has its path: cellular stays up.
        self.assertTrue(lab.net.ping(ct.lab.INTERNET_PROBE, iface="usb0"))
        # The management channel works: a command round trip through the broker.
        self.assertTrue(self.command("ping")["pong"])

    def test_1_essential_only(self):
        lab.net.carrier(1, False)  # cellular is the only working uplink
        self.start("essential-only")
        self.assertEqual(cap_rules(), [])
        self.reach_limit("essential-only")
        self.assert_essential_only()
        l = ct.uplink.link(self.sub)
        self.assertEqual((l["active"], l["uplinks"]["cellular"]["state"]), ("cellular", "up"))
        # Lifted: every rule gone, the default route through usb0 again.
        self.override(True)
        ct.wait_until(lambda: cap_rules() == [], 15, "the rules removed")
        self.assertEqual(lab.net.route_dev(ct.lab.INTERNET_PROBE), "usb0")
        # The override ended: capped again.
        self.override(False)
        self.assert_essential_only()

    def test_2_next_uplink(self):
        self.start("next-uplink")
        t0 = time.monotonic()
        self.reach_limit("next-uplink")
        ct.wait_until(lambda: lab.net.route_dev() == "eth1", 15, "route via eth1")
        print("next-uplink: traffic on eth1 %.1f s after the limit" % (time.monotonic() - t0))
        self.assertEqual(cap_rules(), [])
        self.assertTrue(cellular_active(), "cellular stays up as the last resort")
        # eth1 fails: cellular carries the traffic again, but only the agent's.
        lab.net.carrier(1, False)
        ct.uplink.wait_link(self.sub, lambda l: l["active"] == "cellular", 30, "cellular in use")
        self.assert_essential_only()
        # eth1 back: traffic returns to it as soon as it is up (no hold-down).
        t1 = time.monotonic()
        lab.net.carrier(1, True)
        ct.uplink.wait_link(self.sub, lambda l: l["active"] == "wan1", 40, "wan1 in use")
        ct.wait_until(lambda: lab.net.route_dev() == "eth1", 15, "route via eth1")
        ct.wait_until(lambda: cap_rules() == [], 15, "the rules removed")
        print("next-uplink: back on eth1 %.1f s after its carrier" % (time.monotonic() - t1))

    def test_3_disconnect(self):
        self.start("disconnect")
        self.reach_limit("disconnect")
        ct.wait_until(lambda: not cellular_active(), 20, "the cellular connection down")
        ct.uplink.wait_link(self.sub, lambda l: l["active"] == "wan1", 30, "wan1 in use")
        ct.wait_until(lambda: lab.net.route_dev() == "eth1", 15, "route via eth1")
        # MQTT over eth1, and SMS still arrive (the modem stays registered).
        self.assertTrue(self.command("ping")["pong"])
        lab.modem.deliver_sms("cap test", sender="+254700000777")
        ct.wait_until(lambda: [m for m in self.sub.matching(BASE + "/sms/in")
                               if (m["json"] or {}).get("text") == "cap test"], 60, "sms/in")
        # Still down after that round trip: nothing brought it back while the cap holds.
        l = ct.uplink.link(self.sub)
        self.assertEqual(l["uplinks"]["cellular"]["state"], "standby", l)
        self.assertFalse(cellular_active())
        # Lifted: the agent activates cellular again, and it takes the traffic back.
        self.override(True)
        ct.wait_until(cellular_active, 40, "the cellular connection up again")
        ct.uplink.wait_link(self.sub, lambda l: l["uplinks"]["cellular"]["state"] == "up", 60,
                            "cellular up")


if __name__ == "__main__":
    ct.lab.main()
