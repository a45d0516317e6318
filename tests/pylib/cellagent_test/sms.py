"""Scenario helpers for the SMS bridge tests: the real agent against the lab (real
ModemManager, emulated modem) and a real mosquitto.

- SmsRig: one lab, broker, subscriber and agent per test file; request()/results helpers.
- persistent_broker(): mosquitto whose sessions survive a restart, and its subscriber.
- valid_request(): an sms/out payload.
"""
import itertools
import os
import re
import signal

from cellagent_test.agent import Agent
from cellagent_test.core import wait_until
from cellagent_test.lab import Lab
from cellagent_test.mqtt import Broker

BASE = "cellagent/dev1"
_ids = itertools.count(1)


def new_id(prefix="r"):
    """A request id not used before in this test process."""
    return "%s-%d-%d" % (prefix, os.getpid(), next(_ids))


def persistent_broker(lab):
    """mosquitto on the host's loopback with persistence, so a subscriber's session and
    its queued QoS 1 messages survive a broker restart (stop() is a clean SIGTERM)."""
    return Broker(lab=lab, wrapper=[], persistence=True)


def persistent_subscriber(broker, topics):
    """A subscriber with a persistent session (it reconnects by itself after a broker
    restart and then gets what was queued for it)."""
    return broker.subscribe(topics, protocol="mqttv311",
                            extra_args=["-c", "-i", "sms-test-%d" % os.getpid()])


class SmsRig:
    """A lab (simtech modem, enabled), a broker, a subscriber on everything the agent
    publishes, and an agent whose [sms] settings the test chooses."""

    def __init__(self, sms=None, emu_settings=None):
        self.lab = Lab(personality="simtech", enable=True, emu_settings=emu_settings).start()
        self.broker = persistent_broker(self.lab).start()
        self.sub = persistent_subscriber(
            self.broker, [BASE + "/sms/#", BASE + "/events", BASE + "/cmd/+/result"])
        self.sms_settings = dict(sms or {})
        self.agent = None
        # The agent's log sits with the lab's logs, so a failing test prints its tail.
        self.dir = os.path.join(self.lab.run_dir, "logs")
        self.state_dir = os.path.join(self.lab.run_dir, "agent-state")

    # ------------------------------------------------------------------ agent

    def start_agent(self, wait_modem=True, mqtt_port=None, **sms):
        """Start (or restart) the agent with the rig's [sms] settings updated by sms;
        mqtt_port: another port on the broker's host (a proxy) for this start."""
        self.sms_settings.update(sms)
        settings = {"mqtt": {"host": self.broker.host, "port": mqtt_port or self.broker.port},
                    "agent": {"state-dir": self.state_dir},
                    "sms": dict(self.sms_settings)}
        self.agent = Agent.in_lab(self.lab, settings)
        # The log file is appended to across restarts: count what this start adds.
        subscribed = self.log_count(r'subscribed to "cellagent/dev1/sms/out"')
        messaging = self.log_count(r"using the Messaging interface")
        self.agent.start()
        self.wait_log_count(r'subscribed to "cellagent/dev1/sms/out"', subscribed + 1, timeout=20)
        if wait_modem:
            self.wait_log_count(r"using the Messaging interface", messaging + 1, timeout=30)
        return self.agent

    def log_count(self, pattern):
        try:
            with open(os.path.join(self.dir, "agent.log"), errors="replace") as f:
                return len(re.findall(pattern, f.read()))
        except FileNotFoundError:
            return 0

    def wait_log_count(self, pattern, count, timeout=30):
        return wait_until(lambda: self.log_count(pattern) >= count, timeout,
                          "%d x agent log /%s/" % (count, pattern))

    def kill_agent(self):
        self.agent.proc.send_signal(signal.SIGKILL)
        self.agent.proc.wait(10)

    def stop_agent(self):
        if self.agent and self.agent.alive():
            rc, _ = self.agent.stop(timeout=10)
            assert rc == 0, "agent exited with %d" % rc

    # ------------------------------------------------------------------ MQTT

    def request(self, payload):
        """Publish on sms/out (an object is sent as JSON, str/bytes as they are)."""
        self.broker.publish(BASE + "/sms/out", payload)

    def results(self, id=None, status=None):
        def pred(m):
            j = m["json"] or {}
            return (id is None or j.get("id") == id) and (status is None or j.get("status") == status)
        return [m["json"] for m in self.sub.matching(BASE + "/sms/out/result", pred)]

    def wait_result(self, id, status, timeout=30, count=1):
        def pred(m):
            j = m["json"] or {}
            return j.get("id") == id and j.get("status") == status
        return [m["json"] for m in self.sub.wait_for(BASE + "/sms/out/result", pred, timeout, count)]

    def incoming(self, pred=lambda j: True):
        return [m["json"] for m in self.sub.matching(BASE + "/sms/in", lambda m: pred(m["json"] or {}))]

    def wait_incoming(self, pred, timeout=30, count=1):
        return [m["json"] for m in
                self.sub.wait_for(BASE + "/sms/in", lambda m: pred(m["json"] or {}), timeout, count)]

    def events(self, type):
        return [m["json"] for m in self.sub.matching(BASE + "/events",
                                                     lambda m: (m["json"] or {}).get("type") == type)]

    # ------------------------------------------------------------------ modem

    def sent_to(self, number):
        """Messages the emulator transmitted to number (parts joined)."""
        return [m for m in self.lab.modem.dump()["messages"] if m["to"] == number]

    def stored(self):
        """Indices of messages in the emulator's ME storage."""
        return self.lab.modem.status()["storage"]["ME"]["indices"]

    def stop(self):
        try:
            self.stop_agent()
            self.sub.close()
        finally:
            self.lab.stop()

    def print_logs(self):
        if self.agent:
            self.agent.dump_log(150)


def valid_request(id, to="+254700000001", text="Hello", **extra):
    req = {"id": id, "to": to, "text": text}
    req.update(extra)
    return req
