"""What every test needs: paths, cleanup, deadlines, processes, the test's main().

- run_dir(): a per-test directory under $CA_BUILD_DIR/test-runs (kept on failure).
- wait_until(pred, timeout, what): THE way to wait for something: poll a condition with a
  deadline and fail with what was awaited (never a bare sleep). Every other wait in the
  package (a subscriber's messages, an agent's log line, a modem state) is built on it.
- Proc: a process a test starts (own session, log file), stopped at exit or by its lab.
- run(): a command's CompletedProcess, raising on failure.
- main(fn) and on_failure(): the entry point of a test written as one function (lab tests
  are unittest classes run by cellagent_test.lab.main()).
Tests exit 77 (ctest SKIP_RETURN_CODE) through skip() when a prerequisite is missing.

Quality gates (scripts/test) set two variables that every test inherits:
- CA_AGENT_WRAPPER: a command line the agent is started under (valgrind in the memcheck
  stage). Agent puts it right before the binary, after a test's own wrapper= (e.g. the
  lab's dut_wrapper()), unless the test passes gate_wrapper=False (benchmarks do).
- CA_TIME_SCALE: how much slower the agent runs there (valgrind ~10x). Agent.wait_log()
  and Agent.stop() stretch their deadlines by it; tests stretch their own with scaled().
"""
import atexit
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time

SOURCE_DIR = os.environ.get("CA_SOURCE_DIR", os.path.abspath(
    os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "..", "..")))
BUILD_DIR = os.environ.get("CA_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
CELLAGENT = os.environ.get("CELLAGENT_BIN", os.path.join(BUILD_DIR, "cellagent"))
# The directory holding this package (for child Python processes that import it).
PYLIB_DIR = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
# Debian's interpreter, the one python3-dbusmock is installed for.
PY = "/usr/bin/python3"
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


def need(*programs):
    """Skip the test unless every program is on PATH."""
    for p in programs:
        if not any(os.access(os.path.join(d, p), os.X_OK)
                   for d in os.environ.get("PATH", "").split(":")):
            skip(f"{p} not installed")


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


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_until(pred, timeout, what="condition", interval=0.05):
    """Return pred()'s first truthy value; raise AssertionError after timeout seconds.

    pred may raise to fail early (e.g. the process that should answer has exited)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class CommandError(Exception):
    """A command run by run() failed, or a process failed to start."""


def run(argv, check=True, env=None, input=None, timeout=60):
    """Run a command, capture text output; raise CommandError on failure if check."""
    res = subprocess.run(argv, capture_output=True, text=True, env=env, input=input,
                         timeout=timeout)
    if check and res.returncode != 0:
        raise CommandError("%s failed (%d): %s" % (" ".join(argv), res.returncode,
                                                   (res.stderr or res.stdout).strip()))
    return res


def proc_starttime(pid):
    """Start time of pid (clock ticks since boot), or None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


class Proc:
    """A process a test started, logging to a file.

    owner: a Lab, which records it for teardown (also by its reaper, should the test
    process die) and for which it runs in a session of its own; without one the process
    stays in the test's process group (a ctest timeout ends it too) and is stopped at
    exit."""

    def __init__(self, name, argv, log, env=None, owner=None):
        self.name = name
        self.argv = argv
        self.log = log
        with open(self.log, "ab") as logf:
            self.popen = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, env=env,
                                          start_new_session=owner is not None)
        self.pid = self.popen.pid
        self.start = proc_starttime(self.pid)
        if owner is not None:
            owner.register(self)
        else:
            at_exit(lambda: self.stop(signal.SIGKILL, 5))

    def alive(self):
        """True while the process runs (not reaped, not a zombie)."""
        return self.popen.poll() is None

    def send_signal(self, sig):
        """Send sig if the process is still ours and alive."""
        if self.alive():
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, sig=signal.SIGTERM, timeout=5.0):
        """Send sig, wait up to timeout, then SIGKILL; return the exit code."""
        self.send_signal(sig)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.send_signal(signal.SIGKILL)
            return self.popen.wait(5)

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def record(self):
        """What the lab's reaper needs to find this process again."""
        return {"name": self.name, "pid": self.pid, "start": self.start}


class PopenRecord:
    """A Popen started elsewhere, recorded by a Lab for teardown like a Proc."""

    def __init__(self, name, popen):
        self.name, self.popen, self.pid = name, popen, popen.pid
        self.start = proc_starttime(popen.pid)

    def record(self):
        return {"name": self.name, "pid": self.pid, "start": self.start}


def cpu_seconds(pid):
    """User + system CPU time of pid, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state): utime is field 14, stime field 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


_on_failure = []


def on_failure(fn):
    """Register fn to run (e.g. dump logs) when the test fails."""
    _on_failure.append(fn)
    return fn


def main(test_fn):
    """Run test_fn(); print the outcome; on failure run the on_failure() hooks."""
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
