#!/usr/bin/python3
# ctest: labels=integration;lab timeout=420
"""SMS command codes when NTP has not synchronised (issue 16, item 6): the real agent, the
real ModemManager driving the emulated modem (ECM personality), whose network time
(Modem.Time, AT+CCLK?) runs 10 minutes ahead of the system clock (emulator setting
clock_offset), and a real mosquitto. One lab; one agent per scenario, each with its own
state directory and secret.

systemd-timedated is python3-dbusmock's "timedated" template on the lab's private system
bus: the real timedated would set this machine's clock (SetTime), which a test must not do.
The mock records SetTime calls without changing any clock, answers NTPSynchronized as the
test sets it, and refuses SetTime (AccessDenied) when the test makes it.

- NTPSynchronized=false, SetTime accepted: the agent asks timedated once to set the clock
  to the network's time, publishes the "clock" event (source network, set true), and a code
  valid only at network time is accepted (audit "clock": "network").
- NTPSynchronized=false, SetTime refused: the event says so (set false, the error), and the
  network-time code is still accepted: the agent checks codes against network time.
- NTPSynchronized=true: nothing is set (no SetTime), the event says "ntp", the network-time
  code is refused as a wrong code and a code of the system clock is accepted.
"""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402
import cellagent_test.lab  # noqa: E402
import cellagent_test.commands  # noqa: E402

BASE = "cellagent/dev1"
OPERATOR = "+254700000001"
OFFSET = 600  # the network's time minus the system's, seconds
TIMEDATE = "org.freedesktop.timedate1"
TIMEDATE_PATH = "/org/freedesktop/timedate1"

lab = broker = sub = timedated = None


def setUpModule():
    global lab, broker, sub, timedated
    lab = ct.lab.Lab(personality="ecm", enable=True).start()
    broker = lab.start_broker()
    sub = broker.subscribe([BASE + "/#"])
    lab.modem.call("set", clock_offset=OFFSET)
    proc = ct.lab.Proc(lab, "timedated", [ct.PY, "-m", "dbusmock", "--system", "--template",
                                          "timedated", "--parameters", '{"NTP": false}'],
                       env=lab.env)
    lab.bus.wait_name(TIMEDATE, 20, proc)
    timedated = Timedated(lab.env["DBUS_SYSTEM_BUS_ADDRESS"])


def tearDownModule():
    lab.stop()


class Timedated:
    """The mock's control: its properties, SetTime's behaviour and its recorded calls."""

    def __init__(self, address):
        import dbus  # python3-dbus, which python3-dbusmock depends on
        self.dbus = dbus
        obj = dbus.bus.BusConnection(address).get_object(TIMEDATE, TIMEDATE_PATH)
        self.mock = dbus.Interface(obj, "org.freedesktop.DBus.Mock")
        self.props = dbus.Interface(obj, "org.freedesktop.DBus.Properties")

    def set_ntp_synchronized(self, value):
        self.props.Set(TIMEDATE, "NTPSynchronized", self.dbus.Boolean(value))

    def refuse_set_time(self):
        self.mock.AddMethod(TIMEDATE, "SetTime", "xbb", "",
                            "raise dbus.exceptions.DBusException('Permission denied (test)', "
                            "name='org.freedesktop.DBus.Error.AccessDenied')")

    def set_time_calls(self):
        return [[int(args[0]), bool(args[1]), bool(args[2])]
                for _, args in self.mock.GetMethodCalls("SetTime")]

    def clear_calls(self):
        self.mock.ClearCalls()


def events(type_, since=0):
    return [m["json"] for m in sub.matching(BASE + "/events",
                                            lambda m: (m["json"] or {}).get("type") == type_)][since:]


def audits():
    return events("sms-command")


def start_agent(name):
    d = os.path.join(lab.run_dir, name)
    os.makedirs(d)
    secret = ct.commands.write_secret(os.path.join(d, "sms-secret"))
    settings = {
        "agent": {"state-dir": os.path.join(d, "state")},
        "mqtt": {"host": broker.host, "port": broker.port},
        "telemetry": {"interval": 0},
        "uplink-cellular": {"activate": "never"},
        "watchdog": {"enabled": False},
        "sms-commands": {"enabled": True, "secret-file": os.path.join(d, "sms-secret"),
                         "allowed-senders": OPERATOR},
    }
    agent = ct.Agent(os.path.join(lab.run_dir, "logs"), settings, env=lab.env, name=name,
                     wrapper=lab.dut_wrapper() + os.environ.get("CA_AGENT_WRAPPER", "").split()
                     ).start()
    agent.wait_log(r"SMS commands enabled for 1 sender", timeout=20)
    agent.wait_log(r"using the Messaging interface", timeout=60)
    return agent, secret


def stop_agent(agent):
    rc, _ = agent.stop(timeout=10)
    assert rc == 0, rc


def deliver(text):
    """An SMS from the operator arrives; returns its audit event."""
    n = len(audits())
    lab.modem.deliver_sms(text, sender=OPERATOR)
    ct.wait_until(lambda: len(audits()) > n, ct.scaled(30), "the audit event of %r" % text)
    ct.wait_until(lambda: not lab.modem.status()["storage"]["ME"]["indices"], 30,
                  "the modem's storage empty again")
    return audits()[n]


def wait_clock(since, pred, what):
    return ct.wait_until(lambda: next((e for e in events("clock", since) if pred(e)), None),
                         ct.scaled(60), what)


class Clock(unittest.TestCase):

    def test_1_set_through_timedated(self):
        timedated.set_ntp_synchronized(False)
        timedated.clear_calls()
        since = len(events("clock"))
        agent, secret = start_agent("agent-set")
        try:
            # The mock does not move the clock: the code of the network's time is accepted
            # because the agent checks it against network time.
            a = deliver("%s status" % ct.commands.totp(secret, t=time.time() + OFFSET))
            self.assertEqual((a["outcome"], a.get("clock")), ("accepted", "network"), a)
            ev = wait_clock(since, lambda e: e["set"], "the clock event with set=true")
            self.assertEqual(ev["source"], "network")
            self.assertEqual(ev["ntp_synchronized"], False)
            self.assertLess(abs(ev["offset_s"] - OFFSET), 30, ev)
            calls = timedated.set_time_calls()
            self.assertEqual(len(calls), 1, calls)
            usec, relative, interactive = calls[0]
            self.assertLess(abs(usec / 1e6 - (time.time() + OFFSET)), 60, calls)
            self.assertEqual((relative, interactive), (False, False))
            # Another command SMS reads the network's time again, but asks for no new SetTime.
            a = deliver("%s status" % ct.commands.totp(secret, t=time.time() + OFFSET + 30))
            self.assertEqual((a["outcome"], a.get("clock")), ("accepted", "network"), a)
            self.assertEqual(len(timedated.set_time_calls()), 1, "SetTime asked again")
        finally:
            stop_agent(agent)

    def test_2_set_time_refused(self):
        timedated.set_ntp_synchronized(False)
        timedated.refuse_set_time()
        timedated.clear_calls()
        since = len(events("clock"))
        agent, secret = start_agent("agent-refused")
        try:
            ev = wait_clock(since, lambda e: "error" in e, "the clock event with the refusal")
            self.assertEqual((ev["source"], ev["set"]), ("network", False), ev)
            self.assertIn("AccessDenied", ev["error"])
            self.assertLess(abs(ev["offset_s"] - OFFSET), 30, ev)
            agent.wait_log(r"timedated did not set the system clock")
            a = deliver("%s status" % ct.commands.totp(secret, t=time.time() + OFFSET))
            self.assertEqual((a["outcome"], a.get("clock")), ("accepted", "network"), a)
            self.assertEqual(len(timedated.set_time_calls()), 1)
        finally:
            stop_agent(agent)

    def test_3_ntp_synchronized(self):
        timedated.set_ntp_synchronized(True)
        timedated.clear_calls()
        since = len(events("clock"))
        agent, secret = start_agent("agent-ntp")
        try:
            a = deliver("%s status" % ct.commands.totp(secret, t=time.time() + OFFSET))
            self.assertEqual((a["outcome"], a.get("reason"), a.get("clock")),
                             ("rejected", "wrong code", "ntp"), a)
            a = deliver("%s status" % ct.commands.totp(secret))
            self.assertEqual((a["outcome"], a.get("clock")), ("accepted", "ntp"), a)
            ev = wait_clock(since, lambda e: True, "the clock event")
            self.assertEqual((ev["source"], ev["set"], ev["ntp_synchronized"]), ("ntp", False, True))
            self.assertEqual(timedated.set_time_calls(), [])
        finally:
            stop_agent(agent)


if __name__ == "__main__":
    ct.lab.main()
