#!/usr/bin/python3
# ctest: labels=integration;lab timeout=240
"""Watchdog budgets: with reboot=true and a reboot command that records instead of
rebooting, a permanently dead uplink (the only one) triggers at most reboot-budget
reboots per day, also across agent restarts (the history lives in state-dir)."""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402
import cellagent_test.lab  # noqa: E402
import cellagent_test.uplink  # noqa: E402

lab = broker = None
BUDGET = 2


def setUpModule():
    global lab, broker
    lab, broker = ct.uplink.start_lab(uplinks=1, broker="dut")


def tearDownModule():
    lab.stop()


class Budget(unittest.TestCase):

    def test_reboot_budget_across_restarts(self):
        record = os.path.join(lab.run_dir, "reboots")
        state = os.path.join(lab.run_dir, "budget-state")
        settings = ct.uplink.agent_settings(
            lab, broker, {"wan1": {"connection": "uplink1"}},
            watchdog={"steps": "reactivate;reboot", "start-after": 1, "reactivate-cooldown": 1,
                      "reboot-cooldown": 2, "reboot": True, "reboot-budget": BUDGET,
                      "reboot-command": "/bin/sh -c 'date +%%s.%%N >> %s'" % record},
            extra={"agent": {"state-dir": state}})
        sub = ct.uplink.subscribe(broker)

        def reboots():
            try:
                with open(record) as f:
                    return len(f.read().split())
            except FileNotFoundError:
                return 0

        try:
            lab.net.carrier(1, False)      # dead for good: no uplink works, a reboot may help
            agent = ct.uplink.start_agent(lab, settings, name="budget-1")
            ct.wait_until(lambda: reboots() >= BUDGET, 30, "%d reboots" % BUDGET)
            # The ladder goes on (re-activation keeps being tried) but no more reboots.
            t0 = time.monotonic()
            ct.wait_until(lambda: len(ct.uplink.events(sub, "watchdog", after=t0)) >= 2, 40,
                          "the watchdog carrying on")
            self.assertEqual(reboots(), BUDGET)
            steps = [e["step"] for e in ct.uplink.events(sub, "watchdog")]
            self.assertEqual(steps.count("reboot"), BUDGET)
            self.assertEqual(steps[0], "reactivate")
            rb = [e for e in ct.uplink.events(sub, "watchdog") if e["step"] == "reboot"]
            self.assertEqual([e["budget_left"] for e in rb], [BUDGET - 1, 0])
            self.assertFalse(rb[0]["evidence"]["carrier"])
            self.assertEqual(ct.uplink.stop_agent(agent), 0)
            with open(os.path.join(state, "watchdog.state")) as f:
                text = f.read()
            reboot_history = text.split("[reboot]")[1].split("history=")[1].splitlines()[0]
            self.assertEqual(len([x for x in reboot_history.split(";") if x]), BUDGET, text)

            # A new agent process (a restart, or the "reboot" we recorded) keeps the budget.
            agent = ct.uplink.start_agent(lab, settings, name="budget-2")
            t1 = time.monotonic()
            ct.wait_until(lambda: len([e for e in ct.uplink.events(sub, "watchdog", after=t1)
                                       if e["step"] == "reactivate"]) >= 3, 40,
                          "three re-activations after the restart")
            self.assertIn("down", ct.uplink.link(sub)["uplinks"]["wan1"]["state"])
            self.assertEqual(reboots(), BUDGET)
            self.assertEqual([e for e in ct.uplink.events(sub, "watchdog", after=t1) if e["step"] == "reboot"], [])
            self.assertEqual(ct.uplink.stop_agent(agent), 0)
        finally:
            sub.close()
            lab.net.restore(1)


if __name__ == "__main__":
    ct.lab.main()
