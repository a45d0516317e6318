#!/usr/bin/python3
"""demo: cellagent end to end against the lab, live in the terminal.

Run through scripts/demo, which installs what is missing first (scripts/setup).

  scripts/demo            build, start broker + lab + agent, run the steps, keep running
                          until Ctrl-C (everything is torn down)
  scripts/demo --check    same sequence unattended; assert each step that exists; exit 0/1
  scripts/demo --no-build skip scripts/setup and the build

Needs root (namespaces). The lab: ModemManager + an emulated SIMCom A7670E,
NetworkManager with two uplinks in the device namespace, mosquitto on that
namespace's 127.0.0.1. The agent runs in the device namespace.

Each step names the agent feature it shows and a marker the agent's sources
hold once the feature exists (has_feature); a step whose marker is missing prints "not yet
implemented" instead of pretending. Add a step: write a function, add it to STEPS.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

TOP = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "lab"))
BUILD = os.environ.get("BUILD_DIR", os.path.join(TOP, "build"))
DEVICE_ID = "demo1"
PREFIX = "cellagent"
BASE = "%s/%s" % (PREFIX, DEVICE_ID)

BOLD, DIM, GREEN, RED, YELLOW, RESET = "\033[1m", "\033[2m", "\033[32m", "\033[31m", "\033[33m", "\033[0m"
if not sys.stdout.isatty():
    BOLD = DIM = GREEN = RED = YELLOW = RESET = ""


class StepFailed(Exception):
    """An implemented step did not do what it should."""


class NotImplementedYet(Exception):
    """The agent does not have this feature yet."""


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


def has_feature(*markers):
    """True if the agent's sources hold every marker (the feature exists).

    A marker is a string or a tuple of alternatives. Markers are C string
    literals with their quotes, e.g. '"online"', so a
    sentence in a help text does not count; sources, not the binary, because
    the compiler may merge string tails.
    """
    text = ""
    src = os.path.join(TOP, "agent")
    for name in sorted(os.listdir(src)):
        if name.endswith((".c", ".h")):
            with open(os.path.join(src, name), errors="replace") as f:
                text += f.read()
    return all(any(alt in text for alt in (m if isinstance(m, tuple) else (m,))) for m in markers)


# ---------------------------------------------------------------- the demo

class Demo:
    """Broker, lab and agent, and the steps that show what the agent does."""

    def __init__(self, check):
        import lablib
        self.lablib = lablib
        self.check = check
        self.binary = agent_binary()
        self.run_dir = tempfile.mkdtemp(prefix="cellagent-demo-", dir="/tmp")
        self.lab = lablib.Lab(self.run_dir, personality="simtech", uplinks=2)
        self.results = []

    def show(self, m):
        """Print one MQTT message readably (the live view)."""
        payload = m.get("payload", "")
        try:
            payload = json.dumps(json.loads(payload), ensure_ascii=False)
        except (ValueError, TypeError):
            pass
        say("  %s[mqtt]%s %s%s%s %s" % (DIM, RESET, YELLOW, m["topic"], RESET, payload))

    def start(self):
        banner("lab: private bus, ModemManager + emulated SIMCom A7670E, "
               "NetworkManager with two uplinks")
        self.lab.start()
        say("  run dir %s (logs in logs/, `set -a; . %s/env` for mmcli/nmcli)"
            % (self.run_dir, self.run_dir))
        say("  modem: %s" % self.lab.mm.modems())
        say("  default route via %s" % self.lab.net.route_dev())
        self.broker = self.lab.start_broker()
        say("  mosquitto on %s:%d in the device namespace" % (self.broker.host, self.broker.port))
        self.sub = self.broker.subscribe(["%s/#" % BASE, "demo/ready"], on_message=self.on_message)
        self.lablib.wait_until(self._subscriber_ready, 10, "the live view to subscribe", 0.2)
        banner("agent (live view: mosquitto_sub -v '%s/#')" % BASE)
        conf = os.path.join(self.run_dir, "cellagent.conf")
        with open(conf, "w") as f:
            f.write("[agent]\ndevice-id=%s\nstate-dir=%s\nlog-level=debug\n\n"
                    "[mqtt]\nhost=%s\nport=%d\ntopic-prefix=%s\n\n"
                    "[telemetry]\ninterval=15\n\n[modem]\nenable=true\n\n"
                    # The lab's two wired uplinks; the simtech modem carries SMS and
                    # telemetry only (its data path would need PPP, which this kernel lacks).
                    "[uplink-wan1]\nconnection=uplink1\npriority=10\n\n"
                    "[uplink-wan2]\nconnection=uplink2\npriority=20\n\n"
                    "[uplink-cellular]\nactivate=never\n"
                    % (DEVICE_ID, os.path.join(self.run_dir, "state"), self.broker.host,
                       self.broker.port, PREFIX))
        self.agent = self.lab.spawn("agent", [self.binary, "--config", conf])
        say("  %s --config %s (log: %s)" % (self.binary, conf, self.agent.log))

    def on_message(self, m):
        if m["topic"] != "demo/ready":
            self.show(m)

    def _subscriber_ready(self):
        self.broker.publish("demo/ready", "1", qos=0)
        return self.sub.matching("demo/ready")

    def run_step(self, name, fn):
        banner(name)
        try:
            fn()
            self.results.append((name, "ok"))
            say("  ok", GREEN)
        except NotImplementedYet as exc:
            self.results.append((name, "not yet implemented"))
            say("  not yet implemented%s" % (": %s" % exc if str(exc) else ""), DIM)
        except (StepFailed, AssertionError, self.lablib.LabError) as exc:
            self.results.append((name, "FAILED"))
            say("  FAILED: %s" % exc, RED)

    # ------------------------------------------------------------ steps

    def step_agent_running(self):
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            if not self.agent.alive():
                raise StepFailed("the agent exited; see %s" % self.agent.log)
            time.sleep(0.2)
        say("  the agent runs (pid %d)" % self.agent.pid)

    def step_status(self):
        if not has_feature('"online"'):
            raise NotImplementedYet("<base>/status")
        m = self.sub.wait_for("%s/status" % BASE, lambda m: (m["json"] or {}).get("state") == "online",
                              timeout=20)[0]
        say("  status: %s" % m["payload"])

    def step_telemetry(self):
        if not has_feature('"signal_quality"'):
            raise NotImplementedYet("<base>/telemetry")
        m = self.sub.wait_for("%s/telemetry" % BASE,
                              lambda m: ((m["json"] or {}).get("modem") or {}).get("state") in
                              ("registered", "connected"), timeout=40)[0]
        modem = m["json"]["modem"]
        if modem.get("imei") != self.lab.emu.identity["imei"]:
            raise StepFailed("telemetry IMEI %r, the modem says %r"
                             % (modem.get("imei"), self.lab.emu.identity["imei"]))

    def step_sms_out(self):
        if not has_feature("sms/out"):
            raise NotImplementedYet("<base>/sms/out")
        text = "Hello from the cellagent demo 👋 {ok}"
        req = {"id": "demo-sms-1", "to": "+254700000001", "text": text}
        say("  publish %s/sms/out %s" % (BASE, json.dumps(req, ensure_ascii=False)))
        self.broker.publish("%s/sms/out" % BASE, req)
        self.sub.wait_for("%s/sms/out/result" % BASE,
                          lambda m: (m["json"] or {}).get("id") == "demo-sms-1"
                          and m["json"].get("status") == "sent", timeout=60)
        msg = self.lab.modem.wait_sent(lambda m: m["to"] == "+254700000001", timeout=10)[0]
        say("  the modem transmitted: to %s, %d part(s), %r" % (msg["to"], msg["parts"], msg["text"]))
        if msg["text"] != text:
            raise StepFailed("the modem transmitted %r" % msg["text"])

    def step_sms_in(self):
        if not has_feature("sms/in"):
            raise NotImplementedYet("<base>/sms/in")
        text = "Habari! An SMS from the network 📶"
        say("  the network delivers an SMS from +254711000001: %r" % text)
        self.lab.modem.deliver_sms(text, sender="+254711000001")
        self.sub.wait_for("%s/sms/in" % BASE, lambda m: (m["json"] or {}).get("text") == text,
                          timeout=30)

    def step_uplink_failure(self):
        say("  primary uplink (eth1) loses carrier")
        self.lab.net.carrier(1, False)
        try:
            dev = self.lablib.wait_until(lambda: self.lab.net.route_dev() == "eth2" and "eth2",
                                         15, "the default route to move")
            say("  the device's default route now goes via %s" % dev)
            if not has_feature(('"link"', '/link"')):
                raise NotImplementedYet("<base>/link")
            self.sub.wait_for("%s/link" % BASE, lambda m: "eth2" in m.get("payload", ""),
                              timeout=40)
        finally:
            self.lab.net.restore(1)
            say("  eth1 restored")

    STEPS = [("agent starts", "step_agent_running"),
             ("status", "step_status"),
             ("telemetry", "step_telemetry"),
             ("SMS out through <base>/sms/out", "step_sms_out"),
             ("SMS in on <base>/sms/in", "step_sms_in"),
             ("primary uplink failure", "step_uplink_failure")]

    def run(self):
        for name, fn in self.STEPS:
            self.run_step(name, getattr(self, fn))
        banner("summary")
        for name, res in self.results:
            say("  %-34s %s" % (name, res), RED if res == "FAILED" else (GREEN if res == "ok" else DIM))
        return all(res != "FAILED" for _, res in self.results)

    def stop(self, ok):
        if not ok:
            self.lab.print_logs(30)
        self.lab.stop()
        if ok:
            shutil.rmtree(self.run_dir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="run unattended, exit 0/1")
    ap.add_argument("--no-build", action="store_true", help="skip setup and build")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("demo: needs root (network and mount namespaces)")
    build(args.no_build)
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
    sys.exit(0 if ok else 1)


def _sigterm(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    import signal
    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)   # also when started in the background
    main()
