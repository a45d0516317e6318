#!/usr/bin/python3
# ctest: labels=integration;lab timeout=420
"""Remote configuration with real NetworkManager 1.42 and two wired uplinks
(docs/remote-config.md).

uplink1 (wan1, priority 10) is the only path to the broker: uplink2's provider drops TCP to
port 1883 while it forwards everything else, so wan2's own probes (ICMP, DNS) pass. The
change makes wan1 on-demand and worse than wan2: the agent switches to wan2 and takes
uplink1 down, and the broker is out of reach. It must be rolled back: the NetworkManager
checkpoint restores uplink1's activation, the previous layer comes back, the device is
online again and reports rolled-back. The same with NetworkManager restarted during the
trial (its checkpoint is gone with it): the agent's own trial still ends in a rollback.
"""
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402
import cellagent_test.lab  # noqa: E402
import cellagent_test.uplink  # noqa: E402
from cellagent_test.lab import INTERNET_DNS, INTERNET_PROBE  # noqa: E402

lab = broker = None
BASE = ct.uplink.BASE
CONFIRM = 30
CUT_OFF = {"uplink-wan1": {"activate": "on-demand", "priority": 30}}


def setUpModule():
    global lab, broker
    lab, broker = ct.uplink.start_lab()


def tearDownModule():
    lab.stop()


class RemoteConfigLab(unittest.TestCase):
    def setUp(self):
        for i in (1, 2):
            lab.net.restore(i)
        # uplink2 reaches everything but the broker.
        lab.net._nft_forward(2, ["tcp dport 1883 drop"])
        for c in ("uplink1", "uplink2"):
            lab.nm.nmcli("connection", "up", c, check=False)
        lab.nm.wait_connected("eth1")
        lab.nm.wait_connected("eth2")
        ct.uplink.clear_retained(broker)
        for t in ("config/desired", "config/reported"):
            subprocess.run(broker.wrapper + ["mosquitto_pub", "-h", broker.host, "-p", str(broker.port),
                                             "-t", BASE + "/" + t, "-r", "-n"], check=True, timeout=10)
        self.sub = ct.uplink.subscribe(broker)
        uplinks = {"wan1": {"connection": "uplink1", "priority": 10},
                   "wan2": {"connection": "uplink2", "priority": 20,
                            "probes": "icmp:%s;dns:%s" % (INTERNET_PROBE, INTERNET_DNS)}}
        settings = ct.uplink.agent_settings(lab, broker, uplinks, extra={
            "remote-config": {"enabled": True, "confirm-within": CONFIRM}})
        self.agent = ct.uplink.start_agent(lab, settings)
        ct.uplink.wait_link(self.sub, lambda l: l["active"] == "wan1" and l["uplinks"]["wan1"]["state"] == "up"
                            and l["uplinks"]["wan2"]["state"] == "up", 40, "wan1 active, wan2 up")
        self.wait_online(0)
        self.state = os.path.join(self.agent.settings["agent"]["state-dir"], "remote-config")

    def tearDown(self):
        rc = ct.uplink.stop_agent(self.agent)
        self.sub.close()
        for i in (1, 2):
            lab.net.restore(i)
        if rc is not None:
            self.assertEqual(rc, 0, "agent exit code")

    def wait_online(self, after, timeout=30):
        ct.wait_until(lambda: [m for m in self.sub.matching(BASE + "/status")
                               if m.get("_rx", 0) > after and (m["json"] or {}).get("state") == "online"],
                      timeout, "online")

    def report(self, version, state, timeout):
        return ct.wait_until(lambda: [m["json"] for m in self.sub.matching(BASE + "/config/reported")
                                      if m["json"] and m["json"].get("version") == version
                                      and m["json"].get("state") == state], timeout,
                             "config/reported %s %s" % (version, state))[-1]

    def uplink1_active(self):
        return lab.nm.active_connections().get("uplink1") == "eth1"

    def cut_off(self, version, during=None):
        t0 = time.monotonic()
        broker.publish(BASE + "/config/desired",
                       json.dumps({"version": version, "groups": CUT_OFF, "confirm_within": CONFIRM}),
                       retain=True)
        self.agent.wait_log(r"applying configuration version %d \(confirm within %d s, "
                            r"NetworkManager checkpoint taken\)" % (version, CONFIRM), 20)
        self.assertTrue(os.path.exists(os.path.join(self.state, "pending.json")))
        # The change takes the only path to the broker down.
        ct.wait_until(lambda: not self.uplink1_active(), 25, "uplink1 deactivated by the change")
        if during:
            during()
        r = self.report(version, "rolled-back", CONFIRM + 40)
        took = time.monotonic() - t0
        print("version %d rolled back after %.1f s (confirm_within %d s)" % (version, took, CONFIRM))
        self.assertIn("no publish acknowledged by the broker within %d s" % CONFIRM, r["reason"])
        # NetworkManager's profile and the agent's layer are back: uplink1 carries MQTT again.
        ct.wait_until(self.uplink1_active, 30, "uplink1 active again")
        self.wait_online(t0, 40)
        ct.uplink.wait_link(self.sub, lambda l: l["active"] == "wan1", 40, "wan1 active again")
        ev = ct.uplink.wait_event(self.sub, "config-rolled-back", lambda e: e["version"] == version,
                                  after=t0, timeout=10)
        self.assertEqual(ev["reason"], r["reason"])
        self.assertFalse(os.path.exists(os.path.join(self.state, "pending.json")))
        return r

    def test_cut_off_rolled_back(self):
        self.cut_off(1)
        log = self.agent.log_text()
        self.assertRegex(log, r"rolling NetworkManager back to checkpoint "
                              r"/org/freedesktop/NetworkManager/Checkpoint/\d+")
        self.assertNotIn("NetworkManager checkpoint rollback:", log)  # it succeeded

    def test_network_change_confirmed(self):
        """A change to the uplinks that keeps the broker reachable is confirmed late in its
        window, and its checkpoint destroyed (NetworkManager keeps nothing)."""
        t0 = time.monotonic()
        broker.publish(BASE + "/config/desired",
                       json.dumps({"version": 3, "groups": {"uplink-wan2": {"priority": 15}},
                                   "confirm_within": CONFIRM}), retain=True)
        r = self.report(3, "applied", CONFIRM + 15)
        took = time.monotonic() - t0
        print("version 3 confirmed after %.1f s (confirm_within %d s)" % (took, CONFIRM))
        self.assertGreaterEqual(took, CONFIRM - 10 - 1, "a network change confirmed too early")
        self.assertTrue(r["hash"].startswith("sha256:"))
        log = self.agent.log_text()
        self.assertIn("NetworkManager checkpoint taken", log)
        self.assertNotIn("destroying NetworkManager checkpoint", log)  # destroyed without error
        self.assertTrue(self.uplink1_active())
        out = ct.run(["gdbus", "call", "--system", "--dest", "org.freedesktop.NetworkManager",
                      "--object-path", "/org/freedesktop/NetworkManager", "--method",
                      "org.freedesktop.DBus.Properties.Get", "org.freedesktop.NetworkManager",
                      "Checkpoints"], env=lab.env).stdout
        self.assertNotIn("Checkpoint/", out)

    def test_networkmanager_restart_during_trial(self):
        self.cut_off(2, during=lab.nm.restart)
        # The checkpoint was gone with the old NetworkManager; the agent's rollback did it.
        self.assertIn("NetworkManager checkpoint rollback:", self.agent.log_text())


if __name__ == "__main__":
    ct.lab.main()
