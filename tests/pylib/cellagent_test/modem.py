"""Scenario helpers for the modem and telemetry tests: an agent wired to the lab's bus
and broker, commands over MQTT, and reading telemetry and events from a subscriber."""

import itertools
import json
import os
import signal
import time

from cellagent_test.agent import Agent, write_config
from cellagent_test.core import wait_until
from cellagent_test.lab import parse_keyvalues

BASE = "cellagent/dev1"
TELEMETRY = BASE + "/telemetry"
EVENTS = BASE + "/events"
STATUS = BASE + "/status"

_ids = itertools.count(1)


def agent_settings(broker, **groups):
    """Agent config for the lab: the lab broker, debug-friendly telemetry settings."""
    settings = {
        "mqtt": {"host": broker.host, "port": broker.port, "keepalive": 5},
        "telemetry": {"interval": 0, "signal-rate": 1, "min-spacing": 0},
        "modem": {},
    }
    for group, keys in groups.items():
        settings.setdefault(group, {}).update(keys)
    return settings


def start_agent(lab, broker, name="agent", args=(), **groups):
    """Start cellagent on the lab's bus (Agent.in_lab) with agent_settings(); returns the
    Agent. Its log and config go to the lab's logs/ (printed when a test fails)."""
    return Agent.in_lab(lab, agent_settings(broker, **groups), name=name, args=args).start()


def reload_agent(agent, **groups):
    """Rewrite the agent's config with groups merged in and send SIGHUP."""
    for group, keys in groups.items():
        agent.settings.setdefault(group, {}).update(keys)
    write_config(agent.config, agent.settings)
    agent.proc.send_signal(signal.SIGHUP)


def command(broker, sub, name, args=None, timeout=10):
    """Send cmd/<name> and wait for its result message; returns the result JSON."""
    cid = "t%d" % next(_ids)
    req = {"id": cid}
    if args is not None:
        req["args"] = args
    broker.publish("%s/cmd/%s" % (BASE, name), req)
    msgs = sub.wait_for("%s/cmd/%s/result" % (BASE, name),
                        lambda m: m["json"] and m["json"].get("id") == cid, timeout=timeout)
    return msgs[0]["json"]


def telemetry(sub, since=0):
    """Telemetry payloads received after index since (of the subscriber's messages)."""
    return [m["json"] for m in sub.messages[since:] if m["topic"] == TELEMETRY]


def events(sub, since=0, type=None):
    """Event payloads received after index since, optionally of one type."""
    return [m["json"] for m in sub.messages[since:]
            if m["topic"] == EVENTS and (type is None or m["json"]["type"] == type)]


def wait_telemetry(sub, pred, timeout=30, since=0):
    """Wait for a telemetry message after index since matching pred; return it."""
    def found():
        for t in telemetry(sub, since):
            if pred(t):
                return t
        return None
    return wait_until(found, timeout, "telemetry matching the condition")


def wait_event(sub, type, pred=lambda e: True, timeout=30, since=0):
    """Wait for an event of type after index since matching pred; return it."""
    def found():
        for e in events(sub, since, type):
            if pred(e):
                return e
        return None
    return wait_until(found, timeout, "event %s" % type)


def mark(sub):
    """The current position in the subscriber's messages (for since=)."""
    return len(sub.messages)


def state_is(*states):
    """Predicate: telemetry whose modem state is one of states."""
    return lambda t: t["modem"]["state"] in states


def mmcli_kv(lab, *args):
    """mmcli ... -K as a dict (None for --)."""
    return parse_keyvalues(lab.mm.mmcli(*(list(args) + ["-K"])))


def mm_number(value):
    """An mmcli number ("-95.00", "70") or None for "--"."""
    return None if value in (None, "--") else float(value)


def hex_or_none(value):
    """mmcli prints LAC/TAC/cell id as zero-padded hex; 0 means unknown (null)."""
    if value in (None, "--"):
        return None
    return None if int(value, 16) == 0 else value


def write_pin_file(directory, pin):
    path = os.path.join(directory, "sim-pin")
    with open(path, "w") as f:
        f.write(pin + "\n")
    os.chmod(path, 0o600)
    return path


def agent_log_count(agent, needle):
    return agent.log_text().count(needle)


def monotonic_arrivals(broker, topics):
    """A subscriber that records (monotonic time, message) on arrival (for latency)."""
    arrivals = []
    sub = broker.subscribe(topics, on_message=lambda m: arrivals.append((time.monotonic(), m)))
    return sub, arrivals


def dumps(obj):
    return json.dumps(obj, sort_keys=True)


def field(t, dotted):
    """t["a"]["b"] for "a.b", or None when a level is missing (absent telemetry)."""
    for key in dotted.split("."):
        if not isinstance(t, dict) or key not in t:
            return None
        t = t[key]
    return t
