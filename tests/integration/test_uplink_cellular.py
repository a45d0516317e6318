#!/usr/bin/python3
# ctest: labels=integration;lab;slow timeout=600
"""Cellular as the only uplink: the emulated ECM modem (fibocom plugin) through the real
ModemManager 1.20 and NetworkManager 1.42, data over usb0 to the "operator" namespace.

The agent must bring the gsm profile up itself, and bring it back after every failure
the network can cause: a data session dropped with and without notice, the operator
link going down, registration lost (the watchdog's steps in order, with their
cooldowns, seen in the emulator's command log, in events and in the records of the
power-cycle and reboot commands), NetworkManager's autoconnect blocked after its
retries, a ModemManager restart while cellular carries traffic, and a password file
others can read (refused; the connection is created once it is fixed and reloaded).
"""
import os
import re
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402
import cellagent_test.lab  # noqa: E402
import cellagent_test.uplink  # noqa: E402

lab = broker = None
WD = {"start-after": 4, "reactivate-cooldown": 4, "modem-reset-cooldown": 8,
      "power-cycle-cooldown": 8, "reboot-cooldown": 8, "reboot": True}


def setUpModule():
    global lab, broker
    lab = ct.lab.Lab(personality="ecm").start()
    ct.uplink.enable_ping_sockets(lab)
    broker = lab.start_broker()   # on the DUT's loopback: events arrive while cellular is down


def tearDownModule():
    lab.stop()


def connected():
    return lab.nm.active_connections().get("cellular") is not None and \
        (lab.nm.device_state("ttyUSB0") or "").startswith("100")


class Cellular(unittest.TestCase):

    def setUp(self):
        ct.uplink.clear_retained(broker)
        self.sub = ct.uplink.subscribe(broker)
        self.records = os.path.join(lab.run_dir, "records-%s" % self._testMethodName)
        os.makedirs(self.records, exist_ok=True)
        wd = dict(WD)
        wd["power-cycle-command"] = "/bin/sh -c 'date +%%s.%%N >> %s/power-cycle'" % self.records
        wd["reboot-command"] = "/bin/sh -c 'date +%%s.%%N >> %s/reboot'" % self.records
        self.settings = {"agent": {"device-id": "dev1"},
                         "mqtt": {"host": broker.host, "port": broker.port},
                         "health": dict(ct.uplink.FAST, probes="icmp:%s;dns:%s" % (ct.lab.INTERNET_PROBE,
                                                                                   ct.lab.INTERNET_DNS)),
                         "watchdog": wd}
        self.agent = None

    def tearDown(self):
        rc = ct.uplink.stop_agent(self.agent)
        self.sub.close()
        lab.modem.set_registration(stat="home")
        if rc is not None:
            self.assertEqual(rc, 0, "agent exit code")

    def start_and_wait_up(self):
        self.agent = ct.uplink.start_agent(lab, self.settings)
        ct.uplink.wait_link(self.sub, lambda l: l["uplinks"]["cellular"]["state"] == "up", 40, "cellular up")
        ct.wait_until(lambda: lab.net.route_dev() == "usb0", 10, "route via usb0")

    def wait_recovered(self, after, timeout):
        up = ct.uplink.wait_event(self.sub, "uplink-up", lambda e: e["uplink"] == "cellular", after=after,
                                  timeout=timeout)
        ct.wait_until(connected, 10, "cellular connected in NetworkManager")
        self.assertTrue(lab.net.ping(ct.lab.INTERNET_PROBE, iface="usb0"))
        return up

    def test_1_brings_up_the_profile(self):
        # The lab's gsm profile has autoconnect=false: nothing brings it up but the agent.
        self.assertFalse(connected())
        self.start_and_wait_up()
        l = ct.uplink.link(self.sub)
        c = l["uplinks"]["cellular"]
        self.assertEqual((l["active"], c["type"], c["device"], c["interface"]),
                         ("cellular", "cellular", "ttyUSB0", "usb0"))
        self.assertGreater(c["rtt_ms"], 0)
        ct.uplink.wait_event(self.sub, "uplink-selected", lambda e: e["to"] == "cellular", timeout=5)

    def test_2_session_dropped_with_notice(self):
        self.start_and_wait_up()
        t0 = time.monotonic()
        lab.modem.drop_session(notify=True)
        down = ct.uplink.wait_event(self.sub, "uplink-down", lambda e: e["uplink"] == "cellular", after=t0,
                                    timeout=15)
        print("session drop (+CGEV): down after %.2f s: %s" % (down["_rx"] - t0, down["reason"]))
        up = self.wait_recovered(t0, 40)
        print("session drop (+CGEV): back up after %.2f s" % (up["_rx"] - t0))

    def test_3_session_dropped_silently(self):
        self.start_and_wait_up()
        t0 = time.monotonic()
        lab.modem.drop_session(notify=False)
        down = ct.uplink.wait_event(self.sub, "uplink-down", lambda e: e["uplink"] == "cellular", after=t0,
                                    timeout=ct.uplink.silent_bound() + 10)
        print("silent session drop: down after %.2f s: %s" % (down["_rx"] - t0, down["reason"]))
        self.wait_recovered(t0, 60)

    def test_4_operator_link_down(self):
        self.start_and_wait_up()
        t0 = time.monotonic()
        lab.modem.operator_link(False)
        ct.uplink.wait_event(self.sub, "uplink-down", lambda e: e["uplink"] == "cellular", after=t0,
                             timeout=ct.uplink.silent_bound() + 10)
        # NetworkManager keeps the connection "activated" on a dead link: only the agent's
        # re-activation (a new data session raises the operator link) brings it back.
        step = ct.uplink.wait_event(self.sub, "watchdog", lambda e: e["step"] == "reactivate", after=t0,
                                    timeout=30)
        self.assertFalse(any(p["ok"] for p in step["evidence"]["probes"]))
        self.wait_recovered(t0, 60)

    def test_5_registration_lost_watchdog_ladder(self):
        self.start_and_wait_up()
        lab.modem.clear_dump()
        t0 = time.monotonic()
        lab.modem.set_registration(stat="idle")   # +CREG: 0: ModemManager drops the bearer after 15 s
        steps = []
        for name in ("reactivate", "modem-reset", "power-cycle", "reboot"):
            steps.append(ct.uplink.wait_event(self.sub, "watchdog", lambda e, n=name: e["step"] == n,
                                              after=t0, timeout=90))
        order = [e["step"] for e in sorted(steps, key=lambda e: e["_rx"])]
        self.assertEqual(order, ["reactivate", "modem-reset", "power-cycle", "reboot"])
        # Each step after the previous one's cooldown (1 s of tolerance for delivery).
        gaps = [steps[k + 1]["_rx"] - steps[k]["_rx"] for k in range(3)]
        print("ladder gaps: %s s" % ", ".join("%.1f" % g for g in gaps))
        for gap, cd in zip(gaps, (WD["reactivate-cooldown"], WD["modem-reset-cooldown"],
                                  WD["power-cycle-cooldown"])):
            self.assertGreaterEqual(gap, cd - 1.0)
        self.assertTrue(all("evidence" in s for s in steps))
        # The diagnosis carries the modem's facts (from the modem module).
        modem = steps[1]["evidence"]["modem"]
        self.assertEqual(modem["registration"], "idle")
        self.assertIn(modem["state"], ("enabled", "searching", "registered", "disabled", "enabling"))
        self.assertIn("budget_left", steps[1])
        # The modem really was reset (ModemManager's reset for this plugin), and the
        # power-cycle and reboot commands ran (recorded instead of acting).
        cmds = [c["cmd"] for c in lab.modem.commands()]
        self.assertTrue(any(c in ("AT+CFUN=15", "AT+CFUN=1,1") for c in cmds), cmds[-20:])
        ct.wait_until(lambda: os.path.exists(os.path.join(self.records, "reboot")), 10,
                      "reboot recorded")
        with open(os.path.join(self.records, "power-cycle")) as f:
            self.assertEqual(len(f.read().split()), 1)
        results = ct.uplink.events(self.sub, "watchdog-result", after=t0)
        self.assertTrue(any(r["step"] == "modem-reset" and r["ok"] for r in results), results)
        # Registration back: the link comes back without anyone else's help.
        t1 = time.monotonic()
        lab.modem.set_registration(stat="home")
        self.wait_recovered(t1, 60)

    def test_6_autoconnect_blocked_reactivated(self):
        # Without the agent: NetworkManager's autoconnect fails (the operator's DHCP is
        # gone, ipv4.may-fail=false), gives up after its retries and blocks autoconnect.
        log_start = os.path.getsize(lab.log_path("NetworkManager"))
        lab.nm.nmcli("connection", "modify", "cellular", "connection.autoconnect", "yes",
                     "connection.autoconnect-retries", "2", "ipv4.dhcp-timeout", "3")
        try:
            lab.net.op_dnsmasq.stop()
            if connected():   # (left up by an earlier test) the network drops it
                lab.modem.drop_session(notify=True)
            # NetworkManager 1.42 logs "... 'cellular' failed to autoconnect; 0 tries left",
            # 1.52 "... (cellular): failed to autoconnect; 0 tries left".
            gave_up = re.compile(r"\bcellular(?:'|\):) failed to autoconnect; 0 tries left")
            ct.wait_until(lambda: gave_up.search(self.nm_log(log_start)), 60,
                          "NetworkManager giving up autoconnect")
            lab.net.op_dnsmasq = lab.net._dnsmasq(lab.net.op, ct.lab.OPERATOR_INDEX)
            # NetworkManager does not try again by itself (docs/lab.md).
            self.assertRaises(AssertionError, ct.wait_until, connected, 5, "connected")
            t0 = time.monotonic()
            self.agent = ct.uplink.start_agent(lab, self.settings)
            ct.wait_until(connected, 30, "cellular re-activated by the agent")
            print("autoconnect blocked: re-activated %.2f s after the agent started"
                  % (time.monotonic() - t0))
            ct.uplink.wait_link(self.sub, lambda l: l["uplinks"]["cellular"]["state"] == "up", 20, "cellular up")
        finally:
            if not lab.net.op_dnsmasq.alive():
                lab.net.op_dnsmasq = lab.net._dnsmasq(lab.net.op, ct.lab.OPERATOR_INDEX)
            lab.nm.nmcli("connection", "modify", "cellular", "connection.autoconnect", "no",
                         "connection.autoconnect-retries", "-1", "ipv4.dhcp-timeout", "0", check=False)

    def nm_log(self, start):
        with open(lab.log_path("NetworkManager"), errors="replace") as f:
            f.seek(start)
            return f.read()

    def test_7_modemmanager_restart(self):
        self.start_and_wait_up()
        t0 = time.monotonic()
        lab.mm.restart()
        ct.uplink.wait_event(self.sub, "uplink-down", lambda e: e["uplink"] == "cellular", after=t0, timeout=20)
        up = self.wait_recovered(t0, 60)
        print("ModemManager restart: cellular back %.2f s later" % (up["_rx"] - t0))
        self.assertTrue(self.agent.alive())

    def test_8_password_file_rule(self):
        # [cellular] password-file follows the rule of every secret file: one that others
        # can read is refused with a clear error and no connection is created (one without
        # the password would only be refused by the network); after chmod 600 and a reload
        # the connection is created with the password.
        name = "cellular-pw"
        pw = os.path.join(self.records, "apn-password")
        with open(pw, "w") as f:
            f.write("s3cret-apn\n")
        os.chmod(pw, 0o644)
        self.settings["cellular"] = {"connection": name, "apn": "internet", "password-file": pw}
        self.settings["uplink-cellular"] = {"connection": name}

        def exists():
            return lab.nm.nmcli("-g", "connection.id", "connection", "show", name, check=False).strip() == name

        try:
            self.agent = ct.uplink.start_agent(lab, self.settings)
            self.agent.wait_log(r"\[cellular\] password-file: .*accessible to group or others", 30)
            # The agent looked at the profile and refused: NetworkManager has no such
            # connection, and the agent is still running.
            self.assertFalse(exists(), "connection created from a password file others can read")
            self.assertTrue(self.agent.alive())
            os.chmod(pw, 0o600)
            self.agent.proc.send_signal(signal.SIGHUP)
            ct.wait_until(exists, 30, "connection %s created after the reload" % name)
            secret = lab.nm.nmcli("-s", "-g", "gsm.password", "connection", "show", name).strip()
            self.assertEqual(secret, "s3cret-apn")
            self.assertEqual(len(re.findall(r"\[cellular\] password-file:", self.agent.log_text())), 1,
                             "the refusal is logged once, not at every refresh")
        finally:
            lab.nm.nmcli("connection", "delete", name, check=False)


if __name__ == "__main__":
    ct.lab.main()
