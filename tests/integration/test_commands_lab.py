#!/usr/bin/python3
# ctest: labels=integration;lab;memcheck timeout=420
"""Commands over MQTT and over authenticated SMS against the real agent, the real
ModemManager driving the emulated modem (ECM personality: the one whose plugin supports
Modem.Reset, as AT+CFUN=15) and a real mosquitto. One lab and one agent for the file; the
tests run in name order and the modem resets come last (after a reset the emulator does
not announce new SMS again until ModemManager re-enables messaging).

Covers: status, telemetry and sms-resync over MQTT (valid call, invalid args); SMS
commands: a valid code from an allowed sender runs the command and the reply SMS is in the
emulator's dump; a wrong code, a replayed code and an unknown sender make no action, no
reply and one audit event each, and none reaches sms/in while ordinary SMS still do (also an
allowed sender's that starts with a number); reboot refused by policy answers by SMS;
mqtt-reconnect and reconnect by SMS; modem-reset by SMS and by MQTT reach the emulator, with
the "command" event naming who asked. Last, the failure budget: wrong codes claiming either
operator's number count together, the lockout refuses every sender's valid code with an
event, and it survives an agent restart.
"""
import datetime
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402
import cellagent_test.lab  # noqa: E402
import cellagent_test.commands  # noqa: E402

BASE = "cellagent/dev1"
OPERATOR = "+254700000001"      # allowed
OPERATOR2 = "+254700000002"     # allowed; a forger claims this number too
STRANGER = "+254799999999"      # not allowed

lab = broker = sub = agent = codes = None


def setUpModule():
    global lab, broker, sub, agent, codes
    lab = ct.lab.Lab(personality="ecm", enable=True).start()
    broker = lab.start_broker()
    sub = broker.subscribe([BASE + "/#"])
    secret_file = os.path.join(lab.run_dir, "sms-secret")
    codes = ct.commands.CodeBook(ct.commands.write_secret(secret_file))
    settings = {
        "agent": {"state-dir": os.path.join(lab.run_dir, "agent-state")},
        "mqtt": {"host": broker.host, "port": broker.port},
        "telemetry": {"interval": 0},
        # Keep the uplink module's hands off the modem: the test resets it itself.
        "uplink-cellular": {"activate": "never"},
        "watchdog": {"enabled": False},
        "sms-commands": {"enabled": True, "secret-file": secret_file,
                         "allowed-senders": "%s; %s" % (OPERATOR, OPERATOR2),
                         "max-failures-per-hour": 5, "lockout": 600},
    }
    # CA_AGENT_WRAPPER: a command prefix for the agent, e.g.
    # "valgrind --leak-check=full --error-exitcode=99" (a clean stop must exit 0).
    agent = start_agent(settings)


def start_agent(settings, name="agent"):
    a = ct.Agent(os.path.join(lab.run_dir, "logs"), settings, env=lab.env, name=name,
                      wrapper=lab.dut_wrapper() + os.environ.get("CA_AGENT_WRAPPER", "").split()
                      ).start()
    a.wait_log(r"SMS commands enabled for 2 sender", timeout=20)
    a.wait_log(r"using the Messaging interface", timeout=60)
    ct.wait_until(lambda: (status().get("registration") == "home"), 60,
                      "the modem registered (status)")
    return a


def tearDownModule():
    try:
        if agent and agent.alive():
            rc, _ = agent.stop(timeout=10)
            assert rc == 0, rc
    finally:
        lab.stop()


_ids = iter(range(1, 100000))


def ask(name, args=None, timeout=20):
    rid = "t%d" % next(_ids)
    req = {"id": rid}
    if args is not None:
        req["args"] = args
    broker.publish("%s/cmd/%s" % (BASE, name), req)
    return sub.wait_for("%s/cmd/%s/result" % (BASE, name),
                        lambda m: m["json"] and m["json"].get("id") == rid, timeout)[-1]["json"]


def status():
    r = ask("status")
    assert r["ok"], r
    return r["result"]


def events(type_):
    return [m["json"] for m in sub.matching(BASE + "/events",
                                            lambda m: (m["json"] or {}).get("type") == type_)]


def audits():
    return events("sms-command")


def sms_in():
    return [m["json"] for m in sub.matching(BASE + "/sms/in")]


def sent_to(number):
    return [m for m in lab.modem.sent_messages() if m["to"] == number and m["complete"]]


def resets():
    return [c for c in lab.modem.commands() if c["cmd"].upper().startswith("AT+CFUN=15")]


def deliver(text, sender, timestamp=None):
    """An SMS arrives; returns the audit event it caused (one per command SMS)."""
    n = len(audits())
    lab.modem.deliver_sms(text, sender=sender, timestamp=timestamp)
    ct.wait_until(lambda: len(audits()) > n, 30, "the audit event of %r" % text)
    got = audits()
    assert len(got) == n + 1, got[n:]
    # Handled means deleted from the modem too. Wait for it before the next SMS: with
    # ModemManager 1.20 a new-message notice that arrives while the previous message is
    # still being read or deleted can be missed (docs/lab.md, ModemManager 1.20 quirks).
    ct.wait_until(lambda: not lab.modem.status()["storage"]["ME"]["indices"], 30,
                      "the modem's storage empty again")
    return got[n]


class Commands(unittest.TestCase):

    def test_01_status_over_mqtt(self):
        s = status()
        self.assertEqual(s["registration"], "home")
        self.assertEqual(s["signal_quality"], int(lab.mm.info()["modem.generic.signal-quality.value"]))
        self.assertIsNotNone(s["operator_name"])
        self.assertIn("home", s["text"])
        self.assertTrue(s["text"].startswith("dev1: up "), s)
        r = ask("status", {"x": 1})
        self.assertEqual(r, {"id": r["id"], "ok": False, "ts": r["ts"], "error": "args.x: unknown argument"})

    def test_02_telemetry_and_sms_resync(self):
        r = ask("telemetry")
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["result"]["network"]["registration"], "home")
        r = ask("telemetry", {"now": True})
        self.assertFalse(r["ok"])
        self.assertEqual(r["error"], "args.now: unknown argument")
        r = ask("sms-resync", timeout=60)
        self.assertTrue(r["ok"], r)
        self.assertIn("messages", r["result"])
        ev = ct.wait_until(lambda: [e for e in events("command") if e.get("id") == r["id"]],
                               10, "the sms-resync event")[0]
        self.assertEqual((ev["command"], ev["source"], ev["ok"]), ("sms-resync", "mqtt", True))
        r = ask("sms-resync", {"all": 1})
        self.assertFalse(r["ok"])
        self.assertEqual(r["error"], "args.all: unknown argument")
        ct.wait_until(lambda: status().get("registration") == "home", 60, "registered again")

    def test_03_sms_status_reply(self):
        before = len(sent_to(OPERATOR))
        a = deliver("%s status" % codes.next(), OPERATOR)
        self.assertEqual(a["outcome"], "accepted")
        self.assertEqual(a["command"], "status")
        self.assertEqual(a["from"], "+*********001")
        self.assertTrue(a["command_id"].startswith("sms-"))
        reply = lab.modem.wait_sent(lambda m: m["to"] == OPERATOR, timeout=30, count=before + 1)[-1]
        self.assertTrue(reply["text"].startswith("dev1: up "), reply)
        self.assertIn("home", reply["text"])
        self.assertEqual(reply["parts"], 1)
        self.__class__.status_text = "%s status" % codes._code(codes.last)
        # Kept off sms/in, and the code is nowhere on MQTT.
        self.assertFalse([m for m in sms_in() if "status" in (m.get("text") or "")])
        code = codes._code(codes.last)
        self.assertFalse([m for m in sub.matching() if code in (m.get("payload") or "")])

    def test_04_rejections(self):
        """Wrong, replayed, stranger, locked out: audited, no action, no reply."""
        sent_before = {n: len(sent_to(n)) for n in (OPERATOR, OPERATOR2, STRANGER)}
        resets_before = len(resets())
        in_before = len(sms_in())

        # The same text again, as an eavesdropper would resend it (a later SMSC time stamp:
        # the identical message itself is only ever handled once by the SMS bridge).
        later = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) + \
            datetime.timedelta(seconds=7)
        a = deliver(self.__class__.status_text, OPERATOR, timestamp=later.isoformat())
        self.assertEqual((a["outcome"], a["reason"]), ("rejected", "replayed code"))
        a = deliver("%s modem-reset" % codes.wrong(), OPERATOR)
        self.assertEqual((a["outcome"], a["reason"], a["failures"]), ("rejected", "wrong code", 2))
        a = deliver("%s modem-reset" % codes.valid(), STRANGER)
        self.assertEqual((a["outcome"], a["reason"], a["from"]),
                         ("rejected", "sender not allowed", "+*********999"))
        # Ordinary SMS from an allowed sender still go to sms/in, also one that starts with
        # a number (it is no command: only a 6-digit code and a known command word are).
        for text in ("Pump 3 is fine, thanks", "10 min late"):
            lab.modem.deliver_sms(text, sender=OPERATOR)
            sub.wait_for(BASE + "/sms/in", lambda m, t=text: (m["json"] or {}).get("text") == t, 30)
            ct.wait_until(lambda: not lab.modem.status()["storage"]["ME"]["indices"], 30,
                              "the ordinary SMS deleted from the modem")

        # Barrier: an accepted command from the operator. SMS are handled in order, so a
        # reply to any rejected one would have been sent before this one's.
        a = deliver("%s reboot" % codes.next(), OPERATOR)
        self.assertEqual(a["outcome"], "accepted")
        reply = lab.modem.wait_sent(lambda m: m["to"] == OPERATOR, 30, sent_before[OPERATOR] + 1)[-1]
        self.assertEqual(reply["text"], "dev1: reboot failed: reboot not allowed (commands allow-reboot=false)")
        self.assertEqual(len(sent_to(OPERATOR)), sent_before[OPERATOR] + 1)
        self.assertEqual(len(sent_to(OPERATOR2)), sent_before[OPERATOR2])
        self.assertEqual(len(sent_to(STRANGER)), sent_before[STRANGER])
        self.assertEqual(len(resets()), resets_before)
        ev = ct.wait_until(lambda: [e for e in events("command") if e.get("id") == a["command_id"]],
                               10, "the reboot event")[0]
        self.assertEqual((ev["source"], ev["ok"]), ("sms", False))
        # No command event for any rejected SMS (status changes nothing: none either);
        # only the ordinary SMS reached sms/in.
        self.assertEqual([e["command"] for e in events("command") if e["source"] == "sms"], ["reboot"])
        self.assertEqual([m["text"] for m in sms_in()[in_before:]],
                         ["Pump 3 is fine, thanks", "10 min late"])

    def test_04b_sms_reconnects(self):
        """mqtt-reconnect and reconnect by SMS: run, and the outcome comes back by SMS."""
        sent_before = len(sent_to(OPERATOR))
        connects = agent.log_text().count("connected to 127.0.0.1")
        a = deliver("%s mqtt-reconnect" % codes.next(), OPERATOR)
        self.assertEqual((a["outcome"], a["command"]), ("accepted", "mqtt-reconnect"))
        agent.wait_log(r"reconnecting now \(requested\)")
        ct.wait_until(lambda: agent.log_text().count("connected to 127.0.0.1") > connects, 30,
                          "a new broker connection")
        reply = lab.modem.wait_sent(lambda m: m["to"] == OPERATOR, 30, sent_before + 1)[-1]
        self.assertEqual(reply["text"], "dev1: mqtt-reconnect ok")
        # No uplink is managed in this lab ([uplink-cellular] activate=never): the failure
        # is what comes back.
        a = deliver("%s reconnect" % codes.next(), OPERATOR)
        self.assertEqual((a["outcome"], a["command"]), ("accepted", "reconnect"))
        reply = lab.modem.wait_sent(lambda m: m["to"] == OPERATOR, 30, sent_before + 2)[-1]
        self.assertEqual(reply["text"], "dev1: reconnect failed: no uplink is in use")
        ev = ct.wait_until(lambda: [e for e in events("command") if e.get("id") == a["command_id"]],
                               10, "the reconnect event")[0]
        self.assertEqual((ev["source"], ev["ok"], ev["error"]), ("sms", False, "no uplink is in use"))

    def test_05_sms_modem_reset(self):
        before = len(resets())
        sent_before = len(sent_to(OPERATOR))
        a = deliver("%s Modem-Reset" % codes.next(), OPERATOR)
        self.assertEqual((a["outcome"], a["command"]), ("accepted", "modem-reset"))
        ct.wait_until(lambda: len(resets()) > before, 30, "AT+CFUN=15 from the SMS command")
        reply = lab.modem.wait_sent(lambda m: m["to"] == OPERATOR, 60, sent_before + 1)[-1]
        self.assertEqual(reply["text"], "dev1: modem-reset ok")
        ev = ct.wait_until(lambda: [e for e in events("command") if e.get("id") == a["command_id"]],
                               10, "the modem-reset event")[0]
        self.assertEqual((ev["command"], ev["source"], ev["ok"]), ("modem-reset", "sms", True))

    def test_06_mqtt_modem_reset(self):
        ct.wait_until(lambda: status().get("registration") == "home", 60, "registered again")
        before = len(resets())
        r = ask("modem-reset", {"hard": True})
        self.assertEqual(r["error"], "args.hard: unknown argument")
        r = ask("modem-reset", timeout=60)
        self.assertTrue(r["ok"], r)
        ct.wait_until(lambda: len(resets()) == before + 1, 30, "AT+CFUN=15 from cmd/modem-reset")
        ev = ct.wait_until(lambda: [e for e in events("command") if e.get("id") == r["id"]],
                               10, "the modem-reset event")[0]
        self.assertEqual((ev["command"], ev["source"], ev["ok"]), ("modem-reset", "mqtt", True))
        # The refused request made no reset and no event.
        self.assertEqual(len(resets()), before + 1)

    def test_07_failure_budget(self):
        """A forger alternating the operators' numbers gets no more guesses than one sender:
        failures count over all senders; the budget spent locks every SMS command out, with
        an event, and a restart of the agent does not lift it."""
        global agent
        ct.wait_until(lambda: status().get("registration") == "home", 60, "registered again")
        # After the resets above the emulator announces no new SMS until ModemManager enables
        # messaging again: a resync (disable, enable) does that.
        self.assertTrue(ask("sms-resync", timeout=60)["ok"])
        ct.wait_until(lambda: status().get("registration") == "home", 60, "registered again")
        resets_before = len(resets())
        # test_04 left two failures (a replay and a wrong code) within the hour: 3 more.
        for i, sender in enumerate((OPERATOR2, OPERATOR, OPERATOR2), start=3):
            a = deliver("%s modem-reset" % codes.wrong(), sender)
            self.assertEqual((a["reason"], a["failures"]), ("wrong code", i))
        self.assertEqual(a["lockout"], 600)
        locked = ct.wait_until(lambda: events("sms-commands-locked"), 10,
                                   "the sms-commands-locked event")[0]
        self.assertEqual((locked["failures"], locked["seconds"]), (5, 600))
        # The real operator with a valid code: refused, not run, and the code not spent.
        a = deliver("%s modem-reset" % codes.valid(), OPERATOR)
        self.assertEqual((a["outcome"], a["reason"]), ("rejected", "locked out"))
        # Restart the agent: the lockout is kept in state-dir.
        rc, _ = agent.stop(timeout=10)
        self.assertEqual(rc, 0)
        agent = start_agent(agent.settings, name="agent-restarted")
        # Another text: the same one within the same second would be the same message (the
        # SMS bridge deduplicates by sender, SMSC time and text).
        a = deliver("%s status" % codes.valid(), OPERATOR)
        self.assertEqual((a["outcome"], a["reason"]), ("rejected", "locked out"))
        self.assertEqual(len(resets()), resets_before)


if __name__ == "__main__":
    ct.lab.main()
