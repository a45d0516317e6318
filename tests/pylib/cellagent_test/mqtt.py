"""MQTT: the real mosquitto broker and clients, and the agent's MQTT module alone.

- Broker: a mosquitto with a config the test writes; on the host's loopback (free port),
  or with lab= in the lab's device namespace (where a lab agent reaches it whatever the
  uplinks do), or with wrapper= in any namespace; persistence= for sessions that survive
  a restart. subscribe() and publish() use clients in the broker's namespace.
- Subscriber: THE subscriber. mosquitto_sub collecting every message (as dicts, "json"
  parsed) on topic filters; the constructor returns only after the broker's SUBACK, so
  nothing published after it is missed. matching(), wait_for() (with a deadline).
- publish(): one message with mosquitto_pub.
- retained(), wait_retained(): a topic's retained message, read by a fresh client.
- make_pki(), passwd_file(): certificates (openssl) and a password file.
- HoldProxy: a TCP relay to a broker on loopback whose broker-to-client direction the test
  can hold (acknowledgements in flight) and release.
- Driver: tests/tools/mqtt-driver.c, one CaMqtt driven by line commands.
"""
import json
import os
import queue
import re
import shlex
import signal
import socket
import subprocess
import threading
import time

from cellagent_test.agent import write_config
from cellagent_test.core import (BUILD_DIR, PY, CommandError, PopenRecord, Proc, at_exit,
                                 free_port, port_open, run, scaled, wait_until)

DRIVER = os.path.join(BUILD_DIR, "tests", "ca-mqtt-driver")
# e.g. CA_TEST_WRAPPER="valgrind --leak-check=full --error-exitcode=99": agents and drivers
# of the MQTT tests run under it (timing assertions may then need a quiet machine).
WRAPPER = shlex.split(os.environ.get("CA_TEST_WRAPPER", ""))


class Broker:
    """A real mosquitto broker.

    directory: where its config (and, without a lab, its log) goes; host/port: what it
    listens on and what the agent's [mqtt] host/port take (port: free, or 1883 in a
    namespace). lab: start it as a lab process (torn down with the lab, log in the lab's
    logs/), in the lab's device namespace unless wrapper= says otherwise. wrapper: argv
    prefix that runs mosquitto and its clients in a namespace. persistence: keep sessions
    and queued messages across a clean stop()/start(). extra_conf: appended to the config.
    """

    def __init__(self, directory=None, port=None, extra_conf="", allow_anonymous=True,
                 host="127.0.0.1", lab=None, wrapper=None, persistence=False,
                 name="mosquitto"):
        self.lab = lab
        self.name = name
        self.wrapper = list(lab.dut_wrapper() if wrapper is None and lab else wrapper or [])
        self.host = host
        self.port = port or (1883 if self.wrapper else free_port())
        self.dir = directory or os.path.join(lab.run_dir, "mqtt")
        os.makedirs(self.dir, exist_ok=True)
        self.extra_conf = extra_conf
        self.allow_anonymous = allow_anonymous
        self.persistence = persistence
        self.proc = None
        self.conf = os.path.join(self.dir, name + ".conf")
        self.log = lab.log_path(name) if lab else os.path.join(self.dir, name + ".log")
        if not lab:
            at_exit(self.stop)

    def start(self, timeout=10):
        with open(self.conf, "w") as f:
            f.write(f"listener {self.port} {self.host}\n")
            f.write(f"allow_anonymous {'true' if self.allow_anonymous else 'false'}\n")
            if self.persistence:
                f.write(f"persistence true\npersistence_location {self.dir}/\n"
                        "autosave_interval 0\nuser root\n")
            else:
                f.write("persistence false\n")
            f.write("log_dest stderr\nlog_type all\n")
            f.write(self.extra_conf)
        self.proc = Proc(self.name, self.wrapper + ["mosquitto", "-c", self.conf], self.log,
                         env=self.lab.env if self.lab else None, owner=self.lab)
        wait_until(lambda: not self.proc.alive() or self.listening(), timeout,
                   "mosquitto to listen", 0.1)
        if not self.proc.alive():
            raise CommandError("mosquitto exited: " + self.log_text()[-2000:])
        return self

    def listening(self):
        """Does the broker accept connections (seen from its namespace)?"""
        if not self.wrapper:
            return port_open(self.port, self.host)
        probe = ("import socket,sys\ntry:\n socket.create_connection(('%s',%d),0.5)\n"
                 "except OSError: sys.exit(1)\n" % (self.host, self.port))
        return run(self.wrapper + [PY, "-c", probe], check=False).returncode == 0

    def stop(self):
        """A clean stop (SIGTERM; persistence saves its sessions)."""
        if self.proc:
            self.proc.stop()
        self.proc = None

    def kill(self):
        if self.proc:
            self.proc.stop(signal.SIGKILL)
        self.proc = None

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def subscribe(self, topics, on_message=None, **kwargs):
        """A Subscriber in the broker's namespace (returns after the SUBACK)."""
        return Subscriber(self.port, topics, host=self.host, wrapper=self.wrapper,
                          on_message=on_message, owner=self.lab, **kwargs)

    def publish(self, topic, payload, qos=1, retain=False, extra_args=()):
        """Publish one message (str, bytes, or an object sent as JSON)."""
        publish(self.port, topic, payload, qos=qos, retain=retain, host=self.host,
                extra_args=extra_args, wrapper=self.wrapper)


class Subscriber:
    """mosquitto_sub collecting every message on topic filters into self.messages.

    The constructor returns once the broker acknowledged the subscription (mosquitto_sub -d
    prints "received SUBACK"), so nothing published after it is missed; or once
    mosquitto_sub exited (a refused connection, for the tests that expect one).
    wrapper: argv prefix (a namespace); on_message(m): called from the reader thread for
    each message before it is recorded (it may add keys, e.g. an arrival time); owner: a
    Lab that records the client for teardown."""

    def __init__(self, port, topics, host="127.0.0.1", extra_args=(), protocol="mqttv5",
                 timeout=20, wrapper=(), on_message=None, owner=None):
        # stdbuf: mosquitto_sub flushes after each message, not after its log lines.
        args = list(wrapper) + ["stdbuf", "-oL", "mosquitto_sub", "-d", "-h", host,
                                "-p", str(port), "-V", protocol, "-q", "1", "-F", "%j"]
        for t in topics if isinstance(topics, (list, tuple)) else [topics]:
            args += ["-t", t]
        args += list(extra_args)
        self.messages = []
        self.on_message = on_message
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, text=True)
        if owner is not None:
            owner.register(PopenRecord("mosquitto_sub", self.proc))
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
            except (ValueError, TypeError):
                m["json"] = None
            if self.on_message:
                self.on_message(m)
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
                self.proc.wait()


class HoldProxy:
    """Relays TCP connections on a free loopback port to 127.0.0.1:target_port.

    hold(): what the broker sends (PUBACKs, PINGRESPs ...) waits in the proxy until
    release(); what the client sends still passes. close() ends every connection.
    """

    def __init__(self, target_port):
        self.target_port = target_port
        self.down = threading.Event()
        self.down.set()
        self.socks = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()
        at_exit(self.close)

    def hold(self):
        self.down.clear()

    def release(self):
        self.down.set()

    def _pipe(self, a, b, gate):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                if gate is not None:
                    gate.wait()
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
                u = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                return
            self.socks += [c, u]
            threading.Thread(target=self._pipe, args=(c, u, None), daemon=True).start()
            threading.Thread(target=self._pipe, args=(u, c, self.down), daemon=True).start()

    def close(self):
        self.down.set()
        for s in [self.sock] + self.socks:
            try:
                s.close()
            except OSError:
                pass


def publish(port, topic, payload, qos=1, retain=False, host="127.0.0.1", extra_args=(),
            wrapper=()):
    """Publish one message with mosquitto_pub; payload str, bytes or an object (as JSON)."""
    if not isinstance(payload, (str, bytes)):
        payload = json.dumps(payload)
    args = list(wrapper) + ["mosquitto_pub", "-h", host, "-p", str(port), "-q", str(qos),
                            "-t", topic, "-s"]
    if retain:
        args.append("-r")
    args += list(extra_args)
    data = payload if isinstance(payload, bytes) else payload.encode()
    subprocess.run(args, input=data, check=True, timeout=10)


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
        return wait_until(check, timeout, f"retained {topic}", interval=0.2)
    except AssertionError:
        raise AssertionError(f"retained {topic} is {last[0]!r} after {timeout} s")


def _mqtt_str(text):
    b = text.encode()
    return len(b).to_bytes(2, "big") + b


def _mqtt_packet(first, body):
    n, length = len(body), b""
    while True:
        byte, n = n % 128, n // 128
        length += bytes([byte | (128 if n else 0)])
        if not n:
            return bytes([first]) + length + body


def hold_client_id(host, port, client_id, username=None, password=None, protocol="3.1.1",
                   seconds=2.0):
    """Connect once as client_id (a raw MQTT CONNECT: no reconnect, unlike mosquitto_sub, which
    fights a takeover it loses for ever), keep the connection up to `seconds` or until the
    broker closes it, then DISCONNECT. Returns the CONNACK return/reason code, or None when
    the broker closed before answering."""
    flags = 0x02 | (0x80 if username is not None else 0) | (0x40 if password is not None else 0)
    body = _mqtt_str("MQTT") + bytes([5 if protocol == "5" else 4, flags]) + (60).to_bytes(2, "big")
    if protocol == "5":
        body += b"\x00"  # no properties
    body += _mqtt_str(client_id)
    if username is not None:
        body += _mqtt_str(username)
    if password is not None:
        body += _mqtt_str(password)
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(_mqtt_packet(0x10, body))
        head = s.recv(64)
        if len(head) < 4 or head[0] != 0x20:
            return None
        code = head[3]
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            s.settimeout(left)
            try:
                if not s.recv(4096):
                    return code  # the broker closed it (taken over in turn)
            except socket.timeout:
                break
        try:
            s.sendall(b"\xe0\x00")
        except OSError:
            pass
        return code


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
        self.config = write_config(os.path.join(directory, f"{name}.conf"), settings)
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
        at_exit(self._cleanup)
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
        return wait_until(lambda: (lambda ms: ms if len(ms) >= count else None)(self.matching(pattern)),
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
        return wait_until(lambda: rx.search(self.log_text()), timeout, f"driver log /{pattern}/")

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
