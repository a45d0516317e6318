#!/usr/bin/python3
# ctest: labels=integration;lab;slow timeout=480
"""DHCP server gone on the primary (docs/lab.md): NetworkManager 1.42 keeps the
lease until it expires, then drops the route, fails the device and, after its
autoconnect retries, never tries again by itself. The agent must fail over when the
address goes, and bring uplink1 back (re-activation) once DHCP answers again, then fail
back after hold-down. (Until the lease expires the path works: nothing to detect.)
The ISP's DHCP server is replaced by one with dnsmasq's shortest
lease (2 min) so that this takes about four minutes instead of an hour.
"""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402
import cellagent_test.lab  # noqa: E402
import cellagent_test.uplink  # noqa: E402

lab = broker = None
UPLINKS = {"wan1": {"connection": "uplink1", "priority": 10},
           "wan2": {"connection": "uplink2", "priority": 20}}


def setUpModule():
    global lab, broker
    lab, broker = ct.uplink.start_lab()


def tearDownModule():
    lab.stop()


def short_lease_dhcp():
    """ISP1's DHCP server with 2-minute leases (a recorded lab process)."""
    net, ns = lab.net, lab.net.isp(1)
    return lab.spawn("dhcp-isp1-short", [
        "ip", "netns", "exec", ns, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
        "--port=0", "--bind-dynamic", "--interface=lan", "--no-ping", "--user=root", "--pid-file=",
        "--dhcp-range=10.201.1.100,10.201.1.150,255.255.255.0,2m",
        "--dhcp-option=option:router,10.201.1.1",
        "--dhcp-option=option:dns-server,%s" % ct.lab.INTERNET_DNS,
        "--dhcp-leasefile=" + os.path.join(lab.run_dir, "net", "short.leases"),
        "--log-dhcp", "--log-facility=-"], in_dut=False)


class DhcpGone(unittest.TestCase):

    def test_dhcp_server_gone(self):
        lab.net.dhcp_server(1, False)
        dhcp = short_lease_dhcp()
        lab.nm.nmcli("connection", "up", "uplink1")
        lab.nm.wait_connected("eth1")
        ct.uplink.clear_retained(broker)
        sub = ct.uplink.subscribe(broker)
        agent = ct.uplink.start_agent(lab, ct.uplink.agent_settings(lab, broker, UPLINKS))
        try:
            ct.uplink.wait_link(sub, lambda l: l["active"] == "wan1" and l["uplinks"]["wan1"]["state"] == "up",
                                30, "wan1 active and up")
            watch = ct.uplink.RouteWatch(lab)
            t0 = time.monotonic()
            dhcp.stop()
            # The lease runs out (renew at 60 s, rebind at 105 s, expiry at 120 s).
            t_route = watch.wait_for("eth2", t0, 200)
            ev = ct.uplink.wait_event(sub, "failover", lambda e: e["to"] == "wan2", after=t0, timeout=30)
            print("DHCP gone: route via eth2 after %.0f s, failover event %.1f s after that (%s)"
                  % (t_route - t0, ev["_rx"] - t_route, ev["reason"]))
            self.assertLessEqual(ev["_rx"] - t_route, ct.uplink.switch_deadline())
            # NetworkManager alone would fail the device and give up after its retries; the
            # agent keeps re-activating it (its DHCP transaction runs up to 45 s each time).
            ct.uplink.wait_event(sub, "watchdog", lambda e: e["uplink"] == "wan1" and e["step"] == "reactivate",
                                 after=t_route, timeout=30)
            t1 = time.monotonic()
            dhcp = short_lease_dhcp()
            up = ct.uplink.wait_event(sub, "uplink-up", lambda e: e["uplink"] == "wan1", after=t1, timeout=150)
            acts = [e for e in ct.uplink.events(sub, "watchdog", after=t0) if e["step"] == "reactivate"]
            print("DHCP back: wan1 up %.1f s later (%d watchdog re-activations while it was gone)"
                  % (up["_rx"] - t1, len(acts)))
            self.assertIn("uplink1", lab.nm.active_connections())
            t_back = watch.wait_for("eth1", t1, 60)
            self.assertGreaterEqual(t_back - up["_rx"], ct.uplink.FAST["hold-down"] - 0.5)
            watch.close()
        finally:
            self.assertEqual(ct.uplink.stop_agent(agent), 0)
            sub.close()
            dhcp.stop()
            lab.net.dhcp_server(1, True)


if __name__ == "__main__":
    ct.lab.main()
