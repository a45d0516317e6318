"""Scenario helpers for the uplink tests (lab: real NetworkManager in namespaces).

- start_lab(...): a lab with its wired uplinks connected, ping sockets allowed and a broker.
- inet_broker(lab): mosquitto on 198.51.100.20 in the lab's "internet" namespace, so the
  agent's MQTT connection really goes through the uplinks (and must move with them).
- agent_settings(...): a cellagent config with the uplink keys and short test timings.
- start_agent(lab, settings, name): the agent in the device namespace, logging into the
  lab's log directory (printed when a test fails).
- RouteWatch: polls the DUT's `ip route get` choice and timestamps every change.
- link(sub)/events(sub, type): the agent's <base>/link and <base>/events as dicts.
"""
import json
import os
import subprocess
import threading
import time

from cellagent_test.agent import Agent
from cellagent_test.core import scaled, wait_until
from cellagent_test.lab import INTERNET_BROKER, INTERNET_DNS, INTERNET_PROBE, Lab
from cellagent_test.mqtt import Broker

BASE = "cellagent/dev1"
PROBES = "icmp:%s;dns:%s;tcp:mqtt" % (INTERNET_PROBE, INTERNET_DNS)

# Short timings used by the tests; the expected detection bounds follow from them.
FAST = {"interval": 2, "fast-interval": 1, "timeout": 1, "down-after": 3, "up-after": 3,
        "hold-down": 10, "report-interval": 0}


def silent_bound(h=FAST):
    """Worst case from a silent failure to the switch: a lead probe sent just before the
    failure answers, the next one (interval later) times out, its fallbacks time out,
    then down-after - 1 fast rounds."""
    return h["interval"] + 2 * h["timeout"] + (h["down-after"] - 1) * max(h["fast-interval"], h["timeout"])


def switch_deadline(h=FAST):
    """What a functional test allows from a silent failure to the switch: twice the
    worst case plus 5 s for a loaded 2-core machine, stretched by CA_TIME_SCALE. It
    catches a switch that does not happen; the timing targets themselves are measured in
    tests/bench/bench_uplink_failover.py (docs/benchmarks.md), not asserted here."""
    return scaled(2 * silent_bound(h) + 5)


def enable_ping_sockets(lab):
    """Let every group use unprivileged ICMP sockets in the DUT (a fresh namespace has
    "1 0"; Debian's systemd sets this range for the host), so the agent's ICMP probes take
    the same path as in production under its systemd unit (no CAP_NET_RAW)."""
    lab.net.sysctl(lab.net.dut, "net.ipv4.ping_group_range", "0 2147483647")


def inet_broker(lab):
    """mosquitto reachable only through the uplinks (INTERNET_BROKER)."""
    return Broker(os.path.join(lab.run_dir, "mqtt-inet"), port=1883, host=INTERNET_BROKER,
                  lab=lab, wrapper=["ip", "netns", "exec", lab.net.inet]).start()


def start_lab(personality=None, uplinks=2, broker="inet"):
    """A started lab whose wired uplinks (eth1..ethN) are connected, with ping sockets
    allowed (enable_ping_sockets) and a broker: "inet" behind the uplinks (inet_broker) or
    "dut" on the device itself. Returns (lab, broker); the lab is stopped if this fails."""
    lab = Lab(personality=personality, uplinks=uplinks).start()
    try:
        for i in range(1, uplinks + 1):
            lab.nm.wait_connected("eth%d" % i)
        enable_ping_sockets(lab)
        return lab, inet_broker(lab) if broker == "inet" else lab.start_broker()
    except BaseException:
        lab.stop()
        raise


def agent_settings(lab, broker, uplinks, health=None, watchdog=None, extra=None):
    """uplinks: {"wan1": {"connection": "uplink1", "priority": 10}, ...}."""
    s = {"agent": {"device-id": "dev1"},
         "mqtt": {"host": broker.host, "port": broker.port, "keepalive": 60},
         "health": dict(FAST, probes=PROBES),
         "watchdog": dict({"start-after": 5, "reactivate-cooldown": 5}, **(watchdog or {}))}
    s["health"].update(health or {})
    for name, keys in uplinks.items():
        s["uplink-" + name] = dict(keys)
    s.setdefault("uplink-cellular", {"activate": "never"})
    for group, keys in (extra or {}).items():
        s.setdefault(group, {}).update(keys)
    return s


_counter = [0]


def start_agent(lab, settings, name=None, wrapper=None):
    """cellagent in the DUT; its config and log live in the lab's log directory."""
    _counter[0] += 1
    name = name or "agent-%d" % _counter[0]
    settings.setdefault("agent", {}).setdefault("state-dir", os.path.join(lab.run_dir, name + "-state"))
    return Agent.in_lab(lab, settings, name=name, wrapper=wrapper or ()).start()


def stop_agent(agent):
    if agent and agent.alive():
        rc, _ = agent.stop(timeout=10)
        return rc
    return None


class RouteWatch:
    """Background poller of the DUT's route choice for a destination."""

    def __init__(self, lab, addr=INTERNET_PROBE, period=0.02):
        self.lab, self.addr, self.period = lab, addr, period
        self.changes = []   # (monotonic time, dev)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.current = self._get()
        self.changes.append((time.monotonic(), self.current))
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _get(self):
        r = subprocess.run(["ip", "-n", self.lab.net.dut, "-j", "route", "get", self.addr],
                           capture_output=True, text=True)
        if r.returncode:
            return None
        try:
            return json.loads(r.stdout)[0].get("dev")
        except (ValueError, IndexError):
            return None

    def _run(self):
        while not self._stop.is_set():
            dev = self._get()
            with self._lock:
                if dev != self.current:
                    self.current = dev
                    self.changes.append((time.monotonic(), dev))
            self._stop.wait(self.period)

    def first_change_to(self, dev, after):
        with self._lock:
            for t, d in self.changes:
                if t >= after and d == dev:
                    return t
        return None

    def wait_for(self, dev, after, timeout):
        """Time of the first change to dev after `after` (monotonic), or AssertionError."""
        return wait_until(lambda: self.first_change_to(dev, after), timeout,
                          "default route via %s" % dev, interval=0.02)

    def close(self):
        self._stop.set()
        self._t.join(5)


def link(sub):
    """The latest <base>/link payload (dict) or None."""
    msgs = sub.matching(BASE + "/link")
    return msgs[-1]["json"] if msgs else None


def wait_link(sub, pred, timeout, what="link state"):
    return wait_until(lambda: (lambda l: l if l and pred(l) else None)(link(sub)),
                      timeout, what)


def events(sub, type_=None, after=0):
    """Events (dicts with the receive time in "_rx") of a type, received after `after`."""
    out = []
    for m in sub.matching(BASE + "/events"):
        j = m.get("json") or {}
        if (type_ is None or j.get("type") == type_) and m.get("_rx", 0) >= after:
            out.append(dict(j, _rx=m.get("_rx", 0)))
    return out


def wait_event(sub, type_, pred=lambda e: True, after=0, timeout=30):
    return wait_until(lambda: [e for e in events(sub, type_, after) if pred(e)], timeout,
                      "event %s" % type_)[0]


def clear_retained(broker):
    """Delete the retained link and status a previous agent left on the broker."""
    for t in ("link", "status"):
        subprocess.run(broker.wrapper + ["mosquitto_pub", "-h", broker.host, "-p", str(broker.port),
                                         "-t", BASE + "/" + t, "-r", "-n"], check=True, timeout=10)


def subscribe(broker):
    """Subscriber on everything under the base, stamping each message's arrival time."""
    def stamp(m):
        m["_rx"] = time.monotonic()
    return broker.subscribe([BASE + "/#"], on_message=stamp)
