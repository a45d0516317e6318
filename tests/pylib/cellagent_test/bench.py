"""Benchmark helpers (tests/bench/, label bench; run them with scripts/bench).

Every figure is recorded with record(): a value, the baseline measured in the same run
(so the ratio survives a slower or busier machine), an optional target, and the command
that reproduces it. scripts/bench collects the records ($CA_BENCH_RESULTS, JSON lines)
into the Markdown table of docs/benchmarks.md.

- Env: a broker and a system bus for the agent and the baselines. The bus is the lab's
  (real ModemManager with an emulated modem, cellagent_test.lab) when we are root, else a private dbus-daemon with no daemons on it (CA_BENCH_ENV=lab|bus
  forces one). The agent, not the environment, is what is measured.
- memory(pid): Rss, Pss and private memory from /proc/PID/smaps_rollup (kB).
- Wakeups(pid): voluntary context switches summed over the process's threads: each time
  a thread sleeps again after waking, that is one wakeup.
- settle(pids): wait until the processes stop waking up (or a cap), before measuring.
- latency_stats(samples): p50/p95/p99/max for the latency benchmarks.
- DbusMonitor(env, rule, on_line): dbus-monitor, returning once it monitors.
"""
import json
import math
import os
import platform
import signal
import subprocess
import threading
import time

import cellagent_test as ct

RESULTS = os.environ.get("CA_BENCH_RESULTS", os.path.join(ct.BUILD_DIR, "bench-results.jsonl"))
BENCH_BIN_DIR = os.path.join(ct.BUILD_DIR, "tests", "bench")


def baseline_bin(name):
    """Path of a baseline program built from tests/bench/baseline-<name>.c."""
    path = os.path.join(BENCH_BIN_DIR, "baseline-" + name)
    if not os.access(path, os.X_OK):
        raise AssertionError(f"{path} is not built (cmake --build the build dir first)")
    return path


def reproduce(bench_file, extra_env=""):
    """The command line that reruns one benchmark file."""
    name = os.path.splitext(os.path.basename(bench_file))[0].replace("_", "-")
    env = (extra_env + " ") if extra_env else ""
    return f"{env}scripts/bench -R '^{name}$'"


def _parse_target(target):
    """'<= 1.3x' (on the ratio) or '< 0.2' (on the value) -> (op, limit, on_ratio)."""
    op, limit = target.split()
    on_ratio = limit.endswith("x")
    return op, float(limit.rstrip("x")), on_ratio


def record(bench, metric, value, unit, baseline=None, target=None, command=None, note=""):
    """Record one figure; returns True when it meets its target (or has none)."""
    ratio = (value / baseline) if baseline else None
    ok = None
    if target:
        op, limit, on_ratio = _parse_target(target)
        x = ratio if on_ratio else value
        ok = x is not None and (x <= limit if op == "<=" else x < limit)
    rec = {"bench": bench, "metric": metric, "value": value, "unit": unit,
           "baseline": baseline, "ratio": ratio, "target": target, "ok": ok,
           "command": command, "note": note, "time": time.strftime("%Y-%m-%d %H:%M"),
           "host": f"{platform.node()} ({os.cpu_count()} cpu)"}
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "a") as f:
        f.write(json.dumps(rec) + "\n")
    r = f"  ratio {ratio:.2f}" if ratio is not None else ""
    b = f"  baseline {baseline:.3g}" if baseline is not None else ""
    t = f"  target {target}: {'met' if ok else 'MISSED'}" if target else ""
    print(f"{bench}: {metric} = {value:.3g} {unit}{b}{r}{t}", flush=True)
    return ok is not False


# ---------------------------------------------------------------- process figures

def memory(pid):
    """{'Rss', 'Pss', 'Private', 'Shared'} in kB from /proc/PID/smaps_rollup."""
    vals = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                vals[parts[0][:-1]] = int(parts[1])
    return {"Rss": vals["Rss"], "Pss": vals["Pss"],
            "Private": vals.get("Private_Clean", 0) + vals.get("Private_Dirty", 0),
            "Shared": vals.get("Shared_Clean", 0) + vals.get("Shared_Dirty", 0)}


def rss(pid):
    return memory(pid)["Rss"]


def _thread_switches(pid):
    """{tid: voluntary context switches} of the live threads of pid."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        out[tid] = int(line.split()[1])
        except FileNotFoundError:  # the thread ended meanwhile
            pass
    return out


class Wakeups:
    """Wakeups of a process: voluntary context switches summed over its threads, each
    thread counted at its last sighting, so threads that end (GLib's pool threads do)
    keep their count. poll() often (this module polls every 0.5-1 s); a thread that starts
    and ends between two polls is missed."""

    def __init__(self, pid):
        self.pid = pid
        self.seen = {}
        self.poll()

    def poll(self):
        for tid, n in _thread_switches(self.pid).items():
            self.seen[tid] = max(n, self.seen.get(tid, 0))
        return sum(self.seen.values())


def wakeups(pid):
    """Voluntary context switches of the live threads of pid (one reading)."""
    return sum(_thread_switches(pid).values())


def settle(pids, quiet=3.0, cap=30.0):
    """Wait until none of pids wakes up for `quiet` s, at most `cap` s; return seconds."""
    t0 = time.monotonic()
    counters = [Wakeups(p) for p in pids]
    last = [c.poll() for c in counters]
    quiet_since = time.monotonic()
    while time.monotonic() - t0 < cap:
        time.sleep(0.5)
        now = [c.poll() for c in counters]
        if now != last:
            last, quiet_since = now, time.monotonic()
        elif time.monotonic() - quiet_since >= quiet:
            break
    return time.monotonic() - t0


def latency_stats(samples):
    """{'p50', 'p95', 'p99', 'max', 'n'} of a list of seconds (nearest-rank percentiles)."""
    s = sorted(samples)
    if not s:
        raise AssertionError("no latency samples")

    def pct(p):
        return s[max(0, min(len(s) - 1, math.ceil(p / 100 * len(s)) - 1))]
    return {"p50": pct(50), "p95": pct(95), "p99": pct(99), "max": s[-1], "n": len(s)}


class DbusMonitor:
    """dbus-monitor on the system bus of env (a dict of variables) for one match rule;
    on_line(line) runs in a reader thread for every line it prints. The constructor
    returns once dbus-monitor monitors (it has lost the unique name BecomeMonitor takes
    away), so no signal sent after it is missed."""

    def __init__(self, env, rule, on_line, timeout=10):
        self.proc = subprocess.Popen(["stdbuf", "-oL", "dbus-monitor", "--system", rule],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, env=dict(os.environ, **env))
        self._monitoring = threading.Event()
        threading.Thread(target=self._read, args=(on_line,), daemon=True).start()
        ct.at_exit(self.close)
        ct.wait_until(lambda: self._monitoring.is_set() or self.proc.poll() is not None,
                      timeout, "dbus-monitor to monitor")
        if not self._monitoring.is_set():
            raise AssertionError("dbus-monitor exited with %s" % self.proc.returncode)

    def _read(self, on_line):
        for line in self.proc.stdout:
            if self._monitoring.is_set():
                on_line(line)
            elif "member=NameLost" in line:
                self._monitoring.set()

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)


# ---------------------------------------------------------------- environment



class Env:
    """Broker + system bus + where processes run; .env holds DBUS_SYSTEM_BUS_ADDRESS.

    Lab: an ECM modem (real data path) with NetworkManager in the device namespace; the
    broker, the agent and the baselines all run in that namespace (.wrapper), and the
    agent's probes go to the lab's own "internet". Private bus: no daemons, a broker on
    127.0.0.1, probes only to the broker. Either way no traffic leaves the machine.
    """

    def __init__(self, directory, modem=True):
        self.dir = directory
        self.bus = self.lab = None
        self.wrapper = []
        mode = os.environ.get("CA_BENCH_ENV", "auto")
        lab_ok = os.geteuid() == 0
        if mode == "lab" and not lab_ok:
            ct.skip("CA_BENCH_ENV=lab needs root")
        if modem and (mode == "lab" or (mode == "auto" and lab_ok)):
            from cellagent_test import lab as lablib
            # No connectivity checks: the lab's 5 s interval (a real device: 300 s) would
            # wake every NMClient, the agent's and the baseline's alike, every few seconds.
            self.lab = lablib.Lab(run_dir=os.path.join(directory, "lab"), personality="ecm",
                                  connectivity=False)
            self.lab.start()
            self.lab.mm.wait_modem()
            self.broker = self.lab.start_broker()
            self.broker_host, self.broker_logfile = self.broker.host, self.broker.log
            self.wrapper = self.lab.dut_wrapper()
            self.probes = "dns:%s;tcp:%s:80" % (lablib.INTERNET_DNS, lablib.INTERNET_PROBE)
            address = self.lab.env["DBUS_SYSTEM_BUS_ADDRESS"]
            self.kind = "lab: ModemManager + ECM modem, NetworkManager, cellular uplink"
        else:
            self.broker = ct.Broker(directory).start()
            self.broker_host, self.broker_logfile = "127.0.0.1", self.broker.log
            self.bus = ct.PrivateBus(directory).start()
            self.probes = "tcp:mqtt"
            address = self.bus.address
            self.kind = "private bus, no ModemManager/NetworkManager"
        self.env = {"DBUS_SYSTEM_BUS_ADDRESS": address}
        print(f"bench env: {self.kind}; broker {self.broker_host}:{self.broker.port}", flush=True)

    def broker_log(self):
        try:
            with open(self.broker_logfile, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def agent_settings(self, **groups):
        """Agent settings for this env; telemetry only on change (no periodic timer)."""
        s = {"agent": {"device-id": "bench", "log-level": "info"},
             "mqtt": {"host": self.broker_host, "port": self.broker.port},
             "telemetry": {"interval": 0},
             "health": {"probes": self.probes}}
        for g, kv in groups.items():
            s.setdefault(g, {}).update(kv)
        return s

    def agent(self, settings=None, name="agent"):
        """The agent (never under CA_AGENT_WRAPPER), started; log level info."""
        # Agent passes --log-level debug; a later --log-level wins: the shipped level.
        a = ct.Agent(self.dir, settings or self.agent_settings(), env=self.env, name=name,
                     args=("--log-level", "info"), wrapper=self.wrapper, gate_wrapper=False)
        ct.on_failure(a.dump_log)
        return a.start()

    def stop(self):
        if self.lab:
            self.lab.stop()
        if self.bus:
            self.bus.stop()
        if not self.lab:
            self.broker.stop()


class Baseline:
    """A baseline program started with the env's bus; waits for its 'ready' line."""

    def __init__(self, env, name, args, ready="ready"):
        self.proc = subprocess.Popen(env.wrapper + [baseline_bin(name)] + [str(a) for a in args],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env=dict(os.environ, **env.env))
        self.lines = []
        self._ready = threading.Event()

        def read():
            for line in self.proc.stdout:
                self.lines.append(line.rstrip())
                if ready in line:
                    self._ready.set()
        threading.Thread(target=read, daemon=True).start()
        ct.at_exit(self.stop)
        if not self._ready.wait(30) or self.proc.poll() is not None:
            raise AssertionError(f"baseline-{name} not ready: {self.lines[-10:]}")
        self.pid = self.proc.pid

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
