#!/usr/bin/python3
# ctest: labels=integration;lab timeout=300
"""SMS alerts end to end: two wired uplinks on the real NetworkManager (lab namespaces),
the emulated SIMCom modem on the real ModemManager, a real mosquitto and the agent.

All uplinks are made unhealthy (upstream blackholed) with data-down-after=10: exactly one
alert SMS reaches the emulator; the uplinks are restored: exactly one recovery SMS, with
the outage duration; the "sms-alert" events say the same. A second short outage inside
min-interval sends nothing. Also cmd/reconnect and cmd/uplink on these uplinks: the uplink
in use is re-activated by NetworkManager; forcing the backup moves the kernel's default
route to it, "auto" moves it back.
"""
import json
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402
import cellagent_test.lab  # noqa: E402
import cellagent_test.uplink  # noqa: E402

BASE = "cellagent/dev1"
NUMBER = "+254700000077"
DOWN_AFTER = 10

lab = broker = sub = agent = None


def setUpModule():
    global lab, broker, sub, agent
    lab = ct.lab.Lab(personality="simtech", uplinks=2, enable=True).start()
    lab.nm.wait_connected("eth1")
    lab.nm.wait_connected("eth2")
    ct.uplink.enable_ping_sockets(lab)
    broker = lab.start_broker()
    sub = broker.subscribe([BASE + "/link", BASE + "/events", BASE + "/cmd/+/result"])
    settings = ct.uplink.agent_settings(
        lab, broker,
        {"wan1": {"connection": "uplink1", "priority": 10},
         "wan2": {"connection": "uplink2", "priority": 20}},
        watchdog={"enabled": False},
        extra={"sms-alerts": {"enabled": True, "numbers": NUMBER,
                              "data-down-after": DOWN_AFTER, "min-interval": 3600},
               "modem": {}})
    # The broker is on the device's loopback here: probe the "internet" only.
    settings["health"]["probes"] = "icmp:%s;dns:%s" % (ct.lab.INTERNET_PROBE, ct.lab.INTERNET_DNS)
    # CA_AGENT_WRAPPER: a command prefix for the agent (inside the device namespace), e.g.
    # "valgrind --leak-check=full --error-exitcode=99" (a clean stop must exit 0).
    settings["agent"]["state-dir"] = os.path.join(lab.run_dir, "agent-state")
    agent = ct.Agent(os.path.join(lab.run_dir, "logs"), settings, env=lab.env, name="agent",
                     wrapper=lab.dut_wrapper() + os.environ.get("CA_AGENT_WRAPPER", "").split())
    agent.start()
    agent.wait_log(r"using the Messaging interface", timeout=60)
    ct.uplink.wait_link(sub, lambda l: l["uplinks"]["wan1"]["state"] == "up", 40, "wan1 up")


def tearDownModule():
    try:
        rc = ct.uplink.stop_agent(agent)
        assert rc in (None, 0), rc
    finally:
        lab.stop()


def alerts_sent():
    return [m for m in lab.modem.sent_messages() if m["to"] == NUMBER and m["complete"]]


def alert_events():
    """The sms-alert events, each once. Events are QoS 1: a message in flight when the agent
    reconnects over a new uplink (a failover, as at the recovery here) is sent again, and
    the subscriber may see it twice, byte for byte. A second event with any other content
    (its own ts) still counts."""
    seen, out = set(), []
    for m in sub.matching(BASE + "/events", lambda m: (m["json"] or {}).get("type") == "sms-alert"):
        key = json.dumps(m["json"], sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(m["json"])
    return out


def all_down(l):
    return all(u["state"] == "down" for u in l["uplinks"].values() if u["activate"] != "never")


def active_path(name):
    """D-Bus path of the connection's active connection (activated), or None."""
    out = lab.nm.nmcli("-t", "-f", "NAME,STATE,ACTIVE-PATH", "connection", "show", "--active")
    for line in out.splitlines():
        parts = line.split(":")
        if parts[0] == name and parts[1] == "activated":
            return parts[2]
    return None


def ask(name, rid, args=None, timeout=20):
    req = {"id": rid}
    if args is not None:
        req["args"] = args
    broker.publish("%s/cmd/%s" % (BASE, name), req)
    return sub.wait_for("%s/cmd/%s/result" % (BASE, name),
                        lambda m: m["json"] and m["json"].get("id") == rid, timeout)[-1]["json"]


class Alerts(unittest.TestCase):

    def test_00_reconnect(self):
        r = ask("reconnect", "rc0", {"uplink": "wan2"})
        self.assertEqual((r["ok"], r["error"]), (False, "args.uplink: unknown argument"))
        before = active_path("uplink1")
        self.assertTrue(before)
        r = ask("reconnect", "rc1")
        self.assertEqual((r["ok"], r["result"]), (True, {"uplink": "wan1"}))
        agent.wait_log(r'wan1: activating connection "uplink1" on eth1 \(asked by mqtt\)')
        ev = ct.wait_until(lambda: [m["json"] for m in sub.matching(
            BASE + "/events", lambda m: (m["json"] or {}).get("id") == "rc1")], 10, "the event")[0]
        self.assertEqual((ev["type"], ev["command"], ev["source"], ev["ok"]),
                         ("command", "reconnect", "mqtt", True))
        # NetworkManager re-activated it: a new active connection, activated on eth1.
        ct.wait_until(lambda: active_path("uplink1") not in (None, before), 30,
                      "a new activation of uplink1")
        lab.nm.wait_connected("eth1")
        ct.uplink.wait_link(sub, lambda l: l["uplinks"]["wan1"]["state"] == "up", 40, "wan1 up again")

    def test_00b_uplink_force_and_auto(self):
        for rid, args, err in (("up0", None, "args.uplink: missing"),
                               ("up1", {"uplink": "a/b"}, "args.uplink: must be"),
                               ("up2", {"uplink": "wan9"}, 'no uplink "wan9"'),
                               ("up3", {"uplink": "cellular"},
                                'uplink "cellular" is not managed (activate=never)')):
            r = ask("uplink", rid, args)
            self.assertFalse(r["ok"], r)
            self.assertTrue(r["error"].startswith(err), r)
        # (After test_00's re-activation wan1 may still be in its hold-down.)
        ct.uplink.wait_link(sub, lambda l: l["active"] == "wan1", 40, "wan1 in use")
        ct.wait_until(lambda: lab.net.route_dev() == "eth1", 20, "the default route via eth1")
        r = ask("uplink", "up4", {"uplink": "wan2"})
        self.assertEqual((r["ok"], r["result"]), (True, {"mode": "forced", "uplink": "wan2", "active": "wan2"}))
        # The kernel's default route follows, and the link says why.
        ct.wait_until(lambda: lab.net.route_dev() == "eth2", 20, "the default route via eth2")
        link = ct.uplink.wait_link(sub, lambda l: l.get("forced") == "wan2" and l["active"] == "wan2", 20,
                                   "wan2 forced in the link")
        self.assertEqual(link["uplinks"]["wan1"]["state"], "up")  # not a failover
        sw = ct.uplink.wait_event(sub, "uplink-forced", lambda e: e["to"] == "wan2", timeout=15)
        self.assertEqual(sw["from"], "wan1")
        ev = ct.wait_until(lambda: [m["json"] for m in sub.matching(
            BASE + "/events", lambda m: (m["json"] or {}).get("id") == "up4")], 10, "the event")[0]
        self.assertEqual((ev["command"], ev["source"], ev["ok"]), ("uplink", "mqtt", True))
        # Back to the automatic choice: wan1 (priority 10, up all along) takes over again.
        r = ask("uplink", "up5", {"uplink": "auto"})
        self.assertEqual((r["ok"], r["result"]), (True, {"mode": "auto", "uplink": None, "active": "wan1"}))
        ct.wait_until(lambda: lab.net.route_dev() == "eth1", 20, "the default route via eth1")
        ct.uplink.wait_link(sub, lambda l: l.get("forced") is None and l["active"] == "wan1", 20,
                            "automatic choice in the link")

    def test_01_one_alert_one_recovery(self):
        self.assertEqual(alerts_sent(), [])
        t0 = time.monotonic()
        lab.net.blackhole(1)
        lab.net.blackhole(2)
        ct.uplink.wait_link(sub, all_down, 40, "every uplink down")
        t_down = time.monotonic()
        alert = lab.modem.wait_sent(lambda m: m["to"] == NUMBER, timeout=60)[0]
        t_alert = time.monotonic()
        print("uplinks down after %.1f s, alert SMS %.1f s later" % (t_down - t0, t_alert - t_down))
        self.assertRegex(alert["text"], r"^dev1: no data link for \d+ s \(since \d{4}-\d\d-\d\d \d\d:\d\d UTC\)\.$")
        secs = int(re.search(r"for (\d+) s", alert["text"]).group(1))
        self.assertGreaterEqual(secs, DOWN_AFTER)
        # The outage counts from the last healthy verdict, so the alert cannot come
        # earlier than down-after after the blackhole began.
        self.assertGreaterEqual(t_alert - t0, DOWN_AFTER)

        lab.net.restore(1)
        lab.net.restore(2)
        recovery = lab.modem.wait_sent(lambda m: m["to"] == NUMBER, timeout=60, count=2)[1]
        self.assertRegex(recovery["text"],
                         r"^dev1: data link back after \d+ (s|min) \(down since \d{4}-\d\d-\d\d \d\d:\d\d UTC\) via wan[12]\.$")
        ct.uplink.wait_link(sub, lambda l: any(u["state"] == "up" for u in l["uplinks"].values()), 30, "an uplink up")
        # Exactly one of each: anything else would have been sent before the recovery.
        self.assertEqual([m["text"] for m in alerts_sent()], [alert["text"], recovery["text"]])
        ev = ct.wait_until(lambda: alert_events() if len(alert_events()) >= 2 else None, 15,
                           "both sms-alert events")
        self.assertEqual([(e["kind"], e["sms"]) for e in ev], [("down", 1), ("recovered", 1)])
        self.assertEqual(ev[0]["text"], alert["text"])
        self.assertEqual(ev[1]["text"], recovery["text"])
        self.assertGreaterEqual(ev[1]["duration"], ev[0]["duration"])

    def test_02_second_outage_within_min_interval(self):
        """Another outage long enough to alert, within min-interval of the first alert:
        no SMS and no event; it would be counted into the next alert."""
        before = len(alerts_sent())
        n_events = len(alert_events())
        lab.net.blackhole(1)
        lab.net.blackhole(2)
        ct.uplink.wait_link(sub, all_down, 40, "every uplink down again")
        # Past data-down-after the policy holds the alert back (its state is logged).
        ct.wait_until(lambda: agent_alert_state() == "suppressed", DOWN_AFTER + 20,
                      "the alert held back by min-interval")
        lab.net.restore(1)
        lab.net.restore(2)
        ct.uplink.wait_link(sub, lambda l: any(u["state"] == "up" for u in l["uplinks"].values()), 40, "an uplink up")
        ct.wait_until(lambda: agent_alert_state() == "up", 10, "alert policy back to up")
        self.assertEqual(len(alerts_sent()), before)
        self.assertEqual(len(alert_events()), n_events)


def agent_alert_state():
    """The alert policy's latest state, as the agent logs its transitions."""
    m = re.findall(r"alerts: (\w+)", agent.log_text())
    return m[-1] if m else None


if __name__ == "__main__":
    ct.lab.main()
