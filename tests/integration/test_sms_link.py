#!/usr/bin/python3
# ctest: labels=integration;lab timeout=420
"""Received SMS must not cost the cellular data link (lab: the emulated ECM modem carrying
the default route through the real ModemManager and NetworkManager, one wired uplink, a
real mosquitto in the device namespace).

1. Cellular carries the traffic: five SMS arrive (two single ones, then a burst of three
   back to back). Every one reaches sms/in; the after-receive resync is deferred by
   resync-interval (the agent says so), so the modem is never disabled: the cellular uplink
   never leaves "up", no failover, no watchdog step, no sms-resync event, no AT+CFUN that
   powers the radio down.
2. The wired uplink takes over (cmd/uplink): the deferred resync runs at once. Then a burst
   whose notices ModemManager drops (no spacing) is found completely by the resync that
   follows, within a minute.
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

BASE = ct.uplink.BASE
TS = "2024-05-01T10:20:30+03:00"
# Disabling the modem: ModemManager's fibocom plugin powers the radio down (CFUN 0 or 4).
RADIO_OFF = re.compile(r"^AT\+CFUN=[04]\b", re.I)

lab = broker = None


def setUpModule():
    global lab, broker
    lab = ct.lab.Lab(personality="ecm", uplinks=1).start()
    lab.nm.wait_connected("eth1")
    ct.uplink.enable_ping_sockets(lab)
    broker = lab.start_broker()   # on the DUT's loopback: MQTT does not depend on the uplinks


def tearDownModule():
    lab.stop()


def sms_in(sub, sender):
    return [m["json"] for m in sub.matching(BASE + "/sms/in")
            if (m["json"] or {}).get("from") == sender]


def wait_sms_in(sub, sender, timeout=30):
    return ct.wait_until(lambda: sms_in(sub, sender), timeout, "sms/in from " + sender)


def radio_off_commands():
    return [c for c in lab.modem.commands() if RADIO_OFF.search(c["cmd"])]


class SmsOnCellular(unittest.TestCase):

    def test_sms_keep_the_cellular_link(self):
        settings = ct.uplink.agent_settings(lab, broker, {
            "wan1": {"connection": "uplink1", "priority": 20},
            "cellular": {"priority": 10}},
            health={"probes": "icmp:%s;dns:%s" % (ct.lab.INTERNET_PROBE, ct.lab.INTERNET_DNS)},
            extra={"sms": {"resync-delay": 3, "resync-interval": 3600, "receive-timeout": 10}})
        sub = ct.uplink.subscribe(broker)
        agent = ct.uplink.start_agent(lab, settings)
        self.addCleanup(ct.uplink.stop_agent, agent)
        ct.uplink.wait_link(sub, lambda l: l["active"] == "cellular" and
                     l["uplinks"]["cellular"]["state"] == "up" and
                     l["uplinks"]["wan1"]["state"] == "up", 90, "cellular in use, wan1 up")
        ct.wait_until(lambda: lab.net.route_dev() == "usb0", 10, "the default route via usb0")
        agent.wait_log(r"using the Messaging interface", timeout=30)

        # ---- 1. five SMS while cellular carries the traffic
        t0 = time.monotonic()
        radio_off = len(radio_off_commands())
        mark = len(sub.messages)
        singles = ["+254711000501", "+254711000502"]
        for i, s in enumerate(singles):
            lab.modem.deliver_sms("single %d" % i, sender=s, timestamp=TS)
            self.assertEqual(wait_sms_in(sub, s)[0]["text"], "single %d" % i)
        burst = ["+2547110005%02d" % (10 + i) for i in range(3)]
        lab.modem.deliver_burst([{"text": "burst %d" % i, "sender": s}
                                 for i, s in enumerate(burst)], spacing=1.0)
        for i, s in enumerate(burst):
            self.assertEqual(wait_sms_in(sub, s)[0]["text"], "burst %d" % i)
        # The after-receive resync came due and was put off, not run.
        agent.wait_log(r"re-reading the modem storage waits \d+ s: cellular carries the traffic",
                       timeout=30)
        ct.wait_until(lambda: not lab.modem.status()["storage"]["ME"]["indices"], 10,
                          "the modem's storage empty")
        for s in singles + burst:
            self.assertEqual(len(sms_in(sub, s)), 1, s)
        msgs = sub.messages[mark:]
        links = [m["json"] for m in msgs if m["topic"] == BASE + "/link" and m["json"]]
        for l in links:
            self.assertEqual((l["active"], l["uplinks"]["cellular"]["state"]), ("cellular", "up"), l)
        self.assertEqual(ct.uplink.link(sub)["uplinks"]["cellular"]["state"], "up")
        for bad in ("failover", "failback", "watchdog", "sms-resync", "uplink-down"):
            self.assertEqual(ct.uplink.events(sub, bad, after=t0), [], bad)
        self.assertEqual(radio_off_commands()[radio_off:], [])
        self.assertEqual(lab.net.route_dev(), "usb0")

        # ---- 2. the wired uplink takes the traffic: the resync that waited runs now
        t1 = time.monotonic()
        broker.publish(BASE + "/cmd/uplink", {"id": "to-wan1", "args": {"uplink": "wan1"}})
        ct.uplink.wait_link(sub, lambda l: l["active"] == "wan1", 30, "wan1 in use")
        ev = ct.uplink.wait_event(sub, "sms-resync", after=t1, timeout=30)
        self.assertEqual((ev["reason"], ev["ok"]), ("after-receive", True), ev)
        lab.mm.wait_state(["registered", "connected"], timeout=60)

        # A burst with no spacing: ModemManager drops most notices; a resync finds them.
        t2 = time.monotonic()
        dropped = ["+2547110006%02d" % i for i in range(8)]
        lab.modem.deliver_burst([{"text": "dropped %d" % i, "sender": s}
                                 for i, s in enumerate(dropped)], spacing=0)
        for i, s in enumerate(dropped):
            got = wait_sms_in(sub, s, timeout=60)
            self.assertEqual(got[0]["text"], "dropped %d" % i)
        self.assertLessEqual(time.monotonic() - t2, 60)
        ev = ct.uplink.wait_event(sub, "sms-resync", after=t2, timeout=10)
        self.assertTrue(ev["ok"], ev)
        # ModemManager really had dropped notices (else this proves nothing).
        self.assertGreater(ev["messages"], 0, ev)
        for s in dropped:
            self.assertEqual(len(sms_in(sub, s)), 1, s)


if __name__ == "__main__":
    ct.lab.main()
