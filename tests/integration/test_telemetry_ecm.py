#!/usr/bin/python3
# ctest: labels=integration;lab timeout=240
"""Bearer telemetry end to end: the emulated Fibocom L610 in ECM mode (a real data path:
NetworkManager -> ModemManager -> the emulated modem -> DHCP on usb0), the agent and a real
mosquitto in the device namespace. A session brought up with nmcli shows in telemetry as
`bearer.connected` with its interface and its counters (ModemManager's, or the kernel's
when ModemManager has none), and as modem state
`connected`; bringing it down shows the reverse.
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402
import cellagent_test.lab  # noqa: E402
import cellagent_test.modem  # noqa: E402

lab = broker = sub = agent = None


def setUpModule():
    global lab, broker, sub, agent
    lab = ct.lab.Lab(personality="ecm").start()
    broker = lab.start_broker()
    sub = broker.subscribe("cellagent/#")
    agent = ct.modem.start_agent(lab, broker)


def tearDownModule():
    if agent and agent.alive():
        agent.stop()
    lab.stop()


class BearerTest(unittest.TestCase):

    def test_1_session_up_and_down(self):
        ct.modem.wait_telemetry(sub, ct.modem.state_is("registered"), timeout=40)
        mark = ct.modem.mark(sub)
        lab.nm.nmcli("connection", "up", "cellular")
        t = ct.modem.wait_telemetry(sub, lambda x: ct.modem.field(x, "bearer.connected") is True,
                                    timeout=30, since=mark)
        self.assertEqual(t["bearer"]["interface"], "usb0")
        ct.modem.wait_telemetry(sub, ct.modem.state_is("connected"), timeout=10, since=mark)
        ct.modem.wait_event(sub, "modem-state-changed", lambda e: e["to"] == "connected", 10, mark)
        info = ct.modem.mmcli_kv(lab, "-m", "any")
        bearer = info["modem.generic.bearers"]
        bearer = bearer[0] if isinstance(bearer, list) else bearer
        b = ct.modem.mmcli_kv(lab, "-b", bearer)
        self.assertEqual(b["bearer.status.connected"], "yes")
        self.assertEqual(b["bearer.status.interface"], t["bearer"]["interface"])
        # Counters are ModemManager's where it has them (mmcli prints 0 as "--"); this
        # modem counts no bytes, so they are the session's from the kernel's counters of
        # usb0 (docs/usage.md): never more than the interface's own. ModemManager counts
        # the duration itself every 30 s.
        res = ct.modem.command(broker, sub, "telemetry")["result"]["bearer"]
        for key, mm in (("rx_bytes", "bytes-rx"), ("tx_bytes", "bytes-tx")):
            value = b.get("bearer.stats." + mm)
            if value is not None and int(value) > 0:
                self.assertEqual(res[key], int(value), key)
                continue
            kernel = int(lab.run_in_dut(["cat", "/sys/class/net/usb0/statistics/" + key])
                         .stdout.strip())
            self.assertIsInstance(res[key], int, key)
            self.assertGreaterEqual(res[key], 0, key)
            self.assertLessEqual(res[key], kernel, key)
        self.assertIsInstance(res["duration"], (int, float))
        mark = ct.modem.mark(sub)
        lab.nm.nmcli("connection", "down", "cellular")
        t = ct.modem.wait_telemetry(sub, lambda x: ct.modem.field(x, "bearer.connected") is False,
                                    timeout=30, since=mark)
        self.assertIsNone(t["bearer"]["interface"])
        ct.modem.wait_telemetry(sub, ct.modem.state_is("registered"), timeout=10, since=mark)


if __name__ == "__main__":
    ct.lab.main()
