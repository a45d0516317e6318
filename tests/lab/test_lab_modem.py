#!/usr/bin/python3
# ctest: name=lab-modem labels=lab timeout=120
"""Lab self-test: the real ModemManager drives the emulated SIMCom A7670E.

One lab for the module (ModemManager + simtech emulator, two AT ports):
identity and registration as the emulator reports them, runtime signal and
registration changes, unplug/replug under a new object path, SIM locked
(PIN 1234) and missing, and a ModemManager restart (SIGKILL) with ports
re-announced.
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402
import cellagent_test.lab  # noqa: E402

lab = None


def setUpModule():
    global lab
    lab = ct.lab.Lab(personality="simtech", at_ports=2, enable=True).start()


def tearDownModule():
    lab.stop()


class ModemTest(unittest.TestCase):
    """Tests run in name order; the hot-plug and restart ones come last."""

    def test_1_identity_and_registration(self):
        info = lab.mm.info()
        ident = lab.emu.identity
        self.assertEqual(info["modem.generic.plugin"], "simtech")
        self.assertEqual(info["modem.generic.state"], "registered")
        self.assertEqual(info["modem.generic.manufacturer"], ident["manufacturer"])
        self.assertEqual(info["modem.generic.model"], ident["model"])
        self.assertEqual(info["modem.generic.revision"], ident["revision"])
        self.assertEqual(info["modem.3gpp.imei"], ident["imei"])
        self.assertEqual(info["modem.3gpp.operator-code"], ident["operator_code"])
        self.assertEqual(info["modem.3gpp.operator-name"], ident["operator_name"])
        self.assertEqual(info["modem.3gpp.registration-state"], "home")
        self.assertEqual(info["modem.generic.access-technologies"], ["lte"])
        self.assertEqual(info["modem.generic.signal-quality.value"], "70")   # CSQ 22
        self.assertEqual(sorted(info["modem.generic.ports"]), ["ttyUSB0 (at)", "ttyUSB1 (at)"])
        sim = ct.lab.parse_keyvalues(lab.mm.mmcli("-i", info["modem.generic.sim"], "-K"))
        self.assertEqual(sim["sim.properties.iccid"], ident["iccid"])
        self.assertEqual(sim["sim.properties.imsi"], ident["imsi"])
        self.assertEqual(sim["sim.properties.operator-code"], ident["operator_code"])

    def test_2_location_and_signal_interfaces(self):
        lab.mm.mmcli("-m", "any", "--location-enable-3gpp")
        loc = ct.lab.parse_keyvalues(lab.mm.mmcli("-m", "any", "--location-get", "-K"))
        self.assertEqual(loc["modem.location.3gpp.tac"].upper().lstrip("0"), "1A2B")
        self.assertEqual(loc["modem.location.3gpp.cid"].upper().lstrip("0"), "1A2B3C4")
        self.assertEqual(loc["modem.location.3gpp.mcc"], "639")
        lab.mm.mmcli("-m", "any", "--signal-setup=5")
        sig = ct.wait_until(
            lambda: (lambda s: s if s.get("modem.signal.lte.rsrp") else None)(
                ct.lab.parse_keyvalues(lab.mm.mmcli("-m", "any", "--signal-get", "-K"))),
            15, "LTE signal values")
        self.assertEqual(float(sig["modem.signal.lte.rsrp"]), -95.0)
        self.assertEqual(float(sig["modem.signal.lte.rsrq"]), -10.0)

    def test_3_runtime_signal_and_registration(self):
        lab.modem.set_signal(csq=10)       # unsolicited +CSQ (AUTOCSQ)
        ct.wait_until(lambda: lab.mm.info()["modem.generic.signal-quality.value"] == "32",
                      5, "signal quality 32 %")
        lab.modem.set_registration(stat="roaming")
        ct.wait_until(lambda: lab.mm.info()["modem.3gpp.registration-state"] == "roaming",
                      5, "roaming")
        lab.modem.set_registration(stat="searching")
        lab.mm.wait_state("searching", timeout=5)
        lab.modem.set_registration(stat="home")
        lab.mm.wait_state("registered", timeout=5)
        lab.modem.set_signal(csq=22)

    def test_4_unplug_and_replug(self):
        old = lab.mm.modems()
        lab.mm.unplug()
        ct.wait_until(lambda: not lab.mm.modems(), 10, "the modem object to go")
        lab.mm.replug()
        new = lab.mm.wait_modem(timeout=30)
        self.assertNotIn(new, old)
        self.assertEqual(lab.mm.enable(new), "registered")

    def test_5_sim_states(self):
        lab.modem.set_sim("pin")
        lab.mm.unplug()
        ct.wait_until(lambda: not lab.mm.modems(), 10, "the modem object to go")
        lab.mm.replug()
        lab.mm.wait_modem()
        lab.mm.wait_state("locked")
        info = lab.mm.info()
        self.assertEqual(info["modem.generic.unlock-required"], "sim-pin")
        self.assertIn("sim-pin (3)", info["modem.generic.unlock-retries"])
        lab.mm.mmcli("-i", info["modem.generic.sim"], "--pin=1234")
        lab.mm.wait_state(("disabled", "registered"))
        lab.modem.set_sim("absent")
        lab.mm.restart()
        lab.mm.wait_state("failed")
        self.assertEqual(lab.mm.info()["modem.generic.state-failed-reason"], "sim-missing")
        lab.modem.set_sim("ready")

    def test_6_modemmanager_restart(self):
        lab.modem.clear_dump()
        lab.mm.restart(ct.lab.signal.SIGKILL)
        self.assertIn(lab.mm.state(), ("disabled", "enabling", "registered"))
        self.assertEqual(lab.mm.enable(), "registered")
        cmds = [c["cmd"] for c in lab.modem.commands()]
        self.assertIn("AT+CGSN", cmds)     # probed again from scratch


if __name__ == "__main__":
    ct.lab.main(network=False)
