"""Shared helpers for cellagent's Python integration tests (stdlib only).

- run_dir(): a per-test directory under $CA_BUILD_DIR/test-runs (kept on failure).
- wait_until(pred, timeout, what): poll a condition with a deadline (never a bare sleep).
- Broker: a real mosquitto on 127.0.0.1 with a free port and a config the test writes.
- Subscriber: a real MQTT client (mosquitto_sub -F %j) collecting messages as dicts.
- Agent: the cellagent binary with a config written from a dict; log matching; stop.
Tests exit 77 (ctest SKIP_RETURN_CODE) through skip() when a prerequisite is missing.

Quality gates (scripts/test) set two variables that every test inherits:
- CA_AGENT_WRAPPER: a command line the agent is started under (valgrind in the memcheck
  stage). Agent puts it right before the binary, after a test's own wrapper= (e.g. the
  lab's dut_wrapper()), unless the test passes gate_wrapper=False (benchmarks do).
- CA_TIME_SCALE: how much slower the agent runs there (valgrind ~10x). Agent.wait_log()
  and Agent.stop() stretch their deadlines by it; tests stretch their own with scaled().
"""
import atexit
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SOURCE_DIR = os.environ.get("CA_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD_DIR = os.environ.get("CA_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
CELLAGENT = os.environ.get("CELLAGENT_BIN", os.path.join(BUILD_DIR, "cellagent"))
SKIP = 77
AGENT_WRAPPER = shlex.split(os.environ.get("CA_AGENT_WRAPPER", ""))
TIME_SCALE = float(os.environ.get("CA_TIME_SCALE", "1") or 1)


def scaled(seconds):
    """A deadline stretched for slow builds (valgrind, sanitizers): see CA_TIME_SCALE."""
    return seconds * TIME_SCALE

_cleanups = []


def skip(reason):
    print(f"SKIP: {reason}", flush=True)
    sys.exit(SKIP)


def at_exit(fn):
    """Run fn at interpreter exit (LIFO), also after a failed assertion."""
    _cleanups.append(fn)
    return fn


@atexit.register
def _run_cleanups():
    while _cleanups:
        fn = _cleanups.pop()
        try:
            fn()
        except Exception as e:  # cleanup must go on
            print(f"cleanup error: {e}", file=sys.stderr)


def _sigterm(signum, frame):
    sys.exit(128 + signum)


signal.signal(signal.SIGTERM, _sigterm)


def run_dir(name=None):
    """A fresh directory for this test's files."""
    base = os.path.join(BUILD_DIR, "test-runs")
    os.makedirs(base, exist_ok=True)
    name = name or os.path.splitext(os.path.basename(sys.argv[0]))[0]
    return tempfile.mkdtemp(prefix=name + "-", dir=base)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, what="condition", interval=0.05):
    """Return pred()'s first truthy value; raise AssertionError after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class Broker:
    """A real mosquitto broker on 127.0.0.1."""

    def __init__(self, directory, port=None, extra_conf="", allow_anonymous=True):
        self.dir = directory
        self.port = port or free_port()
        self.extra_conf = extra_conf
        self.allow_anonymous = allow_anonymous
        self.proc = None
        self.conf = os.path.join(directory, "mosquitto.conf")
        self.log = os.path.join(directory, "mosquitto.log")
        at_exit(self.stop)

    def start(self, timeout=10):
        with open(self.conf, "w") as f:
            f.write(f"listener {self.port} 127.0.0.1\n")
            f.write(f"allow_anonymous {'true' if self.allow_anonymous else 'false'}\n")
            f.write("persistence false\nlog_dest stderr\nlog_type all\n")
            f.write(self.extra_conf)
        logf = open(self.log, "a")
        self.proc = subprocess.Popen(["mosquitto", "-c", self.conf], stdout=logf, stderr=logf)
        logf.close()
        wait_until(lambda: self.proc.poll() is not None or port_open(self.port), timeout, "mosquitto to listen")
        if self.proc.poll() is not None:
            raise AssertionError(f"mosquitto exited: {open(self.log).read()[-2000:]}")
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


class Subscriber:
    """mosquitto_sub collecting every message on topic filters into self.messages.

    The constructor returns once the broker acknowledged the subscription (mosquitto_sub -d
    prints "received SUBACK"), so nothing published after it is missed; or once
    mosquitto_sub exited (a refused connection, for the tests that expect one)."""

    def __init__(self, port, topics, host="127.0.0.1", extra_args=(), protocol="mqttv5",
                 timeout=20):
        # stdbuf: mosquitto_sub flushes after each message, not after its log lines.
        args = ["stdbuf", "-oL", "mosquitto_sub", "-d", "-h", host, "-p", str(port),
                "-V", protocol, "-q", "1", "-F", "%j"]
        for t in topics if isinstance(topics, (list, tuple)) else [topics]:
            args += ["-t", t]
        args += list(extra_args)
        self.messages = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        at_exit(self.close)
        wait_until(lambda: self._subscribed.is_set() or self.proc.poll() is not None,
                   scaled(timeout), "the subscriber's SUBACK")

    def _read(self):
        for line in self.proc.stdout:
            if not line.startswith("{"):  # -d: the client's log lines
                if "received SUBACK" in line:
                    self._subscribed.set()
                continue
            try:
                m = json.loads(line)
            except ValueError:
                continue
            try:
                m["json"] = json.loads(m.get("payload", ""))
            except ValueError:
                m["json"] = None
            with self._lock:
                self.messages.append(m)

    def matching(self, topic=None, pred=None):
        with self._lock:
            msgs = list(self.messages)
        return [m for m in msgs
                if (topic is None or m["topic"] == topic) and (pred is None or pred(m))]

    def wait_for(self, topic=None, pred=None, timeout=10, count=1):
        """Wait until at least count messages match; return them."""
        return wait_until(lambda: (lambda ms: ms if len(ms) >= count else None)(self.matching(topic, pred)),
                          timeout, f"{count} message(s) on {topic}")

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def publish(port, topic, payload, qos=1, retain=False, host="127.0.0.1", extra_args=()):
    """Publish one message with mosquitto_pub; payload str or bytes."""
    args = ["mosquitto_pub", "-h", host, "-p", str(port), "-q", str(qos), "-t", topic, "-s"]
    if retain:
        args.append("-r")
    args += list(extra_args)
    data = payload if isinstance(payload, bytes) else payload.encode()
    subprocess.run(args, input=data, check=True, timeout=10)


class PrivateBus:
    """A dbus-daemon of type system on a socket in directory, restartable at the same path."""

    def __init__(self, directory):
        self.dir = directory
        self.socket = os.path.join(directory, "system_bus_socket")
        self.address = "unix:path=" + self.socket
        self.conf = os.path.join(directory, "bus.conf")
        self.proc = None
        with open(self.conf, "w") as f:
            f.write(f"""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>system</type><listen>{self.address}</listen>
<policy context="default"><allow user="*"/><allow own="*"/><allow send_type="method_call"/>
<allow send_destination="*" eavesdrop="true"/><allow receive_sender="*"/></policy></busconfig>
""")
        at_exit(self.stop)

    def start(self):
        if os.path.exists(self.socket):
            os.unlink(self.socket)
        self.proc = subprocess.Popen(["dbus-daemon", "--nofork", "--nopidfile",
                                      "--config-file=" + self.conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: os.path.exists(self.socket) or self.proc.poll() is not None, 10,
                     "the private bus socket")
        if self.proc.poll() is not None:
            raise AssertionError("dbus-daemon exited")
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
        self.proc = None

    def client_pids(self):
        """Process id of each of the bus's client connections (busctl list), one entry per
        connection, e.g. to see the agent reconnect: pids.count(agent_pid)."""
        out = subprocess.run(["busctl", "--address=" + self.address, "list", "--no-legend",
                              "--unique"], capture_output=True, text=True, timeout=10).stdout
        return [int(f[1]) for f in (line.split() for line in out.splitlines())
                if len(f) > 1 and f[1].isdigit()]


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
        settings["agent"].setdefault("device-id", "dev1")
        self.config = write_config(os.path.join(directory, f"{name}.conf"), settings)
        self.log = os.path.join(directory, f"{name}.log")
        self.args = list(args)
        self.env = dict(os.environ, **(env or {}))
        self.wrapper = list(wrapper)
        # Appended unless the test's wrapper already carries it (tests/lib/modem_helpers.py
        # adds CA_AGENT_WRAPPER after the lab's dut_wrapper() itself).
        if gate_wrapper and AGENT_WRAPPER and not _contains(self.wrapper, AGENT_WRAPPER):
            self.wrapper += AGENT_WRAPPER
        self.proc = None
        at_exit(self._cleanup)

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

    def _cleanup(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait()

    def dump_log(self, lines=80):
        print(f"---- {self.log} (last {lines} lines) ----")
        print("\n".join(self.log_text().splitlines()[-lines:]))


def main(test_fn):
    """Run test_fn(); print the outcome; on failure dump logs registered by the test."""
    try:
        test_fn()
    except SystemExit:
        raise
    except BaseException:
        import traceback
        traceback.print_exc()
        for fn in _on_failure:
            try:
                fn()
            except Exception:
                pass
        print("FAILED")
        sys.exit(1)
    print("PASSED")
    sys.exit(0)


_on_failure = []


def on_failure(fn):
    """Register fn to run (e.g. dump logs) when the test fails."""
    _on_failure.append(fn)
    return fn
