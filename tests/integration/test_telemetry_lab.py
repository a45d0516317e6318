#!/usr/bin/python3
# ctest: labels=integration;lab timeout=300
"""Modem telemetry end to end: the real ModemManager driving the emulated SIMCom modem,
the agent under test and a real mosquitto. One lab and one agent for the file; tests run
in name order and the disruptive ones (unplug, ModemManager restarts and freeze) come last.

Covers: every telemetry field against the emulator and `mmcli -K`; a signal change within
2 s; deadband (changes inside it publish nothing); minimum spacing after a SIGHUP reload;
registration lost/regained (events + telemetry); cmd/telemetry; Home Assistant discovery;
unplug/replug under a new object path; ModemManager SIGTERM and SIGKILL restarts; a 10 s
SIGSTOP with the main loop staying responsive and the MQTT keepalive intact.
"""

import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402
import cellagent_test.lab  # noqa: E402
import cellagent_test.modem  # noqa: E402

lab = broker = sub = agent = None


def setUpModule():
    global lab, broker, sub, agent
    lab = ct.lab.Lab(personality="simtech", at_ports=1).start()   # the modem starts disabled
    broker = lab.start_broker()
    sub = broker.subscribe(["cellagent/#", "homeassistant/#"])
    agent = ct.modem.start_agent(lab, broker, telemetry={"homeassistant": True})


def tearDownModule():
    if agent and agent.alive():
        agent.stop()
    lab.stop()


def registered_with_signal(t):
    return (t["modem"]["state"] == "registered" and t["modem"]["signal_quality"] is not None
            and t["modem"]["access_tech"] and t["signal"]["rsrp"] is not None
            and t["network"]["tac"] is not None)


class TelemetryTest(unittest.TestCase):

    # ------------------------------------------------------------ steady state

    def test_01_enabled_by_agent_and_fields_match(self):
        """The agent enables the disabled modem; every field equals emulator and mmcli."""
        t = ct.modem.wait_telemetry(sub, registered_with_signal, timeout=30)
        # The telemetry that settles last is the one to compare (values trickle in).
        ct.wait_until(lambda: registered_with_signal(ct.modem.telemetry(sub)[-1]), 10,
                      "complete registered telemetry")
        t = ct.modem.telemetry(sub)[-1]
        ident = lab.emu.identity
        info = lab.mm.info()
        sim = ct.modem.mmcli_kv(lab, "-i", info["modem.generic.sim"])
        loc = ct.modem.mmcli_kv(lab, "-m", "any", "--location-get")
        sig = ct.modem.mmcli_kv(lab, "-m", "any", "--signal-get")

        m = t["modem"]
        self.assertEqual(m["state"], "registered")
        self.assertEqual(m["state"], info["modem.generic.state"])
        self.assertIsNone(m["failed_reason"])
        self.assertEqual(m["manufacturer"], ident["manufacturer"])
        self.assertEqual(m["manufacturer"], info["modem.generic.manufacturer"])
        self.assertEqual(m["model"], ident["model"])
        self.assertEqual(m["model"], info["modem.generic.model"])
        self.assertEqual(m["revision"], ident["revision"])
        self.assertEqual(m["revision"], info["modem.generic.revision"])
        self.assertEqual(m["imei"], ident["imei"])
        self.assertEqual(m["imei"], info["modem.3gpp.imei"])
        self.assertEqual(m["access_tech"], ["lte"])
        self.assertEqual(m["access_tech"], info["modem.generic.access-technologies"])
        self.assertEqual(m["signal_quality"], 70)                      # CSQ 22
        self.assertEqual(m["signal_quality"], int(info["modem.generic.signal-quality.value"]))

        s = t["signal"]
        self.assertEqual(s["rsrp"], ident["rsrp"])
        self.assertEqual(s["rsrp"], ct.modem.mm_number(sig["modem.signal.lte.rsrp"]))
        self.assertEqual(s["rsrq"], ident["rsrq"])
        self.assertEqual(s["rsrq"], ct.modem.mm_number(sig["modem.signal.lte.rsrq"]))
        self.assertEqual(s["rssi"], ct.modem.mm_number(sig["modem.signal.lte.rssi"]))
        self.assertEqual(s["snr"], ct.modem.mm_number(sig["modem.signal.lte.snr"]))

        n = t["network"]
        self.assertEqual(n["registration"], "home")
        self.assertEqual(n["registration"], info["modem.3gpp.registration-state"])
        self.assertEqual(n["operator_code"], ident["operator_code"])
        self.assertEqual(n["operator_code"], info["modem.3gpp.operator-code"])
        self.assertEqual(n["operator_name"], ident["operator_name"])
        self.assertEqual(n["operator_name"], info["modem.3gpp.operator-name"])
        self.assertEqual(n["lac"], ct.modem.hex_or_none(loc["modem.location.3gpp.lac"]))
        self.assertEqual(n["tac"], ct.modem.hex_or_none(loc["modem.location.3gpp.tac"]))
        self.assertEqual(int(n["tac"], 16), int(ident["tac"], 16))
        self.assertEqual(n["cell_id"], ct.modem.hex_or_none(loc["modem.location.3gpp.cid"]))
        self.assertEqual(int(n["cell_id"], 16), int(ident["cell"], 16))

        c = t["sim"]
        self.assertEqual(c["iccid"], ident["iccid"])
        self.assertEqual(c["iccid"], sim["sim.properties.iccid"])
        self.assertEqual(c["imsi"], ident["imsi"])
        self.assertEqual(c["imsi"], sim["sim.properties.imsi"])
        self.assertEqual(c["operator_code"], ident["operator_code"])
        self.assertEqual(c["operator_code"], sim["sim.properties.operator-code"])
        self.assertEqual(c["operator_name"], sim["sim.properties.operator-name"])
        self.assertTrue(c["present"])
        self.assertEqual(c["lock"], "none")

        b = t["bearer"]
        self.assertIs(b["connected"], False)
        self.assertIsNone(b["interface"])
        self.assertIsNone(info["modem.generic.bearers"])

        # Events told the story: added (disabled; under load the agent's Enable may already
        # be under way when the event is built), then the state walk to registered.
        added = ct.modem.events(sub, type="modem-added")
        self.assertEqual(added[0]["imei"], ident["imei"])
        self.assertIn(added[0]["state"], ("disabled", "enabling"))
        self.assertTrue(ct.modem.events(sub, type="registration-changed"))
        # Retained: a late subscriber gets the latest telemetry at once.
        late = broker.subscribe(ct.modem.TELEMETRY)
        late.wait_for(ct.modem.TELEMETRY, lambda x: ct.modem.field(x, "json.modem.state") == "registered",
                      timeout=5)
        late.close()
        # The lab did not enable the modem: the agent did.
        agent.wait_log(r"Modem/\d+: disabled, enabling", 1)

    def test_02_signal_change_within_2s(self):
        mark = ct.modem.mark(sub)
        t0 = time.monotonic()
        lab.modem.set_signal(csq=12)
        t = ct.modem.wait_telemetry(sub, lambda x: ct.modem.field(x, "modem.signal_quality") not in (70, None),
                                    timeout=2, since=mark)
        elapsed = time.monotonic() - t0
        self.assertLess(elapsed, 2.0)
        self.assertEqual(t["modem"]["signal_quality"],
                         int(lab.mm.info()["modem.generic.signal-quality.value"]))
        # An RSRP change (Signal interface, refreshed every signal-rate s) arrives too.
        mark = ct.modem.mark(sub)
        lab.modem.set_signal(rsrp=-105)
        t = ct.modem.wait_telemetry(sub, lambda x: ct.modem.field(x, "signal.rsrp") == -105, timeout=5, since=mark)

    def test_03_changes_inside_deadband_publish_nothing(self):
        quality = ct.modem.telemetry(sub)[-1]["modem"]["signal_quality"]
        mark = ct.modem.mark(sub)
        # CSQ 12 -> 13: a couple of points; RSRP -105 -> -104: 1 dB. ModemManager sees both.
        lab.modem.set_signal(csq=13, rsrp=-104)
        ct.wait_until(lambda: int(lab.mm.info()["modem.generic.signal-quality.value"])
                      != quality, 5, "ModemManager to see the small quality change")
        ct.wait_until(lambda: ct.modem.mm_number(ct.modem.mmcli_kv(lab, "-m", "any", "--signal-get")
                                                 ["modem.signal.lte.rsrp"]) == -104,
                      5, "ModemManager to see the small RSRP change")
        small_quality = int(lab.mm.info()["modem.generic.signal-quality.value"])
        self.assertLess(abs(small_quality - quality), 5)
        # Now a change beyond the deadband: it must be the first telemetry since the mark,
        # i.e. the small changes (which ModemManager signalled before it) published nothing.
        lab.modem.set_signal(csq=22, rsrp=-95)
        t = ct.modem.wait_telemetry(sub, lambda x: ct.modem.field(x, "modem.signal_quality") == 70, timeout=5,
                                    since=mark)
        published = ct.modem.telemetry(sub, mark)
        self.assertIs(published[0], t, "inside-deadband change was published: %s" % published)

    def test_04_registration_lost_and_regained(self):
        mark = ct.modem.mark(sub)
        lab.modem.set_registration(stat="searching")
        t = ct.modem.wait_telemetry(sub, lambda x: ct.modem.field(x, "network.registration") == "searching",
                                    timeout=5, since=mark)
        self.assertEqual(t["modem"]["state"], "searching")
        e = ct.modem.wait_event(sub, "registration-changed", lambda e: e["to"] == "searching",
                                timeout=5, since=mark)
        self.assertEqual(e["from"], "home")
        self.assertTrue(e["ts"].endswith("Z"))
        ct.modem.wait_event(sub, "modem-state-changed",
                            lambda e: e["from"] == "registered" and e["to"] == "searching",
                            timeout=5, since=mark)
        mark = ct.modem.mark(sub)
        lab.modem.set_registration(stat="roaming")
        ct.modem.wait_telemetry(sub, lambda x: ct.modem.field(x, "network.registration") == "roaming", timeout=5,
                                since=mark)
        ct.modem.wait_event(sub, "registration-changed", lambda e: e["to"] == "roaming", 5, mark)
        lab.modem.set_registration(stat="home")
        ct.modem.wait_telemetry(sub, lambda x: ct.modem.field(x, "network.registration") == "home"
                                and ct.modem.field(x, "modem.state") == "registered", timeout=5, since=mark)
        ct.modem.wait_event(sub, "registration-changed",
                            lambda e: e["from"] == "roaming" and e["to"] == "home", 5, mark)

    def test_05_cmd_telemetry(self):
        mark = ct.modem.mark(sub)
        res = ct.modem.command(broker, sub, "telemetry")
        self.assertTrue(res["ok"])
        self.assertEqual(res["result"]["modem"]["state"], "registered")
        t = ct.modem.wait_telemetry(sub, lambda x: True, timeout=5, since=mark)
        self.assertEqual(t["ts"], res["result"]["ts"])

    def test_06_min_spacing_after_reload(self):
        """A noisy signal beyond the deadband publishes at most once per min-spacing."""
        ct.modem.reload_agent(agent, telemetry={"min-spacing": 3})
        agent.wait_log(r"configuration reloaded", 10)
        mark = ct.modem.mark(sub)
        t0 = time.monotonic()
        for i in range(10):
            lab.modem.set_signal(csq=22 if i % 2 else 10)
            time.sleep(0.2)   # pacing the noise source, not waiting for a result
        # 10 changes over 2 s: the first at once, the rest coalesced after the spacing.
        ct.modem.wait_telemetry(sub, lambda x: ct.modem.field(x, "modem.signal_quality") == 70, timeout=8,
                                since=mark)
        window = time.monotonic() - t0
        count = len(ct.modem.telemetry(sub, mark))
        self.assertLessEqual(count, 1 + int(window / 3) + 1)
        self.assertGreaterEqual(count, 1)
        ct.modem.reload_agent(agent, telemetry={"min-spacing": 0})
        agent.wait_log(r"configuration reloaded(.|\n)*configuration reloaded", 10)

    def test_07_homeassistant_discovery(self):
        # A late subscriber gets them: the configs are retained (as Home Assistant needs).
        late = broker.subscribe("homeassistant/#")
        configs = ct.wait_until(
            lambda: (lambda ms: ms if len(ms) >= 10 else None)(late.matching()),
            10, "retained discovery messages")
        late.close()
        seen = set()
        for m in configs:
            levels = m["topic"].split("/")
            self.assertEqual(len(levels), 5, m["topic"])
            self.assertIn(levels[1], ("sensor", "binary_sensor"))
            self.assertRegex(levels[2], r"^[A-Za-z0-9_-]+$")
            self.assertRegex(levels[3], r"^[A-Za-z0-9_-]+$")
            self.assertEqual(levels[4], "config")
            self.assertTrue(m.get("retain"), "discovery config must be retained")
            cfg = m["json"]
            # The data usage sensors read <base>/usage (docs/usage.md), the rest telemetry.
            self.assertEqual(cfg["state_topic"], ct.modem.BASE + "/usage"
                             if levels[3].startswith("data_") else ct.modem.TELEMETRY)
            self.assertEqual(cfg["availability_topic"], ct.modem.STATUS)
            self.assertIn("{{", cfg["value_template"])
            self.assertNotIn(cfg["unique_id"], seen)
            seen.add(cfg["unique_id"])
            self.assertTrue(cfg["device"]["identifiers"])
            self.assertTrue(cfg["name"])
            if cfg.get("device_class") == "signal_strength":
                self.assertIn(cfg["unit_of_measurement"], ("dB", "dBm"))
        keys = {m["topic"].split("/")[3] for m in configs}
        for want in ("signal_quality", "rsrp", "sinr", "operator", "registration",
                     "access_tech", "connected"):
            self.assertIn(want, keys)
        # Switched off by a reload: the agent deletes its entities (empty retained configs).
        mark = ct.modem.mark(sub)
        ct.modem.reload_agent(agent, telemetry={"homeassistant": False})
        ct.wait_until(lambda: len([m for m in sub.messages[mark:]
                                   if m["topic"].startswith("homeassistant/")
                                   and m["payloadlen"] == 0]) >= len(configs),
                      10, "empty discovery configs")
        ct.modem.reload_agent(agent, telemetry={"homeassistant": True})
        late = broker.subscribe("homeassistant/#")
        ct.wait_until(lambda: len(late.matching()) >= len(configs), 10,
                      "discovery configs published again")
        late.close()

    def test_08_match(self):
        """[modem] match: a non-matching IMEI selects nothing; the IMEI or the physical
        device path (applied by a reload) select the modem."""
        other = ct.modem.start_agent(lab, broker, name="agent-match",
                                     agent={"device-id": "dev2"}, modem={"match": "000000000000000"})
        try:
            topic = "cellagent/dev2/telemetry"
            sub.wait_for(topic, lambda m: m["json"]["modem"] == {"state": "absent"}, timeout=15)
            other.wait_log(r"no modem matches \[modem\] match", 5)
            device = lab.mm.info()["modem.generic.device"]
            for match in (lab.emu.identity["imei"], device + "/"):
                mark = ct.modem.mark(sub)
                ct.modem.reload_agent(other, modem={"match": match})
                sub.wait_for(topic, lambda m: ct.modem.field(m["json"], "modem.state") == "registered"
                             and sub.messages.index(m) >= mark, timeout=15)
                mark = ct.modem.mark(sub)
                ct.modem.reload_agent(other, modem={"match": "000000000000000"})
                sub.wait_for(topic, lambda m: m["json"]["modem"] == {"state": "absent"}
                             and sub.messages.index(m) >= mark, timeout=15)
        finally:
            other.stop()

    # ------------------------------------------------------------ disruptions

    def test_10_unplug_and_replug(self):
        old_path = ct.modem.events(sub, type="modem-added")[-1]["path"]
        mark = ct.modem.mark(sub)
        lab.mm.unplug()
        t = ct.modem.wait_telemetry(sub, ct.modem.state_is("absent"), timeout=15, since=mark)
        self.assertEqual(set(t.keys()), {"ts", "modem"})
        self.assertEqual(t["modem"], {"state": "absent"})
        e = ct.modem.wait_event(sub, "modem-removed", timeout=5, since=mark)
        self.assertEqual(e["path"], old_path)
        mark = ct.modem.mark(sub)
        lab.mm.replug()
        e = ct.modem.wait_event(sub, "modem-added", timeout=30, since=mark)
        self.assertNotEqual(e["path"], old_path)
        # Enabled by the agent (nothing else enables it) and publishing from the new object.
        t = ct.modem.wait_telemetry(sub, registered_with_signal, timeout=20, since=mark)
        self.assertEqual(lab.mm.state(), "registered")
        self.assertEqual(t["modem"]["imei"], lab.emu.identity["imei"])

    def test_11_modemmanager_sigterm_restart(self):
        self._restart(signal.SIGTERM)

    def test_12_modemmanager_sigkill_restart(self):
        self._restart(signal.SIGKILL)

    def _restart(self, sig):
        pid = agent.proc.pid
        mark = ct.modem.mark(sub)
        lab.mm.stop(sig)
        ct.modem.wait_telemetry(sub, ct.modem.state_is("absent"), timeout=15, since=mark)
        ct.modem.wait_event(sub, "modem-removed", timeout=5, since=mark)
        agent.wait_log(r"ModemManager left the system bus", 5)
        mark = ct.modem.mark(sub)
        lab.mm.start(wait=True)
        ct.modem.wait_event(sub, "modem-added", timeout=30, since=mark)
        ct.modem.wait_telemetry(sub, registered_with_signal, timeout=20, since=mark)
        self.assertEqual(lab.mm.state(), "registered")
        self.assertTrue(agent.alive())
        self.assertEqual(agent.proc.pid, pid)
        # And it still follows changes.
        mark = ct.modem.mark(sub)
        lab.modem.set_signal(csq=10)
        ct.modem.wait_telemetry(sub, lambda x: ct.modem.field(x, "modem.signal_quality") not in (70, None),
                                timeout=5, since=mark)
        lab.modem.set_signal(csq=22)
        ct.modem.wait_telemetry(sub, lambda x: ct.modem.field(x, "modem.signal_quality") == 70, timeout=5,
                                since=mark)

    def test_13_modemmanager_frozen(self):
        """SIGSTOP for 10 s: commands answered, keepalive intact; recovers after SIGCONT."""
        connects = ct.modem.agent_log_count(agent, "connected to 127.0.0.1")
        status_mark = len([m for m in sub.messages if m["topic"] == ct.modem.STATUS])
        lab.mm.pause()
        try:
            t0 = time.monotonic()
            # A reload that needs a D-Bus call (Signal.Setup with a new rate) while frozen.
            ct.modem.reload_agent(agent, telemetry={"signal-rate": 2})
            agent.wait_log(r"Signal.Setup\(2\)", 5)
            answered = 0
            while time.monotonic() - t0 < 10:
                t1 = time.monotonic()
                res = ct.modem.command(broker, sub, "telemetry", timeout=3)
                self.assertTrue(res["ok"])
                self.assertLess(time.monotonic() - t1, 3)
                answered += 1
                time.sleep(1)   # pacing the probes over the 10 s freeze
            self.assertGreaterEqual(answered, 5)
        finally:
            lab.mm.resume()
        # The keepalive (5 s) never lapsed: same connection, no offline status, no reconnect.
        self.assertEqual(ct.modem.agent_log_count(agent, "connected to 127.0.0.1"), connects)
        statuses = [m["json"] for m in sub.messages if m["topic"] == ct.modem.STATUS][status_mark:]
        self.assertFalse([s for s in statuses if s.get("state") == "offline"], statuses)
        # Recovers: the queued Signal.Setup completes and changes flow again.
        ct.wait_until(lambda: ct.modem.mmcli_kv(lab, "-m", "any", "--signal-get")
                      ["modem.signal.refresh.rate"] == "2", 30, "signal rate 2")
        mark = ct.modem.mark(sub)
        lab.modem.set_signal(csq=10)
        ct.modem.wait_telemetry(sub, lambda x: ct.modem.field(x, "modem.signal_quality") not in (70, None),
                                timeout=5, since=mark)

    def test_14_clean_stop_publishes_no_absent(self):
        mark = ct.modem.mark(sub)
        rc, _ = agent.stop()
        self.assertEqual(rc, 0)
        sub.wait_for(ct.modem.STATUS, lambda m: m["json"]["state"] == "offline", timeout=5)
        self.assertFalse([t for t in ct.modem.telemetry(sub, mark) if t["modem"]["state"] == "absent"])


if __name__ == "__main__":
    ct.lab.main(network=False)
