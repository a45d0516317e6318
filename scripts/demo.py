#!/usr/bin/python3
"""demo: cellagent end to end against the lab, live in the terminal.

Run through scripts/demo, which installs what is missing first (scripts/setup).

  scripts/demo            build, start broker + lab + agent, run the steps, keep running
                          until Ctrl-C (everything is torn down)
  scripts/demo --check    same sequence unattended; every step must pass; exit 0/1
  scripts/demo --no-build skip scripts/setup and the build

Needs root (namespaces). The lab: the real ModemManager and NetworkManager on a
private bus in network namespaces, an emulated LTE modem with a real data path
(a Fibocom L610 in ECM mode: AT port + network port usb0, DHCP from an "operator"
namespace), two wired uplinks through two "ISP" namespaces, an "internet"
namespace, and mosquitto on the device namespace's 127.0.0.1. The agent runs in
the device namespace.

Every step says what it shows, then checks it against what the agent published
(MQTT) and what the lab sees (routes, packets counted in the provider
namespaces, the emulator's record), each with a deadline. A step fails when the
agent does not do it; there is no "not implemented" pass. Add a step: write a
method, add it to STEPS.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

TOP = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "pylib"))
BUILD = os.environ.get("BUILD_DIR", os.path.join(TOP, "build"))
DEVICE_ID = "demo1"
PREFIX = "cellagent"
BASE = "%s/%s" % (PREFIX, DEVICE_ID)
APN = "iot.demo"              # the only APN the emulated network accepts in the demo
PING_SIZE = 1000              # payload of the demo's own pings (the agent's probes use 8)

BOLD, DIM, GREEN, RED, YELLOW, RESET = "\033[1m", "\033[2m", "\033[32m", "\033[31m", "\033[33m", "\033[0m"
if not sys.stdout.isatty():
    BOLD = DIM = GREEN = RED = YELLOW = RESET = ""


class StepFailed(Exception):
    """A step did not do what it shows."""


def say(msg, color=""):
    print("%s%s%s" % (color, msg, RESET), flush=True)


def banner(title):
    say("\n== %s ==" % title, BOLD)


# ---------------------------------------------------------------- build

def build(skip):
    """The CMake build (scripts/demo ran scripts/setup before)."""
    if skip:
        return
    banner("build")
    subprocess.run(["cmake", "-S", TOP, "-B", BUILD], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", BUILD, "-j%d" % (os.cpu_count() or 2)], check=True)


def agent_binary():
    for path in (os.path.join(BUILD, "cellagent"), os.path.join(BUILD, "agent", "cellagent")):
        if os.path.exists(path):
            return path
    raise SystemExit("demo: no cellagent binary in %s" % BUILD)


def wait(what, pred, timeout, period=0.2):
    """pred() until it returns something true, or StepFailed after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise StepFailed("no %s within %g s" % (what, timeout))
        time.sleep(period)


def agent_config(run_dir, broker_host, broker_port, probe, dns):
    """The agent's config. Timers marked "demo value" are shortened so the demo's
    failures and recoveries happen in seconds; the defaults (README, docs/uplinks.md)
    are minutes, sized for a metered SIM and a real network."""
    return """\
[agent]
device-id=%(dev)s
state-dir=%(state)s
log-level=debug

[mqtt]
host=%(host)s
port=%(port)d
topic-prefix=%(prefix)s

[telemetry]
# demo value (default 60)
interval=15

[modem]
enable=true

[cellular]
# The agent creates the NetworkManager connection "cellular" from this APN.
apn=%(apn)s

[uplink-wan1]
connection=uplink1
priority=10

[uplink-wan2]
connection=uplink2
priority=20

[uplink-cellular]
priority=50
activate=always

[health]
probes=icmp:%(probe)s;dns:%(dns)s
# demo values (defaults: interval 20, fast-interval 2, timeout 2, hold-down 60,
# report-interval 3600)
interval=2
fast-interval=1
timeout=1
down-after=3
up-after=3
hold-down=10
report-interval=0

[watchdog]
# demo values (defaults: start-after 30, reactivate-cooldown 60, all four steps)
start-after=2
reactivate-cooldown=10
# Re-activation only: the emulated modem's reset keeps its ports, so ModemManager does not
# set it up again and new-message notices stay off after it (docs/lab.md). A real modem
# re-enumerates on reset.
steps=reactivate
""" % {"dev": DEVICE_ID, "state": os.path.join(run_dir, "state"), "host": broker_host,
       "port": broker_port, "prefix": PREFIX, "apn": APN, "probe": probe, "dns": dns}


# ---------------------------------------------------------------- the lab

class DemoLab:
    """Everything the demo uses of the lab (tests/pylib/cellagent_test/lab.py), in one place."""

    def __init__(self, run_dir):
        from cellagent_test import lab as lablib
        self.lablib = lablib
        self.errors = (lablib.LabError,)
        # The emulated network grants a data session only for APN.
        self.lab = lablib.Lab(run_dir, personality="ecm", uplinks=2, emu_settings={"apn": APN})
        self.broker = None
        self.probe = lablib.INTERNET_PROBE
        self.dns = lablib.INTERNET_DNS

    def start(self):
        self.lab.start()
        net = self.lab.net
        # The agent's ICMP probes use unprivileged ping sockets, as under its systemd unit.
        net.sysctl(net.dut, "net.ipv4.ping_group_range", "0 2147483647")
        # The lab seeds a gsm profile; the demo removes it so that the agent has to
        # create its own from [cellular] apn.
        self.lab.nm.nmcli("connection", "delete", "cellular", check=False)
        if self.nm_profile("cellular") is not None:
            raise self.lablib.LabError("could not delete the lab's gsm profile")
        # Count the demo's own pings where each provider forwards them.
        self.providers = {"ISP1 (eth1)": net.isp(1), "ISP2 (eth2)": net.isp(2), "operator (usb0)": net.op}
        for ns in self.providers.values():
            net.nsexec(ns, ["nft", "-f", "-"], input=(
                "table inet demo {\n counter pings { }\n chain forward {\n"
                "  type filter hook forward priority -10;\n"
                "  ip daddr %s icmp type echo-request ip length %d counter name pings\n }\n}\n"
                % (self.probe, PING_SIZE + 28)))
        self.broker = self.lab.start_broker()

    def stop(self, print_logs):
        if print_logs:
            self.lab.print_logs(30)
        self.lab.stop()

    @property
    def run_dir(self):
        return self.lab.run_dir

    def spawn_agent(self, argv):
        return self.lab.spawn("agent", argv)

    def subscribe(self, topics, on_message):
        return self.broker.subscribe(topics, on_message=on_message)

    def publish(self, topic, payload):
        self.broker.publish(topic, payload)

    # network
    def route_dev(self):
        return self.lab.net.route_dev(self.probe)

    def carrier(self, i, up):
        self.lab.net.carrier(i, up)

    def blackhole(self, i):
        self.lab.net.blackhole(i, True)

    def restore(self, i):
        self.lab.net.restore(i)

    def _pings_seen(self):
        out = {}
        for name, ns in self.providers.items():
            res = self.lab.net.nsexec(ns, ["nft", "-j", "list", "counter", "inet", "demo", "pings"],
                                      check=False)
            items = json.loads(res.stdout or "{}").get("nftables", []) if res.returncode == 0 else []
            out[name] = next((i["counter"]["packets"] for i in items if "counter" in i), 0)
        return out

    def ping_through(self, count=3):
        """Ping the internet from the device along its default route; return (answered,
        {provider: echo requests it forwarded})."""
        before = self._pings_seen()
        res = self.lab.net.nsexec(self.lab.net.dut, [
            "ping", "-n", "-q", "-c", str(count), "-i", "0.2", "-W", "2", "-s", str(PING_SIZE),
            self.probe], check=False)
        after = self._pings_seen()
        return res.returncode == 0, {k: after[k] - before[k] for k in after}

    # NetworkManager
    def nm_profile(self, name):
        """{"type": ..., "apn": ...} of a NetworkManager connection, or None."""
        out = self.lab.nm.nmcli("-g", "connection.type,gsm.apn", "connection", "show", name,
                                check=False).strip().splitlines()
        if len(out) < 2:
            return None
        return {"type": out[0], "apn": out[1]}

    # the emulated modem
    def imei(self):
        return self.lab.emu.identity["imei"]

    def modem_events(self):
        return self.lab.modem.dump()["events"]

    def sessions(self):
        """Data sessions the emulated network granted so far."""
        return sum(1 for e in self.modem_events() if e.get("type") == "session-up")

    def drop_session(self):
        self.lab.modem.drop_session(notify=False)

    def deliver_sms(self, text, sender):
        """The emulated network delivers an SMS; False if the modem did not store it."""
        res = self.lab.modem.deliver_sms(text, sender=sender) or {}
        return all(res.get("stored") or [False])

    def wait_transmitted(self, to, timeout):
        try:
            return self.lab.modem.wait_sent(lambda m: m["to"] == to, timeout=timeout)[0]
        except AssertionError as exc:
            raise StepFailed("the modem transmitted nothing to %s: %s" % (to, exc))


# ---------------------------------------------------------------- the demo

class Demo:
    """Broker, lab and agent, and the steps that show what the agent does."""

    def __init__(self, check):
        self.check = check
        self.binary = agent_binary()
        self.lab = DemoLab(tempfile.mkdtemp(prefix="cellagent-demo-", dir="/tmp"))
        self.results = []
        self.failed_fn = None          # the method of the step that failed
        self.msgs = []                 # (monotonic time, message) of everything on <base>/#
        self.lock = threading.Lock()
        self.agent = None

    # ------------------------------------------------------------ MQTT view

    def on_message(self, m):
        with self.lock:
            self.msgs.append((time.monotonic(), m))
        if m["topic"] == "demo/ready":
            return
        say("  %s[mqtt]%s %s%s%s %s" % (DIM, RESET, YELLOW, m["topic"], RESET, self.summary(m)))

    @staticmethod
    def summary(m):
        """One readable line per message; link, telemetry and events are long JSON."""
        j, topic = m.get("json"), m["topic"]
        if not isinstance(j, dict):
            return m.get("payload", "")
        if topic == BASE + "/link":
            return "active %s; %s" % (j.get("active"), ", ".join(
                "%s %s (%s)" % (n, u.get("state"), u.get("interface"))
                for n, u in sorted((j.get("uplinks") or {}).items())))
        if topic == BASE + "/telemetry" and "bearer" in j:
            mo, net, b = j.get("modem") or {}, j.get("network") or {}, j.get("bearer") or {}
            return "modem %s, signal %s, %s on %s; bearer %s" % (
                mo.get("state"), "-" if mo.get("signal_quality") is None else
                "%s %%" % mo["signal_quality"], net.get("registration"),
                net.get("operator_name") or "-", "connected on %s" % b.get("interface")
                if b.get("connected") else "not connected")
        if topic == BASE + "/events":
            short = {k: v for k, v in j.items() if k not in ("ts", "evidence", "probes", "path")}
            return json.dumps(short, ensure_ascii=False)
        return json.dumps(j, ensure_ascii=False)

    def mark(self):
        return time.monotonic()

    def find(self, topic, pred=None, since=0.0):
        with self.lock:
            msgs = list(self.msgs)
        for t, m in msgs:
            if t >= since and m["topic"] == BASE + topic and (pred is None or pred(m["json"] or {})):
                return m["json"] or {}
        return None

    def msgs_on(self, topic):
        with self.lock:
            return [(t, m) for t, m in self.msgs if m["topic"] == BASE + topic]

    def latest(self, topic):
        with self.lock:
            msgs = list(self.msgs)
        for _, m in reversed(msgs):
            if m["topic"] == BASE + topic:
                return m["json"] or {}
        return None

    def wait_mqtt(self, what, topic, pred, timeout, since=0.0):
        return wait("%s on %s/%s" % (what, BASE, topic.lstrip("/")),
                    lambda: self.find(topic, pred, since), timeout)

    def wait_event(self, what, etype, pred, timeout, since):
        return self.wait_mqtt(what, "/events",
                              lambda e: e.get("type") == etype and pred(e), timeout, since)

    def wait_link(self, what, pred, timeout, since=0.0):
        """The newest link message must satisfy pred (an older one may be stale)."""
        def ok():
            l = self.latest("/link")
            return l if l is not None and pred(l) and self.find("/link", pred, since) else None
        return wait("%s (%s/link)" % (what, BASE), ok, timeout)

    def wait_route(self, dev, timeout):
        wait("default route via %s" % dev, lambda: self.lab.route_dev() == dev, timeout, 0.1)
        say("  lab: the device's default route goes via %s" % dev)

    def traffic_via(self, provider):
        """The demo's pings reach the internet and only provider forwards them."""
        ok, seen = self.lab.ping_through()
        say("  lab: 3 pings from the device to %s: %s; forwarded by %s" % (
            self.lab.probe, "answered" if ok else "NOT answered",
            ", ".join("%s %d" % kv for kv in sorted(seen.items()))))
        if not ok:
            raise StepFailed("the device's pings to the internet were not answered")
        wrong = [k for k, n in seen.items() if n and k != provider]
        if seen.get(provider, 0) < 3 or wrong:
            raise StepFailed("the pings went through %s, not %s" % (seen, provider))

    # ------------------------------------------------------------ start-up

    def start(self):
        banner("lab: ModemManager + NetworkManager on a private bus, emulated LTE modem "
               "(ECM, operator network with APN %s), two wired uplinks" % APN)
        self.lab.start()
        say("  run dir %s (logs in logs/, `set -a; . %s/env` for mmcli/nmcli)"
            % (self.lab.run_dir, self.lab.run_dir))
        say("  default route via %s" % self.lab.route_dev())
        broker = self.lab.broker
        say("  mosquitto on %s:%d in the device namespace" % (broker.host, broker.port))
        self.sub = self.lab.subscribe(["%s/#" % BASE, "demo/ready"], self.on_message)
        wait("live view subscription", self._subscriber_ready, 10)
        banner("agent (live view: mosquitto_sub -v -t '%s/#')" % BASE)
        conf = os.path.join(self.lab.run_dir, "cellagent.conf")
        with open(conf, "w") as f:
            f.write(agent_config(self.lab.run_dir, broker.host, broker.port, self.lab.probe,
                                 self.lab.dns))
        say("  config %s (timers shortened for the demo; see the comments in it)" % conf)
        self.agent = self.lab.spawn_agent([self.binary, "--config", conf])
        say("  %s --config %s (log: %s)" % (self.binary, conf, self.agent.log))

    def _subscriber_ready(self):
        self.lab.publish("demo/ready", "1")
        with self.lock:
            return any(m["topic"] == "demo/ready" for _, m in self.msgs)

    def run_step(self, name, fn):
        banner(name)
        say("  %s" % " ".join(fn.__doc__.split()), DIM)
        t0 = time.monotonic()
        try:
            fn()
        except (StepFailed, AssertionError) + self.lab.errors as exc:
            self.results.append((name, "FAILED", time.monotonic() - t0))
            say("  FAILED: %s" % exc, RED)
            return False
        self.results.append((name, "ok", time.monotonic() - t0))
        say("  ok (%.1f s)" % (time.monotonic() - t0), GREEN)
        return True

    # ------------------------------------------------------------ steps

    def step_agent_running(self):
        """The agent connects to the broker and publishes its retained status."""
        m = self.wait_mqtt("status online", "/status", lambda s: s.get("state") == "online", 20)
        if not self.agent.alive():
            raise StepFailed("the agent exited; see %s" % self.agent.log)
        say("  status: online, version %s" % m.get("version"))

    def step_cellular_up(self):
        """No cellular connection exists in NetworkManager. The agent creates one from
        [cellular] apn and brings it up: ModemManager connects the modem with that APN
        (the emulated network refuses any other), the operator hands out an address by
        DHCP on usb0, and the link topic shows cellular up as a standby behind wan1."""
        prof = wait("NetworkManager connection \"cellular\" created by the agent",
                    lambda: self.lab.nm_profile("cellular"), 30)
        say("  NetworkManager: connection \"cellular\", type %s, apn %s" % (prof["type"], prof["apn"]))
        if prof["type"] != "gsm" or prof["apn"] != APN:
            raise StepFailed("connection \"cellular\" is %s" % prof)
        ev = wait("data session with APN %s in the emulator" % APN, lambda: next(
            (e for e in self.lab.modem_events() if e.get("type") == "session-up"), None), 60)
        say("  modem: data session up on cid %s with APN %s" % (ev.get("cid"), ev.get("apn")))
        if ev.get("apn", "").lower() != APN:
            raise StepFailed("the session used APN %r" % ev.get("apn"))
        link = self.wait_link("cellular up, wan1 in use", lambda l: l.get("active") == "wan1" and
                              ((l.get("uplinks") or {}).get("cellular") or {}).get("state") == "up", 60)
        c = link["uplinks"]["cellular"]
        say("  link: active %s; cellular %s on %s (%s), metric %s, rtt %s ms" % (
            link["active"], c["state"], c.get("interface"), c.get("device"), c.get("metric"),
            c.get("rtt_ms")))
        if c.get("interface") != "usb0":
            raise StepFailed("cellular interface %r, not usb0" % c.get("interface"))
        self.wait_route("eth1", 10)
        self.traffic_via("ISP1 (eth1)")

    def step_telemetry(self):
        """Telemetry shows the modem, the network and the data bearer (connected, on usb0)."""
        t = self.wait_mqtt("telemetry with the modem and its bearer connected on usb0", "/telemetry",
                           lambda t: (t.get("modem") or {}).get("state") == "connected" and
                           (t.get("bearer") or {}).get("connected") is True and
                           t["bearer"].get("interface") == "usb0", 40)
        modem, net, bearer = t.get("modem") or {}, t.get("network") or {}, t["bearer"]
        say("  modem %s %s, IMEI %s, state %s, signal %s %%" % (
            modem.get("manufacturer"), modem.get("model"), modem.get("imei"), modem.get("state"),
            modem.get("signal_quality")))
        say("  network %s (%s), registration %s" % (net.get("operator_name"), net.get("operator_code"),
                                                   net.get("registration")))
        say("  bearer connected on %s, rx %s B, tx %s B, %s s" % (
            bearer.get("interface"), bearer.get("rx_bytes"), bearer.get("tx_bytes"), bearer.get("duration")))
        if modem.get("imei") != self.lab.imei():
            raise StepFailed("telemetry IMEI %r, the modem says %r" % (modem.get("imei"), self.lab.imei()))
        if net.get("registration") not in ("home", "roaming"):
            raise StepFailed("registration %r" % net.get("registration"))

    def step_wired_fail(self):
        """Both wired uplinks fail: wan1 loses its carrier (traffic moves to wan2), then
        wan2's ISP silently drops everything (only the probes can tell). Traffic moves to
        cellular: the default route goes via usb0 and the operator forwards the pings."""
        t0 = self.mark()
        say("  lab: eth1 loses carrier")
        self.lab.carrier(1, False)
        ev = self.wait_event("failover wan1 -> wan2", "failover",
                             lambda e: e.get("from") == "wan1" and e.get("to") == "wan2", 15, t0)
        say("  event: failover %s -> %s (%s)" % (ev["from"], ev["to"], ev.get("reason")))
        self.wait_route("eth2", 10)
        t1 = self.mark()
        say("  lab: ISP2 blackholes everything (eth2 keeps its carrier and its address)")
        self.lab.blackhole(2)
        ev = self.wait_event("failover wan2 -> cellular", "failover",
                             lambda e: e.get("from") == "wan2" and e.get("to") == "cellular", 30, t1)
        say("  event: failover %s -> %s (%s) after %.1f s" % (ev["from"], ev["to"], ev.get("reason"),
                                                             self.mark() - t1))
        self.wait_route("usb0", 10)
        self.wait_link("cellular in use", lambda l: l.get("active") == "cellular", 10, t1)
        self.traffic_via("operator (usb0)")

    def step_session_dropped(self):
        """The network drops the data session without telling the modem: the operator
        link goes dead, NetworkManager still says connected. The agent's probes find
        cellular down, the watchdog re-activates the connection, a new session comes up
        and traffic flows through the operator again."""
        t0 = self.mark()
        sessions = self.lab.sessions()
        self.lab.drop_session()
        say("  lab: the operator dropped the data session (no +CGEV)")
        ev = self.wait_event("cellular down", "uplink-down", lambda e: e.get("uplink") == "cellular",
                             30, t0)
        say("  event: uplink-down cellular (%s) after %.1f s" % (ev.get("reason"), self.mark() - t0))
        ev = self.wait_event("watchdog step for cellular", "watchdog",
                             lambda e: e.get("uplink") == "cellular", 30, t0)
        say("  event: watchdog %s on cellular (%s)" % (ev.get("step"), ev.get("reason")))
        step = ev.get("step")
        if step != "reactivate":
            raise StepFailed("the watchdog took step %r, not reactivate" % step)
        self.wait_event("watchdog %s done" % step, "watchdog-result",
                        lambda e: e.get("uplink") == "cellular" and e.get("step") == step
                        and e.get("ok") is True, 60, t0)
        self.wait_event("cellular up again", "uplink-up", lambda e: e.get("uplink") == "cellular",
                        60, t0)
        say("  event: uplink-up cellular after %.1f s" % (self.mark() - t0))
        # The bearer went down and came back: a disconnected bearer in telemetry after the
        # drop, then a connected one, and a new session in the emulator's record.
        self.wait_mqtt("telemetry with the bearer disconnected", "/telemetry",
                       lambda t: (t.get("bearer") or {}).get("connected") is False, 30, t0)
        t_off = max(t for t, m in self.msgs_on("/telemetry")
                    if ((m["json"] or {}).get("bearer") or {}).get("connected") is False)
        self.wait_mqtt("telemetry with the bearer connected again", "/telemetry",
                       lambda t: (t.get("bearer") or {}).get("connected") is True, 30, t_off)
        say("  telemetry: bearer disconnected, then connected again")
        wait("a new data session in the emulator", lambda: self.lab.sessions() > sessions, 30)
        say("  modem: new data session with APN %s" % APN)
        self.wait_route("usb0", 10)
        self.traffic_via("operator (usb0)")

    def step_sms_out(self):
        """An SMS request on <base>/sms/out goes out through ModemManager and the modem."""
        text = "Hello from the cellagent demo 👋 {ok}"
        req = {"id": "demo-sms-1", "to": "+254700000001", "text": text}
        t0 = self.mark()
        say("  publish %s/sms/out %s" % (BASE, json.dumps(req, ensure_ascii=False)))
        self.lab.publish("%s/sms/out" % BASE, req)
        self.wait_mqtt("result sent for demo-sms-1", "/sms/out/result",
                       lambda r: r.get("id") == "demo-sms-1" and r.get("status") == "sent", 60, t0)
        msg = self.lab.wait_transmitted("+254700000001", 10)
        say("  modem transmitted: to %s, %d part(s), %r" % (msg["to"], msg["parts"], msg["text"]))
        if msg["text"] != text:
            raise StepFailed("the modem transmitted %r" % msg["text"])

    def step_sms_in(self):
        """An SMS from the network is published on <base>/sms/in."""
        text = "Habari! An SMS from the network 📶"
        t0 = self.mark()
        say("  lab: the network delivers an SMS from +254711000001: %r" % text)
        if not self.lab.deliver_sms(text, "+254711000001"):
            raise StepFailed("the emulated modem did not store the SMS (see its log)")
        m = self.wait_mqtt("the SMS", "/sms/in", lambda m: m.get("text") == text, 30, t0)
        if m.get("from") not in (None, "+254711000001"):
            raise StepFailed("sms/in from %r" % m.get("from"))

    def step_failback(self):
        """The wired uplinks recover: once wan1 has been up for hold-down (10 s in the
        demo), traffic moves back to it; cellular stays up as the standby."""
        t0 = self.mark()
        self.lab.restore(1)
        self.lab.restore(2)
        say("  lab: eth1 carrier back, ISP2 forwards again")
        ev = self.wait_event("failback to wan1", "failback", lambda e: e.get("to") == "wan1", 60, t0)
        say("  event: failback %s -> %s (%s) after %.1f s" % (ev.get("from"), ev["to"], ev.get("reason"),
                                                             self.mark() - t0))
        self.wait_route("eth1", 10)
        self.wait_link("wan1 in use, cellular standing by up",
                       lambda l: l.get("active") == "wan1" and
                       ((l.get("uplinks") or {}).get("cellular") or {}).get("state") == "up", 20, t0)
        self.traffic_via("ISP1 (eth1)")

    STEPS = [("agent starts", "step_agent_running"),
             ("cellular comes up from [cellular] apn", "step_cellular_up"),
             ("telemetry shows the bearer", "step_telemetry"),
             ("wired uplinks fail: traffic moves to cellular", "step_wired_fail"),
             ("the network drops the session: the watchdog brings it back", "step_session_dropped"),
             ("SMS out through <base>/sms/out", "step_sms_out"),
             ("SMS in on <base>/sms/in", "step_sms_in"),
             ("wired uplinks back: traffic returns to wan1", "step_failback")]

    # What to look for in the logs when a step fails: (log, regular expression). The lines
    # found are printed last, after the teardown: a CI that keeps only the end of a long
    # output still shows them.
    CLUES = {
        "step_sms_out": [("emulator.log", r"CMGS|sms-"),
                         ("ModemManager.log", r"CMGS|SMS message|couldn't"),
                         ("agent.log", r"\[sms\]")],
        "step_sms_in": [("emulator.log", r"CMTI|CNMI|CFUN|sms-"),
                        ("ModemManager.log", r"CMTI|CMGR|CNMI|locking SMS|SMS message|couldn't"),
                        ("agent.log", r"\[sms\]")],
    }
    DEFAULT_CLUES = [("agent.log", r" (warning|error|notice) ")]

    def print_clues(self, lines=8):
        if not self.failed_fn:
            return
        banner("clues for the failed step (%s)" % self.failed_fn)
        for log, pattern in self.CLUES.get(self.failed_fn, self.DEFAULT_CLUES):
            path = os.path.join(self.lab.run_dir, "logs", log)
            try:
                with open(path, errors="replace") as f:
                    found = [l.rstrip("\n") for l in f if re.search(pattern, l)]
            except OSError as exc:
                say("  %s: %s" % (log, exc))
                continue
            say("  %s: %d line(s) match %r%s" % (log, len(found), pattern,
                                                  ", the last %d:" % lines if len(found) > lines else ""))
            for l in found[-lines:]:
                say("    %s" % l[:220])

    def run(self):
        """Run the steps in order; they build on each other, so stop at the first failure."""
        t0 = time.monotonic()
        failed = None
        for name, fn in self.STEPS:
            if failed:
                self.results.append((name, "not run", 0.0))
                continue
            if not self.run_step(name, getattr(self, fn)):
                failed, self.failed_fn = name, fn
            elif self.agent and not self.agent.alive():
                self.results[-1] = (name, "FAILED", self.results[-1][2])
                say("  FAILED: the agent exited; see %s" % self.agent.log, RED)
                failed, self.failed_fn = name, fn
        banner("summary (%.0f s)" % (time.monotonic() - t0))
        for name, res, secs in self.results:
            say("  %-62s %-8s %5.1f s" % (name, res, secs),
                RED if res == "FAILED" else (GREEN if res == "ok" else DIM))
        if failed:
            say("demo: step failed: %s" % failed, RED)
        return failed is None

    def stop(self, ok):
        self.lab.stop(print_logs=not ok)
        if ok:
            shutil.rmtree(self.lab.run_dir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="run unattended, exit 0/1")
    ap.add_argument("--no-build", action="store_true", help="skip setup and build")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("demo: needs root (network and mount namespaces)")
    build(args.no_build)
    t0 = time.monotonic()
    demo = Demo(args.check)
    ok = False
    try:
        demo.start()
        ok = demo.run()
        if not args.check:
            banner("running: Ctrl-C tears everything down")
            threading.Event().wait()
    except KeyboardInterrupt:
        ok = ok or not args.check
        say("\ninterrupted")
    except Exception as exc:          # show why, then tear down
        say("demo: %s: %s" % (type(exc).__name__, exc), RED)
        ok = False
    finally:
        say("tearing down")
        demo.stop(ok)
        if not ok:
            demo.print_clues()
    say("demo: %s in %.0f s (lab, agent and steps)" % ("passed" if ok else "FAILED", time.monotonic() - t0),
        GREEN if ok else RED)
    sys.exit(0 if ok else 1)


def _sigterm(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    import signal
    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)   # also when started in the background
    main()
