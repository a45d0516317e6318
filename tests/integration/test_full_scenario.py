#!/usr/bin/python3
# ctest: labels=integration;lab;memcheck timeout=600
"""One full device scenario with a single agent run, the one the memcheck stage of
scripts/test runs under valgrind (CA_AGENT_WRAPPER, deadlines stretched by CA_TIME_SCALE).

The lab: the real ModemManager and NetworkManager driving the emulated Fibocom modem in
ECM mode (cellular data over usb0 to the "operator"), a real mosquitto in the device
namespace, and the agent with every module on (telemetry, SMS bridge, uplink with the
cellular profile and probes, watchdog). In order:

1. start: the agent publishes its online status, enables the modem and brings cellular up;
2. telemetry with the emulator's real values (signal quality, RSRP/RSRQ, operator, IMEI),
   equal to what ModemManager reports;
3. SMS out: a request on sms/out reaches the emulator with its number and text, and the
   result says sent with the modem's reference;
4. SMS in: a message delivered at the emulator arrives on sms/in with its text, sender and
   SMSC time, and is deleted from the modem after the broker took it;
5. ModemManager restart: the agent reports the modem gone and cellular down, then follows
   the new modem object (modem-added, telemetry, cellular up again) and bridges SMS both
   ways through it;
6. SIGTERM: the agent exits 0 within a deadline and publishes its offline status.
"""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402
import cellagent_test.lab  # noqa: E402
import cellagent_test.uplink  # noqa: E402
from cellagent_test import scaled  # noqa: E402

BASE = "cellagent/dev1"
TS = "2024-05-01T10:20:30+03:00"
TS_UTC = "2024-05-01T07:20:30Z"


class FullScenario(unittest.TestCase):

    def setUp(self):
        self.t0 = time.monotonic()
        self.lab = ct.lab.Lab(personality="ecm").start()
        ct.uplink.enable_ping_sockets(self.lab)
        self.broker = self.lab.start_broker()
        self.sub = self.broker.subscribe([BASE + "/#"])
        self.step("lab up")
        settings = {
            "agent": {"state-dir": os.path.join(self.lab.run_dir, "agent-state")},
            "mqtt": {"host": self.broker.host, "port": self.broker.port},
            "telemetry": {"interval": 0, "signal-rate": 1, "min-spacing": 0},
            # No resync after receptions: it disables the modem for a moment (and so
            # cellular), which would race with the steps that follow.
            "sms": {"resync-delay": 0},
            "health": dict(ct.uplink.FAST, probes="icmp:%s;dns:%s" % (ct.lab.INTERNET_PROBE,
                                                                ct.lab.INTERNET_DNS)),
            # On, but not acting within the scenario (the ModemManager restart takes cellular
            # down for a while; the watchdog's steps are covered by test_uplink_cellular).
            "watchdog": {"start-after": 3600},
        }
        # The agent in the device namespace, under CA_AGENT_WRAPPER (valgrind in the
        # memcheck stage), logging into the lab's logs (printed when the test fails).
        self.agent = ct.uplink.start_agent(self.lab, settings, name="agent")

    def tearDown(self):
        if self.agent.alive():
            self.agent.kill()

    def step(self, what):
        print("%6.1f s  %s" % (time.monotonic() - self.t0, what), flush=True)

    # ---------------------------------------------------------------- reading MQTT

    def mark(self):
        return len(self.sub.messages)

    def on(self, topic, since, pred=lambda j: True):
        return [m["json"] for m in self.sub.messages[since:]
                if m["topic"] == BASE + "/" + topic and m["json"] is not None and pred(m["json"])]

    def wait_on(self, topic, since, pred, timeout, what):
        return ct.wait_until(lambda: self.on(topic, since, pred), scaled(timeout), what)[0]

    def wait_event(self, type_, since, timeout, pred=lambda e: True):
        return self.wait_on("events", since, lambda e: e.get("type") == type_ and pred(e), timeout,
                            "event " + type_)

    def cellular_up(self, since, timeout):
        self.wait_on("link", since, lambda l: l["uplinks"]["cellular"]["state"] == "up", timeout,
                     "cellular up in <base>/link")
        ct.wait_until(lambda: self.lab.net.route_dev() == "usb0", scaled(10),
                      "the default route via usb0")

    def telemetry_with_values(self, since, timeout):
        """Telemetry from the modem with the emulator's values."""
        ident = self.lab.emu.identity

        def real(t):
            m, n, s = t.get("modem", {}), t.get("network", {}), t.get("signal", {})
            return (m.get("state") in ("registered", "connected")
                    and m.get("signal_quality") == 70          # the emulator's CSQ 22
                    and s.get("rsrp") == ident["rsrp"] and s.get("rsrq") == ident["rsrq"]
                    and m.get("imei") == ident["imei"]
                    # The SIM's properties arrive on their own D-Bus object, possibly in a
                    # later telemetry message (seen under valgrind): wait for them too.
                    and t.get("sim", {}).get("iccid") == ident["iccid"]
                    and n.get("operator_code") == ident["operator_code"]
                    and n.get("registration") == "home")
        t = self.wait_on("telemetry", since, real, timeout, "telemetry with the emulator's values")
        info = self.lab.mm.info()
        self.assertEqual(t["modem"]["signal_quality"],
                         int(info["modem.generic.signal-quality.value"]))
        self.assertEqual(t["network"]["operator_name"], ident["operator_name"])
        self.assertEqual(t["modem"]["access_tech"], ["lte"])
        return t

    # ---------------------------------------------------------------- SMS

    def sms_out(self, rid, to, text):
        since = self.mark()
        self.broker.publish(BASE + "/sms/out", {"id": rid, "to": to, "text": text})
        sent = self.wait_on("sms/out/result", since,
                            lambda r: r.get("id") == rid and r.get("status") in ("sent", "failed"),
                            30, "the result of " + rid)
        self.assertEqual(sent["status"], "sent", sent)
        msgs = self.lab.modem.wait_sent(lambda m: m["to"] == to, timeout=10)
        self.assertEqual(len(msgs), 1, msgs)
        self.assertEqual(msgs[0]["text"], text)
        self.assertEqual(sent["reference"], msgs[0]["references"][-1])
        self.assertEqual([r["status"] for r in self.on("sms/out/result", since,
                                                       lambda r: r.get("id") == rid)],
                         ["queued", "sent"])

    def sms_in(self, sender, text):
        since = self.mark()
        self.lab.modem.deliver_sms(text, sender=sender, timestamp=TS)
        msg = self.wait_on("sms/in", since, lambda j: j.get("from") == sender, 30,
                           "sms/in from " + sender)
        self.assertEqual(msg["text"], text)
        self.assertEqual(msg["timestamp"], TS_UTC)
        # Deleted from the modem once the broker had it.
        ct.wait_until(lambda: not self.lab.modem.status()["storage"]["ME"]["indices"],
                      scaled(10), "the modem's storage empty")
        self.assertEqual(len(self.on("sms/in", since, lambda j: j.get("from") == sender)), 1)

    # ---------------------------------------------------------------- the scenario

    def test_full_scenario(self):
        lab, agent = self.lab, self.agent

        # 1. Start: online, the modem enabled by the agent (the lab leaves it disabled;
        # NetworkManager would only enable it for an activation), cellular up.
        online = self.wait_on("status", 0, lambda s: s.get("state") == "online", 30,
                              "the online status")
        self.assertIn("version", online)
        agent.wait_log(r"using the Messaging interface", 60)
        self.cellular_up(0, 90)
        self.step("agent online, cellular up")

        # 2. Telemetry with the emulator's values.
        t = self.telemetry_with_values(0, 30)
        self.assertEqual(t["sim"]["iccid"], lab.emu.identity["iccid"])
        added = self.wait_event("modem-added", 0, 10)
        self.step("telemetry")

        # 3 and 4. SMS both ways.
        self.sms_out("full-1", "+254700000901", "Hello from the full scenario")
        self.step("sms out")
        self.sms_in("+254711000901", "Habari, full scenario 1")
        self.step("sms in")

        # 5. ModemManager restart.
        since = self.mark()
        lab.mm.stop()
        self.wait_on("telemetry", since, lambda x: x["modem"]["state"] == "absent", 20,
                     "telemetry saying the modem is absent")
        removed = self.wait_event("modem-removed", since, 10)
        self.assertEqual(removed["path"], added["path"])
        self.wait_event("uplink-down", since, 30, lambda e: e["uplink"] == "cellular")
        agent.wait_log(r"ModemManager left the system bus", 10)
        self.step("ModemManager stopped")
        since = self.mark()
        lab.mm.start(wait=True)
        added = self.wait_event("modem-added", since, 30)
        self.telemetry_with_values(since, 30)
        self.cellular_up(since, 90)
        self.step("ModemManager back, cellular up")
        self.sms_out("full-2", "+254700000902", "Hello again after the restart")
        self.sms_in("+254711000902", "Habari, full scenario 2")
        self.step("sms both ways after the restart")

        # 6. SIGTERM: exit 0 in time (under valgrind: no errors, else exit code 99), and the
        # offline status published on the way out.
        since = self.mark()
        rc, secs = agent.stop(timeout=10)
        self.assertEqual(rc, 0, "agent exit code")
        self.step("agent exited after %.1f s" % secs)
        self.wait_on("status", since, lambda s: s.get("state") == "offline", 5,
                     "the offline status")


if __name__ == "__main__":
    ct.lab.main()
