"""The agent under test: cellagent with a config written from a dict.

- write_config(path, settings): {"group": {"key": value}} -> INI file.
- Agent: the binary (under $CA_AGENT_WRAPPER, see core), its log, wait_log(), stop(),
  and its operator commands (status(), status_json(), cli()).
  With lab=, it runs in the lab's device namespace on the lab's bus and logs into the
  lab's logs/ (printed when a test fails).
"""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

from cellagent_test.core import AGENT_WRAPPER, CELLAGENT, at_exit, scaled, wait_until


def write_config(path, settings):
    """settings: {"group": {"key": value}} -> INI file."""
    with open(path, "w") as f:
        for group, keys in settings.items():
            f.write(f"[{group}]\n")
            for k, v in keys.items():
                if isinstance(v, bool):
                    v = "true" if v else "false"
                f.write(f"{k}={v}\n")
            f.write("\n")
    return path


def _runtime_dir(directory, name):
    """A runtime directory on tmpfs, as /run is in production: the status file is replaced
    on every change, and a rename over a file on ext4 flushes it (wakeups the idle benchmark
    would count). Falls back to the test's directory where /dev/shm is unusable."""
    try:
        path = tempfile.mkdtemp(prefix=f"cellagent-{name}-", dir="/dev/shm")
    except OSError:
        return os.path.join(directory, f"run-{name}")
    at_exit(lambda: shutil.rmtree(path, ignore_errors=True))
    return path


def _contains(seq, sub):
    """Is the list sub a contiguous part of the list seq?"""
    return any(seq[i:i + len(sub)] == sub for i in range(len(seq) - len(sub) + 1))


class Agent:
    """The cellagent binary under test, logging to a file in the run dir."""

    def __init__(self, directory, settings, args=(), env=None, name="agent", wrapper=(),
                 gate_wrapper=True):
        self.dir = directory
        self.settings = settings
        settings.setdefault("agent", {}).setdefault("state-dir", os.path.join(directory, "state"))
        # Never the real /run/cellagent: each agent its own (cellagent --status reads it).
        settings["agent"].setdefault("runtime-dir", _runtime_dir(directory, name))
        settings["agent"].setdefault("device-id", "dev1")
        # Economy mode off unless the test sets it: NetworkManager guesses the lab's
        # emulated modem metered, and economy's figures (hour-long telemetry spacing, a
        # 280 s keepalive, 300 s health rounds) would change what most tests wait for.
        # test_economy_ecm.py and bench_data_cost.py set it (docs/economy.md).
        settings.setdefault("economy", {}).setdefault("mode", "off")
        self.config = write_config(os.path.join(directory, f"{name}.conf"), settings)
        self.log = os.path.join(directory, f"{name}.log")
        self.args = list(args)
        self.env = dict(os.environ, **(env or {}))
        self.wrapper = list(wrapper)
        # Appended unless the test's wrapper already carries it (a wrapper that must
        # come after CA_AGENT_WRAPPER's may hold it already).
        if gate_wrapper and AGENT_WRAPPER and not _contains(self.wrapper, AGENT_WRAPPER):
            self.wrapper += AGENT_WRAPPER
        self.proc = None
        at_exit(self._cleanup)

    @classmethod
    def in_lab(cls, lab, settings, name="agent", args=(), wrapper=()):
        """An agent on the lab's bus, in its device namespace when it has a network
        (where the lab's broker listens); config and log in the lab's logs/, state in
        RUN/state-NAME unless settings name one. wrapper: more argv prefix, inside."""
        settings.setdefault("agent", {}).setdefault(
            "state-dir", os.path.join(lab.run_dir, "state-" + name))
        return cls(os.path.join(lab.run_dir, "logs"), settings, args=args, env=lab.env,
                   name=name, wrapper=lab.dut_wrapper() + list(wrapper))

    def start(self):
        logf = open(self.log, "a")
        self.proc = subprocess.Popen(self.wrapper + [CELLAGENT, "--config", self.config, "--log-level", "debug"] + self.args,
                                     stdout=logf, stderr=logf, env=self.env)
        logf.close()
        return self

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern, timeout=10):
        rx = re.compile(pattern)
        return wait_until(lambda: rx.search(self.log_text()), scaled(timeout), f"agent log /{pattern}/")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=5):
        """Send sig; return (exit code, seconds until exit)."""
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(scaled(timeout))
        except subprocess.TimeoutExpired:
            raise AssertionError(f"agent did not exit within {scaled(timeout)} s of {sig!r}")
        return rc, time.monotonic() - t0

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def status_file(self):
        return os.path.join(self.settings["agent"]["runtime-dir"], "status.json")

    def cli(self, *args, timeout=30):
        """Run `cellagent --config <this agent's config> ARGS` (--status, --diagnose ...)
        outside any wrapper; returns the CompletedProcess (text)."""
        return subprocess.run([CELLAGENT, "--config", self.config] + list(args),
                              capture_output=True, text=True, timeout=scaled(timeout),
                              env=self.env)

    def status(self, *args):
        """`cellagent --status ARGS`: (exit code, stdout, stderr)."""
        r = self.cli("--status", *args)
        return r.returncode, r.stdout, r.stderr

    def status_json(self):
        """`cellagent --status --json`: (exit code, the document)."""
        rc, out, err = self.status("--json")
        return rc, json.loads(out)

    def _cleanup(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait()

    def dump_log(self, lines=80):
        print(f"---- {self.log} (last {lines} lines) ----")
        print("\n".join(self.log_text().splitlines()[-lines:]))


