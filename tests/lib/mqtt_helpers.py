"""Helpers for the MQTT integration tests (stdlib only; extends harness.py).

- Driver: tests/tools/mqtt-driver.c, one CaMqtt driven by line commands.
- retained(): the retained message of a topic, read by a fresh real client.
- make_pki(): CA, server and client certificates made with openssl.
- passwd_file(): a mosquitto password file (mosquitto_passwd).
- cpu_seconds(), rss_kb(): from /proc/<pid>.
"""
import json
import os
import queue
import re
import shlex
import subprocess
import threading
import time

import harness

DRIVER = os.path.join(harness.BUILD_DIR, "tests", "ca-mqtt-driver")
# e.g. CA_TEST_WRAPPER="valgrind --leak-check=full --error-exitcode=99": agents and drivers
# of the MQTT tests run under it (timing assertions may then need a quiet machine).
WRAPPER = shlex.split(os.environ.get("CA_TEST_WRAPPER", ""))


def need(*programs):
    for p in programs:
        if not any(os.access(os.path.join(d, p), os.X_OK) for d in os.environ.get("PATH", "").split(":")):
            harness.skip(f"{p} not installed")


def retained(port, topic, timeout=3, extra_args=(), host="127.0.0.1"):
    """The retained payload (parsed JSON) on topic, or None when there is none."""
    args = ["mosquitto_sub", "-h", host, "-p", str(port), "-t", topic, "-F", "%j",
            "--retained-only", "-C", "1", "-W", str(timeout)] + list(extra_args)
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout + 5)
    for line in r.stdout.splitlines():
        m = json.loads(line)
        if m.get("retain"):
            return json.loads(m["payload"])
    return None


def wait_retained(port, topic, pred, timeout=15, extra_args=(), host="127.0.0.1"):
    """Wait until the retained message on topic satisfies pred; return it."""
    last = [None]

    def check():
        last[0] = retained(port, topic, timeout=1, extra_args=extra_args, host=host)
        return last[0] if last[0] is not None and pred(last[0]) else None
    try:
        return harness.wait_until(check, timeout, f"retained {topic}", interval=0.2)
    except AssertionError:
        raise AssertionError(f"retained {topic} is {last[0]!r} after {timeout} s")


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


def passwd_file(path, users):
    """users: {name: password} -> a mosquitto password file at path."""
    open(path, "w").close()
    for name, pw in users.items():
        subprocess.run(["mosquitto_passwd", "-b", path, name, pw], check=True,
                       capture_output=True, timeout=10)
    os.chmod(path, 0o600)
    return path


def _openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True, timeout=30)


def make_ca(d, name):
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-keyout", f"{name}.key", "-out", f"{name}.crt", "-subj", f"/CN={name}", cwd=d)
    return os.path.join(d, f"{name}.crt")


def make_cert(d, ca, name, cn, san=None, client=False):
    ext = os.path.join(d, f"{name}.ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\n")
        f.write(f"extendedKeyUsage={'clientAuth' if client else 'serverAuth'}\n")
        if san:
            f.write(f"subjectAltName={san}\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
             "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=d)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
             "-CAcreateserial", "-days", "2", "-out", f"{name}.crt", "-extfile", ext, cwd=d)
    return os.path.join(d, f"{name}.crt"), os.path.join(d, f"{name}.key")


def make_pki(d):
    """ca, wrongca, server (localhost), client dev1, client dev2: paths in a dict."""
    os.makedirs(d, exist_ok=True)
    p = {"ca": make_ca(d, "ca"), "wrongca": make_ca(d, "wrongca")}
    p["server_crt"], p["server_key"] = make_cert(d, "ca", "server", "localhost", "DNS:localhost")
    p["dev1_crt"], p["dev1_key"] = make_cert(d, "ca", "dev1", "dev1", client=True)
    p["dev2_crt"], p["dev2_key"] = make_cert(d, "ca", "dev2", "dev2", client=True)
    return p


class Driver:
    """tests/tools/mqtt-driver: one CaMqtt; send() commands, expect() output lines."""

    def __init__(self, directory, settings, name="driver", wrapper=None, env=None):
        settings.setdefault("agent", {}).setdefault("device-id", "dev1")
        settings["agent"].setdefault("state-dir", os.path.join(directory, "state"))
        self.config = harness.write_config(os.path.join(directory, f"{name}.conf"), settings)
        self.log = os.path.join(directory, f"{name}.log")
        logf = open(self.log, "a")
        wrapper = WRAPPER if wrapper is None else wrapper
        self.proc = subprocess.Popen(list(wrapper) + [DRIVER, self.config], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=logf, text=True, bufsize=1,
                                     env=dict(os.environ, **(env or {})))
        logf.close()
        self.lines = []
        self._q = queue.Queue()
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        harness.at_exit(self._cleanup)
        self.expect(r"^ready$", 30)

    def _read(self):
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            with self._lock:
                self.lines.append(line)

    def send(self, cmd):
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()

    def matching(self, pattern):
        rx = re.compile(pattern)
        with self._lock:
            return [m for m in (rx.search(l) for l in self.lines) if m]

    def expect(self, pattern, timeout=10, count=1):
        """Wait until count lines match pattern; return the matches."""
        return harness.wait_until(lambda: (lambda ms: ms if len(ms) >= count else None)(self.matching(pattern)),
                                  timeout, f"driver output /{pattern}/ x{count}")

    def stats(self, timeout=10):
        before = len(self.matching(r"^stats "))
        self.send("stats")
        m = self.expect(r"^stats queue=(\d+) dropped=(\d+) connected=(\d)", timeout, before + 1)[-1]
        return {"queue": int(m.group(1)), "dropped": int(m.group(2)), "connected": m.group(3) == "1"}

    def log_text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def wait_log(self, pattern, timeout=10):
        rx = re.compile(pattern)
        return harness.wait_until(lambda: rx.search(self.log_text()), timeout, f"driver log /{pattern}/")

    def close(self, timeout=10):
        """EOF on stdin: the driver destroys its client and exits; return the exit code."""
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        return self.proc.wait(timeout)

    def _cleanup(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def dump(self, lines=60):
        print(f"---- {self.log} (last {lines} lines) ----")
        print("\n".join(self.log_text().splitlines()[-lines:]))
        with self._lock:
            print("---- driver output ----")
            print("\n".join(self.lines[-lines:]))
