#!/usr/bin/python3
# ctest: name=lab-ecm labels=lab timeout=120
"""Lab self-test: the cellular data path through the emulated ECM modem.

ModemManager (fibocom plugin) and NetworkManager share the device namespace;
activating the seeded `gsm` profile gives a DHCP lease on usb0 and traffic to
the operator and the internet. The ECM controls (blackhole, operator link
down, session dropped with and without +CGEV) do what they claim, the network
grants a session only for its APN when one is set, and SMS work on this
personality too.
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402
import cellagent_test.lab  # noqa: E402

lab = None
GATEWAY = "10.201.100.1"
PROBE = ct.lab.INTERNET_PROBE


def setUpModule():
    global lab
    lab = ct.lab.Lab(personality="ecm").start()
    lab.mm.wait_state("registered", timeout=30)      # NetworkManager enables the modem


def tearDownModule():
    lab.stop()


def connect():
    """Activate the gsm profile; return the usb0 addresses."""
    lab.nm.nmcli("connection", "up", "cellular")
    return ct.wait_until(lambda: lab.net.addresses("usb0"), 15, "an address on usb0")


def cellular_active():
    return lab.nm.active_connections().get("cellular") is not None


class EcmTest(unittest.TestCase):

    def test_1_connect_lease_and_traffic(self):
        info = lab.mm.info()
        self.assertEqual(info["modem.generic.plugin"], "fibocom")
        self.assertEqual(sorted(info["modem.generic.ports"]), ["ttyUSB0 (at)", "usb0 (net)"])
        addrs = connect()
        self.assertTrue(addrs[0].startswith("10.201.100.1"), addrs)      # operator DHCP pool
        self.assertEqual(lab.mm.state(), "connected")
        self.assertTrue(lab.net.ping(GATEWAY))
        self.assertTrue(lab.net.ping(PROBE, iface="usb0"))
        self.assertEqual(lab.net.route_dev(PROBE), "usb0")
        lab.modem.wait_command(r"^AT\+GTRNDIS=1,1$", timeout=1)

    def test_2_blackhole_upstream(self):
        lab.modem.blackhole(True)
        self.assertFalse(lab.net.ping(PROBE, iface="usb0", timeout=1))
        self.assertTrue(lab.net.ping(GATEWAY))
        lab.modem.blackhole(False)
        self.assertTrue(lab.net.ping(PROBE, iface="usb0"))

    def test_3_operator_link_down(self):
        lab.modem.operator_link(False)
        self.assertFalse(lab.net.ping(GATEWAY, timeout=1))
        self.assertTrue(cellular_active())        # NetworkManager stays "connected"
        lab.modem.operator_link(True)
        ct.wait_until(lambda: lab.net.ping(GATEWAY, timeout=1), 10, "the gateway again")

    def test_4_session_dropped_silently(self):
        lab.modem.drop_session(notify=False)
        self.assertFalse(lab.net.ping(GATEWAY, timeout=1))
        self.assertEqual(lab.modem.status()["session"], False)
        lab.nm.nmcli("connection", "down", "cellular")
        connect()
        self.assertTrue(lab.net.ping(GATEWAY))

    def test_5_session_dropped_with_cgev(self):
        lab.modem.drop_session(notify=True)
        ct.wait_until(lambda: not cellular_active(), 10, "NetworkManager to drop the cellular connection")
        self.assertNotEqual(lab.mm.state(), "connected")

    def test_6_sms_on_ecm(self):
        lab.modem.deliver_sms("ECM SMS ok", sender="+254711000401")
        info = lab.mm.wait_received(lambda s: s.get("sms.content.number") == "+254711000401")
        self.assertEqual(info["sms.content.text"], "ECM SMS ok")

    def test_7_network_grants_only_its_apn(self):
        lab.nm.nmcli("connection", "down", "cellular", check=False)
        lab.modem.set(apn="only.this")
        try:
            self.assertRaises(ct.lab.LabError, lab.nm.nmcli, "connection", "up", "cellular",
                              timeout=90)
            self.assertFalse(cellular_active())
            events = lab.modem.dump()["events"]
            self.assertTrue(any(e["type"] == "session-rejected" and e["apn"] == "internet"
                                for e in events), events[-5:])
        finally:
            lab.modem.set(apn="")
        connect()
        self.assertTrue(any(e["type"] == "session-up" and e["apn"] == "internet"
                            for e in lab.modem.dump()["events"]))


if __name__ == "__main__":
    ct.lab.main()
