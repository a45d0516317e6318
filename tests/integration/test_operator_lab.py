#!/usr/bin/python3
# ctest: labels=integration;lab timeout=300
"""The operator's tools in the lab: the emulated SIMCom modem (simtech) on the real
ModemManager, two wired uplinks on the real NetworkManager, a real mosquitto with a
password, and the agent with an SMS command secret and a SIM PIN file.

`cellagent --status` shows the modem the lab has (state, registration, operator, access
technology, signal, model) and the three uplinks, wan1 carrying the default route as the
kernel has it; `--status --json` says the same.

`cellagent --diagnose` (as root, so with the journal) writes a tar.gz holding the modem
(plugin simtech, its USB id and drivers), the SIM and NetworkManager's uplinks and profiles,
the configuration with file and line, the status, and none of the test's secrets (MQTT
password, SIM PIN, TOTP secret), the SMS text it received, or the personal data (IMEI,
IMSI, ICCID, phone numbers) anywhere. With ModemManager frozen (SIGSTOP) the bundle is still
written within 10 s and says that ModemManager timed out.

cmd/diagnose from the broker: the agent's own bundle (no journal) arrives in chunks that
reassemble to the announced SHA-256, holds the modem (simtech) and none of those secrets.

Stopped, the agent is reported not running (exit 3).
"""
import base64
import hashlib
import io
import os
import sys
import tarfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402
import cellagent_test.lab  # noqa: E402
import cellagent_test.uplink  # noqa: E402
import cellagent_test.commands  # noqa: E402

BASE = "cellagent/dev1"
MQTT_PASSWORD = "mqtt-pw-Q7x9Lk2Z"
PIN = "60719384"
SMS_TEXT = "private words 5d1e9c for nobody"

lab = broker = sub = agent = None
totp_secret = None


def setUpModule():
    global lab, broker, sub, agent, totp_secret
    lab = ct.lab.Lab(personality="simtech", uplinks=2, enable=True).start()
    lab.nm.wait_connected("eth1")
    lab.nm.wait_connected("eth2")
    ct.uplink.enable_ping_sockets(lab)
    pw = ct.mqtt.passwd_file(os.path.join(lab.run_dir, "broker-passwd"),
                             {"dev1": MQTT_PASSWORD, "test": "test-pw"})
    broker = ct.Broker(lab=lab, allow_anonymous=False,
                       extra_conf="user root\npassword_file %s\n" % pw).start()
    lab.broker = broker
    sub = broker.subscribe([BASE + "/#"], extra_args=["-u", "test", "-P", "test-pw"])
    secrets = {}
    for name, value in (("mqtt-password", MQTT_PASSWORD), ("sim-pin", PIN)):
        path = secrets[name] = os.path.join(lab.run_dir, name)
        with open(path, "w") as f:
            f.write(value + "\n")
        os.chmod(path, 0o600)
    secrets["sms-secret"] = os.path.join(lab.run_dir, "sms-secret")
    totp_secret = ct.commands.write_secret(secrets["sms-secret"])
    settings = ct.uplink.agent_settings(
        lab, broker,
        {"wan1": {"connection": "uplink1", "priority": 10},
         "wan2": {"connection": "uplink2", "priority": 20}},
        watchdog={"enabled": True},
        extra={"mqtt": {"username": "dev1", "password-file": secrets["mqtt-password"]},
               "modem": {"pin-file": secrets["sim-pin"]},
               "sms-commands": {"enabled": True, "secret-file": secrets["sms-secret"],
                                "allowed-senders": "+254711000001"}})
    settings["health"]["probes"] = "icmp:%s;dns:%s" % (ct.lab.INTERNET_PROBE, ct.lab.INTERNET_DNS)
    settings["agent"]["state-dir"] = os.path.join(lab.run_dir, "agent-state")
    agent = ct.Agent(os.path.join(lab.run_dir, "logs"), settings, env=lab.env, name="agent",
                     wrapper=lab.dut_wrapper() + os.environ.get("CA_AGENT_WRAPPER", "").split())
    agent.start()
    agent.wait_log(r"using the Messaging interface", timeout=60)
    sub.wait_for(BASE + "/status", lambda m: (m["json"] or {}).get("state") == "online",
                 timeout=30)


def tearDownModule():
    try:
        rc = ct.uplink.stop_agent(agent)
        assert rc in (None, 0), rc
    finally:
        lab.stop()


def status_when(pred, timeout, what):
    """Wait until `--status --json` (exit 0) satisfies pred; return the document."""
    def check():
        rc, doc = agent.status_json()
        return doc if rc == 0 and pred(doc) else None
    return ct.wait_until(check, ct.scaled(timeout), what)


def settled(doc):
    m = (doc.get("modem") or {}).get("modem") or {}
    link = doc.get("link") or {}
    ups = link.get("uplinks") or {}
    return (m.get("state") == "registered" and m.get("signal_quality") is not None
            and (doc["modem"].get("network") or {}).get("operator_name")
            and link.get("active") == "wan1"
            and (ups.get("wan1") or {}).get("state") == "up"
            and (ups.get("wan2") or {}).get("state") == "up")


class OperatorTest(unittest.TestCase):

    def test_01_status_shows_the_lab(self):
        doc = status_when(settled, 60, "status: modem registered, wan1 and wan2 up")
        ident = lab.emu.identity
        info = lab.mm.info()
        m, net = doc["modem"]["modem"], doc["modem"]["network"]
        self.assertEqual(m["state"], info["modem.generic.state"])
        self.assertEqual(net["registration"], info["modem.3gpp.registration-state"])
        self.assertEqual(net["operator_code"], ident["operator_code"])
        self.assertEqual(m["model"], ident["model"])
        # Personal data redacted by default, in the JSON too.
        self.assertEqual(m["imei"], "###")
        self.assertEqual(doc["modem"]["sim"]["imsi"], "###")
        self.assertEqual(sorted(doc["link"]["uplinks"]), ["cellular", "wan1", "wan2"])
        self.assertEqual(doc["mqtt"]["state"], "connected")
        self.assertTrue(doc["watchdog"]["enabled"])

        rc, out, err = agent.status()
        self.assertEqual(rc, 0, err)
        route_dev = lab.net.route_dev()
        self.assertEqual(route_dev, "eth1")
        for want in ("state: registered",
                     "registration: home",
                     "operator: %s (%s)" % (net["operator_name"], ident["operator_code"]),
                     "access tech: lte",
                     "signal: %d %%" % m["signal_quality"],
                     "model: %s %s" % (m["manufacturer"], m["model"]),
                     "imei: ###",
                     "default route: wan1",
                     "wan1: up (carries the default route)",
                     "wan2: up\n",
                     "interface %s" % route_dev,
                     "cellular: ",
                     "state: connected",
                     "modem-reset: 0 used of"):
            self.assertIn(want, out)
        self.assertNotIn(ident["imei"], out)

        # --log-personal-info shows what the logs would show with it.
        rc, out, _ = agent.status("--log-personal-info")
        self.assertEqual(rc, 0)
        self.assertIn("imei: %s" % ident["imei"], out)

    def diagnose(self, *args):
        """Run --diagnose into the lab's run dir; (seconds taken, {member: text}, stderr)."""
        out = os.path.join(lab.run_dir, "bundle-%d.tar.gz" % len(os.listdir(lab.run_dir)))
        t0 = time.monotonic()
        r = agent.cli("--diagnose", "--output", out, *args)
        took = time.monotonic() - t0
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(os.stat(out).st_mode & 0o777, 0o600)
        members = {}
        with tarfile.open(out, "r:gz") as tar:
            names = tar.getnames()
            top = names[0]
            self.assertTrue(top.startswith("cellagent-diagnose-dev1-"), names)
            for m in tar.getmembers():
                self.assertTrue(m.name == top or m.name.startswith(top + "/"), m.name)
                if m.isfile():
                    members[m.name[len(top) + 1:]] = tar.extractfile(m).read().decode()
        with open(out, "rb") as f:
            raw = f.read()
        return took, members, r.stderr, raw

    def assert_no_secrets(self, members, raw):
        ident = lab.emu.identity
        secrets = {"MQTT password": MQTT_PASSWORD, "SIM PIN": PIN, "TOTP secret": totp_secret,
                   "SMS text": SMS_TEXT, "IMEI": ident["imei"], "IMSI": ident["imsi"],
                   "ICCID": ident["iccid"], "SMS sender": "+254711000001"}
        for name, text in members.items():
            for what, value in secrets.items():
                self.assertNotIn(value, text, "%s in %s" % (what, name))
        # Nor in the compressed bytes (a member this test does not know about).
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as tar:
            for m in tar.getmembers():
                if m.isfile():
                    data = tar.extractfile(m).read()
                    for what, value in secrets.items():
                        self.assertNotIn(value.encode(), data, "%s in %s" % (what, m.name))

    def test_02_bundle(self):
        status_when(settled, 60, "status settled")
        # A received SMS: its text must not reach the bundle (counts only).
        lab.modem.deliver_sms(SMS_TEXT)
        sub.wait_for(BASE + "/sms/in", lambda m: (m["json"] or {}).get("text") == SMS_TEXT,
                     timeout=30)
        took, members, err, raw = self.diagnose("--since", "1h")
        self.assertLess(took, 10)
        self.assertEqual(sorted(members), ["README.txt", "config.txt", "journal.txt",
                                           "modemmanager.txt", "networkmanager.txt",
                                           "status.json", "status.txt", "system.txt"])
        readme = members["README.txt"]
        self.assertIn("timed out:       nothing", readme)
        self.assertIn("journal:         the last 3600 s", readme)
        mm = members["modemmanager.txt"]
        self.assertIn("Plugin: 'simtech'", mm)
        self.assertIn("org.freedesktop.ModemManager1.Sim", mm)
        self.assertIn("EquipmentIdentifier: ###", mm)
        self.assertIn("Imsi: ###", mm)
        self.assertIn("SimIdentifier: ###", mm)
        self.assertRegex(mm, r"Messages: \d+ messages")
        self.assertIn("org.freedesktop.ModemManager1.Modem.Signal", mm)
        nm = members["networkmanager.txt"]
        self.assertIn("Interface: 'eth1'", nm)
        self.assertIn("Interface: 'eth2'", nm)
        self.assertIn("id: 'uplink1'", nm)
        self.assertIn("org.freedesktop.NetworkManager.Connection.Active", nm)
        system = members["system.txt"]
        self.assertIn("usb id 1e0e:9011", system)
        self.assertIn("driver option", system)
        self.assertIn("== routes", system)
        self.assertIn("== os-release", system)
        config = members["config.txt"]
        self.assertRegex(config, r"password-file=%s\s+# %s:\d+" % (
            os.path.join(lab.run_dir, "mqtt-password"), agent.config))
        doc = __import__("json").loads(members["status.json"])
        self.assertEqual(doc["modem"]["modem"]["state"], "registered")
        self.assertIn("Modem    |", members["status.txt"])
        self.assert_no_secrets(members, raw)

    def test_03_bundle_with_modemmanager_frozen(self):
        lab.mm.pause()
        try:
            took, members, err, raw = self.diagnose()
        finally:
            lab.mm.resume()
        self.assertLess(took, 10)
        self.assertIn("timed out", err)
        readme = members["README.txt"]
        self.assertRegex(readme, r"timed out: .*ModemManager")
        self.assertIn("TIMED OUT: ModemManager did not answer", members["modemmanager.txt"])
        # NetworkManager answered all the same.
        self.assertIn("Interface: 'eth1'", members["networkmanager.txt"])
        self.assert_no_secrets(members, raw)

    def test_04_cmd_diagnose(self):
        status_when(settled, 60, "status settled")
        broker.publish(BASE + "/cmd/diagnose", {"id": "lab-diag-1"},
                       extra_args=["-u", "test", "-P", "test-pw"])
        r = sub.wait_for(BASE + "/cmd/diagnose/result",
                         lambda m: (m["json"] or {}).get("id") == "lab-diag-1",
                         timeout=30)[0]["json"]
        self.assertTrue(r["ok"], r)
        res = r["result"]
        prefix = "%s/diagnose/%s/" % (BASE, res["bundle"])
        msgs = sub.wait_for(None, lambda m: m["topic"].startswith(prefix), timeout=20,
                            count=res["chunks"])
        parts = {m["json"]["n"]: base64.b64decode(m["json"]["data"]) for m in msgs}
        self.assertEqual(sorted(parts), list(range(res["chunks"])))
        raw = b"".join(parts[n] for n in range(res["chunks"]))
        self.assertEqual(hashlib.sha256(raw).hexdigest(), res["sha256"])
        members = {}
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as tar:
            top = tar.getnames()[0]
            for m in tar.getmembers():
                if m.isfile():
                    members[m.name[len(top) + 1:]] = tar.extractfile(m).read().decode()
        self.assertNotIn("journal.txt", members)
        self.assertIn("Plugin: 'simtech'", members["modemmanager.txt"])
        self.assertIn("Interface: 'eth1'", members["networkmanager.txt"])
        self.assert_no_secrets(members, raw)

    def test_99_stopped_agent_is_not_running(self):
        rc = ct.uplink.stop_agent(agent)
        self.assertEqual(rc, 0)
        rc, out, err = agent.status()
        self.assertEqual(rc, 3, (out, err))
        self.assertIn("cellagent is not running", err)


if __name__ == "__main__":
    ct.lab.main()
