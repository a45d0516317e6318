#!/usr/bin/python3
# ctest: name=lab-uplinks labels=lab timeout=120
"""Lab self-test: NetworkManager in the device namespace with two ISP uplinks.

NetworkManager activates both uplinks (DHCP and static), the kernel's default
route follows the primary, moves to the backup when the primary loses carrier
and comes back; the fault injectors (blackhole, reject, DHCP server gone)
have the effect they claim; probe targets answer through the DUT.
"""

import os
import socket
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402
import cellagent_test.lab  # noqa: E402

lab = None
PROBE = ct.lab.INTERNET_PROBE


def setUpModule():
    global lab
    lab = ct.lab.Lab(personality=None, uplinks=2).start()
    lab.nm.wait_connected("eth1")
    lab.nm.wait_connected("eth2")


def tearDownModule():
    lab.stop()


def tcp_result(iface):
    """'ok', 'refused' or 'timeout' for an HTTP connect to the probe via iface."""
    code = ("import socket,sys\n"
            "s=socket.socket(); s.settimeout(2)\n"
            "s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b'%s')\n"
            "try:\n s.connect(('%s',80)); print('ok')\n"
            "except ConnectionRefusedError: print('refused')\n"
            "except OSError: print('timeout')\n" % (iface, PROBE))
    return lab.run_in_dut([ct.lab.PY, "-c", code]).stdout.strip()


class UplinkTest(unittest.TestCase):

    def test_1_uplinks_active(self):
        conns = lab.nm.active_connections()
        self.assertEqual((conns.get("uplink1"), conns.get("uplink2")), ("eth1", "eth2"))
        self.assertTrue(lab.net.addresses("eth1")[0].startswith("10.201.1.1"))     # DHCP pool
        self.assertEqual(lab.net.addresses("eth2"), ["10.201.2.2/24"])            # static
        self.assertEqual(lab.net.route_dev(PROBE), "eth1")

    def test_2_probe_targets(self):
        self.assertTrue(lab.net.ping(PROBE))
        body = lab.run_in_dut([ct.lab.PY, "-c", "import urllib.request;"
                               "print(urllib.request.urlopen('http://probe.lab/check',timeout=5).read().decode())"])
        self.assertEqual(body.stdout.strip(), "OK")
        self.assertEqual(tcp_result("eth2"), "ok")

    def test_3_failover_on_carrier_loss(self):
        lab.net.carrier(1, False)
        ct.wait_until(lambda: lab.net.route_dev(PROBE) == "eth2", 15, "default route via eth2")
        self.assertTrue(lab.net.ping(PROBE))
        lab.net.restore(1)
        ct.wait_until(lambda: lab.net.route_dev(PROBE) == "eth1", 20, "default route back on eth1")

    def test_4_fault_injectors(self):
        lab.net.blackhole(1)
        self.assertEqual(tcp_result("eth1"), "timeout")
        self.assertFalse(lab.net.ping(PROBE, iface="eth1", timeout=1))
        lab.net.reject(1)
        self.assertEqual(tcp_result("eth1"), "refused")
        lab.net.loss(1, 100)
        self.assertFalse(lab.net.ping(PROBE, iface="eth1", timeout=1))
        lab.net.restore(1)
        self.assertEqual(tcp_result("eth1"), "ok")
        lab.net.dhcp_server(1, False)
        self.assertNotIn(1, lab.net.dnsmasq)
        lab.net.dhcp_server(1, True)
        self.assertTrue(lab.net.dnsmasq[1].alive())


if __name__ == "__main__":
    ct.lab.main()
