#!/usr/bin/python3
# ctest: labels=integration;lab timeout=300
"""SIM states end to end (real ModemManager, emulated modem, real mosquitto), one lab:
SIM absent -> telemetry `failed` with reason `sim-missing` and an event; PIN-locked with
the right pin-file -> unlocked and registered; a wrong PIN -> sent once, reported (event,
telemetry, log) and never sent again, not after a replug, a ModemManager restart or an
agent restart; a corrected pin-file (SIGHUP) -> unlocked; the refusal is written durably
(the file and its directory synced before the event, seen with strace).
"""

import os
import re
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402
import cellagent_test.lab  # noqa: E402
import cellagent_test.modem  # noqa: E402

lab = broker = sub = agent = None
pin_file = None


def setUpModule():
    global lab, broker, sub, agent, pin_file
    lab = ct.lab.Lab(personality="simtech", emu_settings={"sim": "absent"}).start()
    broker = lab.start_broker()
    sub = broker.subscribe("cellagent/#")
    pin_file = ct.modem.write_pin_file(lab.run_dir, "1234")
    agent = ct.modem.start_agent(lab, broker, modem={"pin-file": pin_file})


def tearDownModule():
    if agent and agent.alive():
        agent.stop()
    lab.stop()


def pin_attempts(pin):
    """SendPin attempts the emulator saw with this PIN."""
    rx = re.compile(r'^AT\+CPIN="?%s"?' % pin)
    return len([c for c in lab.modem.commands() if rx.match(c["cmd"])])


def replug():
    lab.mm.unplug()
    ct.wait_until(lambda: not lab.mm.modems(), 10, "the modem object to go")
    lab.mm.replug()


class SimTest(unittest.TestCase):

    def test_1_sim_absent(self):
        t = ct.modem.wait_telemetry(sub, ct.modem.state_is("failed"), timeout=30)
        self.assertEqual(t["modem"]["failed_reason"], "sim-missing")
        info = lab.mm.info()
        self.assertEqual(info["modem.generic.state"], "failed")
        self.assertEqual(info["modem.generic.state-failed-reason"], "sim-missing")
        self.assertIs(t["sim"]["present"], False)
        self.assertIsNone(t["sim"]["iccid"])
        self.assertIsNone(t["modem"]["signal_quality"])
        self.assertEqual(t["modem"]["imei"], lab.emu.identity["imei"])
        e = ct.modem.wait_event(sub, "sim-missing", timeout=5)
        self.assertEqual(e["failed_reason"], "sim-missing")
        self.assertIn("SIM", e["message"])

    def test_2_pin_locked_right_pin(self):
        lab.modem.set_sim("pin")
        lab.modem.clear_dump()
        mark = ct.modem.mark(sub)
        replug()
        e = ct.modem.wait_event(sub, "sim-locked", timeout=30, since=mark)
        self.assertEqual(e["lock"], "sim-pin")
        ct.modem.wait_event(sub, "sim-unlocked", timeout=15, since=mark)
        t = ct.modem.wait_telemetry(sub, lambda x: ct.modem.field(x, "modem.state") == "registered"
                                    and ct.modem.field(x, "sim.iccid") is not None, timeout=30, since=mark)
        self.assertEqual(t["sim"]["iccid"], lab.emu.identity["iccid"])
        self.assertEqual(t["sim"]["pin"], "unlocked")
        self.assertEqual(t["sim"]["lock"], "none")
        self.assertEqual(lab.mm.state(), "registered")
        self.assertEqual(pin_attempts("1234"), 1)
        agent.wait_log(r"SIM unlocked with the PIN from pin-file", 1)

    def test_3_wrong_pin_reported_not_retried(self):
        global agent
        lab.modem.set_sim("pin", pin="4321", pin_retries=3)
        lab.modem.clear_dump()
        mark = ct.modem.mark(sub)
        replug()
        e = ct.modem.wait_event(sub, "sim-pin-wrong", timeout=30, since=mark)
        self.assertIn("not sent again", e["message"])
        self.assertEqual(e["retries_left"], 2)
        t = ct.modem.wait_telemetry(sub, lambda x: ct.modem.field(x, "sim.pin") == "wrong", timeout=10, since=mark)
        self.assertEqual(t["modem"]["state"], "locked")
        self.assertEqual(t["sim"]["lock"], "sim-pin")
        agent.wait_log(r"the SIM refused the PIN from .*it will not be sent again", 1)
        self.assertEqual(pin_attempts("1234"), 1)

        # Replugged: still wrong, still not sent.
        mark = ct.modem.mark(sub)
        replug()
        e = ct.modem.wait_event(sub, "sim-pin-wrong", timeout=30, since=mark)
        self.assertEqual(pin_attempts("1234"), 1)

        # ModemManager killed and restarted: not sent.
        mark = ct.modem.mark(sub)
        lab.mm.restart(signal.SIGKILL)
        ct.modem.wait_event(sub, "sim-pin-wrong", timeout=30, since=mark)
        self.assertEqual(pin_attempts("1234"), 1)

        # The agent restarted (the refusal is kept in state-dir): not sent.
        agent.stop()
        mark = ct.modem.mark(sub)
        agent = ct.modem.start_agent(lab, broker, name="agent2", modem={"pin-file": pin_file},
                                     agent={"state-dir": os.path.join(lab.run_dir, "state-agent")})
        ct.modem.wait_event(sub, "sim-pin-wrong", timeout=30, since=mark)
        self.assertEqual(pin_attempts("1234"), 1)
        self.assertEqual(lab.modem.status()["settings"]["pin_retries"], 2)
        self.assertEqual(lab.mm.state(), "locked")

    def test_4_corrected_pin_file_unlocks(self):
        mark = ct.modem.mark(sub)
        ct.modem.write_pin_file(lab.run_dir, "4321")
        # Same file name, new content: a reload makes the agent read it again.
        agent.proc.send_signal(signal.SIGHUP)
        ct.modem.wait_event(sub, "sim-unlocked", timeout=30, since=mark)
        ct.modem.wait_telemetry(sub, ct.modem.state_is("registered"), timeout=30, since=mark)
        self.assertEqual(pin_attempts("4321"), 1)

    def test_5_refusal_written_durably(self):
        """After a power cut a refused PIN must stay refused: the record is synced (file
        and directory) before the refusal is reported."""
        global agent
        agent.stop()
        state = os.path.join(lab.run_dir, "state-agent3")
        trace = os.path.join(lab.run_dir, "logs", "agent3.strace")
        ct.modem.write_pin_file(lab.run_dir, "1234")
        settings = ct.modem.agent_settings(broker, modem={"pin-file": pin_file},
                                           agent={"state-dir": state})
        agent = ct.Agent.in_lab(lab, settings, name="agent3").start()
        agent.wait_log(r"-> connected", 20)
        # strace attaches to the running agent (as a launcher it would outlive SIGTERM).
        tracer = subprocess.Popen(["strace", "-f", "-y", "-e",
                                   "trace=fsync,fdatasync,rename,renameat,renameat2",
                                   "-o", trace, "-p", str(agent.proc.pid)],
                                  stderr=subprocess.PIPE, text=True)
        attached = tracer.stderr.readline()
        self.assertIn("attached", attached)
        lab.modem.set_sim("pin", pin="9999", pin_retries=3)
        mark = ct.modem.mark(sub)
        replug()
        ct.modem.wait_event(sub, "sim-pin-wrong", timeout=30, since=mark)
        tracer.send_signal(signal.SIGINT)
        tracer.wait(10)
        agent.stop()
        with open(trace) as f:
            calls = f.read().splitlines()
        record = os.path.join(state, "modem-pin-rejected")
        synced = [c for c in calls if re.search(r"f(data)?sync\(\d+<%s(\.tmp)?>" % re.escape(record), c)]
        dir_synced = [c for c in calls if re.search(r"fsync\(\d+<%s>\)" % re.escape(state), c)]
        self.assertTrue(synced, "no fsync of %s:\n%s" % (record, "\n".join(calls[-30:])))
        self.assertTrue(dir_synced, "no fsync of %s:\n%s" % (state, "\n".join(calls[-30:])))
        with open(record) as f:
            self.assertEqual(len(f.read().strip()), 64)


if __name__ == "__main__":
    ct.lab.main(network=False)
