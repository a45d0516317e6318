"""Brokers other than mosquitto, for the interop tests (label interop): ejabberd's mod_mqtt
and RabbitMQ's MQTT plugin, each a private instance from the Debian package.

Every instance is the test's own: its config, node name, Erlang cookie, data and log
directories under the test's run directory, MQTT on a free loopback port, and its own epmd
(Epmd: the Erlang port mapper on a free loopback port, handed to every node and control
client as ERL_EPMD_PORT), so a system ejabberd, RabbitMQ or epmd running on the machine
neither disturbs a test nor is disturbed by it. Nodes are long-named NAME@127.0.0.1 and
their distribution listens on 127.0.0.1 only.

- Epmd: the private port mapper.
- Ejabberd: one node (mod_mqtt with the per-device ACL of docs/fleet.md), users registered
  over Erlang RPC, join() for a cluster.
- RabbitMQ: one node with the rabbitmq_mqtt plugin, users and topic permissions (the same
  per-device rule) loaded from a definitions file at boot.
- creds(): mosquitto_sub/_pub arguments for a user.
- Scenario: the fleet scenario every broker of the matrix runs (status and Last Will,
  telemetry, sms/out and its result, a command round trip, reconnects into the persistent
  session: cmd/mqtt-reconnect, and a restart after kill -9; the per-device ACL); it records what the broker did where brokers differ, for
  the test to assert.
"""
import base64
import glob
import hashlib
import json
import os
import re
import secrets
import signal
import subprocess

from cellagent_test.agent import Agent
from cellagent_test.core import (CommandError, Proc, at_exit, free_port, on_failure, port_open,
                                 run, scaled, wait_until)
from cellagent_test.mqtt import Subscriber, hold_client_id, publish, retained, wait_retained

# One password per user name, known to every broker a test starts.
USERS = ("dev1", "dev2", "backend", "ops")


def password(user):
    return "pw-" + user


def creds(user, client_id=None):
    """mosquitto_sub/_pub arguments that log in as user (and use client_id)."""
    args = ["-u", user, "-P", password(user)]
    return args + (["-i", client_id] if client_id else [])


def erl_libs():
    """Where Debian installs ejabberd's Erlang applications (arch-dependent)."""
    found = sorted(glob.glob("/usr/lib/*/ejabberd-*/ebin"))
    if not found:
        raise CommandError("ejabberd is not installed (scripts/setup installs it)")
    return os.path.dirname(os.path.dirname(found[-1]))


def _no_notify():
    """The test's environment without NOTIFY_SOCKET: a broker started by a test under a
    systemd service (a CI runner) must not send that service's manager READY=1."""
    return {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}


class Epmd:
    """A private Erlang port mapper daemon on 127.0.0.1 and a free port."""

    def __init__(self, directory, wrapper=()):
        self.port = free_port()
        self.wrapper = list(wrapper)
        self.proc = Proc("epmd", self.wrapper + ["epmd", "-port", str(self.port),
                                                 "-address", "127.0.0.1"],
                         os.path.join(directory, "epmd.log"))
        wait_until(lambda: not self.proc.alive() or port_open(self.port), 10,
                   "epmd to listen", 0.05)
        if not self.proc.alive():
            raise CommandError("epmd exited: " + self.proc.log_text()[-1000:])
        at_exit(self.stop)

    def env(self):
        return {"ERL_EPMD_PORT": str(self.port)}

    def stop(self):
        self.proc.stop()


# The per-device ACL of docs/fleet.md ("ejabberd"), as mod_mqtt options. access_publish and
# access_subscribe list topic filters; %u is the MQTT user name. A topic is allowed when
# one matching filter's access rule allows the user, so the backend's rule comes second.
EJABBERD_ACL = """\
acl:
  backend:
    user:
      - backend
      - ops
access_rules:
  mqtt_backend:
    allow: backend
  mqtt_device:
    allow: all
modules:
  mod_mqtt:
    session_expiry: 1 hour
    access_publish:
      "cellagent/%u/#": mqtt_device
      "cellagent/#": mqtt_backend
    access_subscribe:
      "cellagent/%u/#": mqtt_device
      "cellagent/#": mqtt_backend
"""


class Ejabberd:
    """One private ejabberd node with mod_mqtt.

    name: the node's short name (node NAME@127.0.0.1, files under directory/NAME);
    mqtt_host/mqtt_port: its MQTT listener (a free port on 127.0.0.1 unless given);
    cookie: the cluster's shared secret (nodes that join each other share it); wrapper:
    argv prefix (a namespace) for the node and its control clients."""

    def __init__(self, directory, epmd, name="ejabberd", mqtt_host="127.0.0.1",
                 mqtt_port=None, cookie=None, wrapper=()):
        self.name = name
        self.node = name + "@127.0.0.1"
        self.epmd = epmd
        self.host = mqtt_host
        self.port = mqtt_port or free_port()
        self.cookie = cookie or secrets.token_hex(16)
        self.wrapper = list(wrapper)
        self.dir = os.path.join(directory, name)
        self.spool = os.path.join(self.dir, "spool")
        os.makedirs(self.spool, exist_ok=True)
        self.conf = os.path.join(self.dir, "ejabberd.yml")
        self.log = os.path.join(self.dir, "ejabberd.log")
        self.proc = None
        self._ctl = 0
        at_exit(self.kill)

    def _env(self):
        return dict(_no_notify(), EJABBERD_CONFIG_PATH=self.conf, EJABBERD_LOG_PATH=self.log,
                    ERL_LIBS=erl_libs(), ERL_CRASH_DUMP=os.path.join(self.dir, "erl_crash.dump"),
                    ERL_CRASH_DUMP_BYTES="0", HOME=self.dir, **self.epmd.env())

    def _erl(self, node, *args):
        return (self.wrapper + ["erl", "-name", node, "-setcookie", self.cookie,
                                "-start_epmd", "false", "-kernel", "inet_dist_use_interface",
                                "{127,0,0,1}", "-noinput"] + list(args))

    def start(self, timeout=30):
        with open(self.conf, "w") as f:
            f.write("loglevel: info\nhosts:\n  - localhost\ncertfiles: []\nacme:\n  auto: false\n"
                    "auth_method: internal\nauth_password_format: plain\n"
                    "listen:\n  -\n"
                    f"    port: {self.port}\n    ip: \"{self.host}\"\n    module: mod_mqtt\n")
            f.write(EJABBERD_ACL)
        self.proc = Proc(self.name, self._erl(self.node, "+K", "true", "-mnesia", "dir",
                                              '"%s"' % self.spool, "-s", "ejabberd"),
                         os.path.join(self.dir, "erl.out"), env=self._env())
        wait_until(lambda: not self.proc.alive() or self.started(), timeout,
                   f"ejabberd {self.node} to start", 0.1)
        if not self.proc.alive():
            raise CommandError(f"ejabberd {self.node} exited: " + self.log_text()[-2000:])
        return self

    def started(self):
        return "is started in the node" in self.log_text() and "Start accepting TCP" in \
            self.log_text() and self.listening()

    def listening(self):
        if not self.wrapper:
            return port_open(self.port, self.host)
        return run(self.wrapper + ["python3", "-c", "import socket;socket.create_connection"
                                   "(('%s',%d),0.5)" % (self.host, self.port)],
                   check=False).returncode == 0

    def rpc(self, expr, timeout=30):
        """Evaluate an Erlang expression on this node (N is bound to the node's name);
        return what it printed. A hidden control node, like ejabberdctl's."""
        self._ctl += 1
        code = ("N = '%s', R = (%s), io:format(\"~p~n\", [R]), halt()." % (self.node, expr))
        r = run(self._erl(f"ctl{self._ctl}-{self.name}@127.0.0.1", "-hidden", "-eval", code),
                env=self._env(), timeout=timeout)
        return r.stdout.strip()

    def register(self, users=USERS):
        """Register each user (password: password(user)) on the node's virtual host."""
        terms = ",".join('{<<"%s">>,<<"%s">>}' % (u, password(u)) for u in users)
        out = self.rpc("[rpc:call(N, ejabberd_auth, try_register, [U, <<\"localhost\">>, P])"
                       " || {U, P} <- [%s]]" % terms)
        if out.replace(" ", "") != "[" + ",".join(["ok"] * len(users)) + "]":
            raise CommandError(f"registering {users} on {self.node}: {out}")

    def join(self, other, timeout=30):
        """Join other's cluster (ejabberdctl join_cluster); return when both list both."""
        out = self.rpc("rpc:call(N, ejabberd_admin, join_cluster, [<<\"%s\">>])" % other.node)
        if out != "ok" and not out.startswith("{ok,"):  # 24.12 adds a message
            raise CommandError(f"{self.node} join_cluster {other.node}: {out}")
        want = sorted([self.node, other.node])

        def both():  # Mnesia's view: ejabberd itself restarts meanwhile
            try:
                nodes = self.rpc("lists:sort(rpc:call(N, mnesia, system_info, [running_db_nodes]))")
            except CommandError:
                return False
            return nodes == "[%s]" % ",".join("'%s'" % n for n in want) and self.started_again()
        wait_until(both, timeout, f"{self.node} in a cluster with {other.node}", 0.2)

    def started_again(self):
        # join_cluster restarts ejabberd on the joining node: started twice, listening.
        return self.log_text().count("is started in the node") >= 2 and self.listening()

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stop(self, timeout=20):
        """A clean stop: SIGTERM, which the Erlang runtime turns into init:stop()."""
        if self.proc:
            self.proc.stop(timeout=timeout)
        self.proc = None

    def kill(self):
        if self.proc:
            self.proc.stop(9)
        self.proc = None


def package_version(package):
    """A Debian package's upstream version as a tuple of numbers: (3, 10, 8)."""
    v = run(["dpkg-query", "-W", "-f", "${Version}", package]).stdout
    v = v.split(":", 1)[-1].split("-", 1)[0]
    return tuple(int(x) for x in re.findall(r"\d+", v)[:3])


def rabbit_password_hash(pw):
    """rabbit_password_hashing_sha256: base64(salt + sha256(salt + password))."""
    salt = secrets.token_bytes(4)
    return base64.b64encode(salt + hashlib.sha256(salt + pw.encode()).digest()).decode()


# The per-device ACL of docs/fleet.md ("RabbitMQ"), as topic permissions on amq.topic (the
# plugin's exchange): an MQTT topic is an AMQP routing key with "/" as ".", and {username}
# is expanded. Resource permissions are for the queues the plugin declares per client.
def rabbitmq_definitions(users=USERS):
    fleet = [u for u in users if u in ("backend", "ops")]
    return {
        "vhosts": [{"name": "/"}],
        "users": [{"name": u, "password_hash": rabbit_password_hash(password(u)),
                   "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ""}
                  for u in users],
        "permissions": [{"user": u, "vhost": "/", "configure": "^mqtt-subscription-",
                         "write": "^(mqtt-subscription-|amq\\.topic$)",
                         "read": "^(mqtt-subscription-|amq\\.topic$)"} for u in users],
        "topic_permissions": [
            {"user": u, "vhost": "/", "exchange": "amq.topic",
             "write": "^cellagent\\." if u in fleet else "^cellagent\\.{username}\\.",
             "read": "^cellagent\\." if u in fleet else "^cellagent\\.{username}\\."}
            for u in users],
    }


class RabbitMQ:
    """One private RabbitMQ node with the MQTT plugin (3.1.1 only in Debian 12's 3.10)."""

    def __init__(self, directory, epmd, name="rabbit", mqtt_port=None, wrapper=()):
        self.name = name
        self.node = name + "@localhost"
        self.epmd = epmd
        self.host = "127.0.0.1"
        self.port = mqtt_port or free_port()
        self.dist_port = free_port()
        self.wrapper = list(wrapper)
        self.dir = os.path.join(directory, name)
        self.home = os.path.join(self.dir, "home")
        os.makedirs(self.home, exist_ok=True)
        self.logdir = os.path.join(self.dir, "log")
        self.log = os.path.join(self.logdir, self.node + ".log")
        self.proc = None
        at_exit(self.kill)

    def start(self, timeout=90):
        defs = os.path.join(self.dir, "definitions.json")
        with open(defs, "w") as f:
            json.dump(rabbitmq_definitions(), f, indent=1)
        conf = os.path.join(self.dir, "rabbitmq.conf")
        with open(conf, "w") as f:
            f.write("listeners.tcp = none\n"  # no AMQP listener: MQTT only
                    f"mqtt.listeners.tcp.default = {self.host}:{self.port}\n"
                    "mqtt.allow_anonymous = false\n"
                    f"load_definitions = {defs}\n"
                    "log.console = false\nlog.file.level = info\n")
        plugins = os.path.join(self.dir, "enabled_plugins")
        with open(plugins, "w") as f:
            f.write("[rabbitmq_mqtt].\n")
        cookie = os.path.join(self.home, ".erlang.cookie")
        with open(cookie, "w") as f:
            f.write(secrets.token_hex(16))
        os.chmod(cookie, 0o600)
        # RUNNING_UNDER_SYSTEMD: the start script then execs the VM (else it stays as a
        # shell in front of it, and a SIGKILL to that shell leaves the node running).
        env = dict(_no_notify(), RUNNING_UNDER_SYSTEMD="true", HOME=self.home,
                   RABBITMQ_CONF_ENV_FILE="/dev/null",
                   RABBITMQ_NODENAME=self.node, RABBITMQ_CONFIG_FILE=conf,
                   RABBITMQ_ENABLED_PLUGINS_FILE=plugins,
                   RABBITMQ_MNESIA_BASE=os.path.join(self.dir, "mnesia"),
                   RABBITMQ_LOG_BASE=self.logdir, RABBITMQ_DIST_PORT=str(self.dist_port),
                   RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=(
                       "-kernel inet_dist_use_interface {127,0,0,1} -start_epmd false"),
                   **self.epmd.env())
        self.proc = Proc(self.name, self.wrapper + ["/usr/lib/rabbitmq/bin/rabbitmq-server"],
                         os.path.join(self.dir, "rabbitmq-server.out"), env=env)
        # The MQTT listener opens before the definitions (users) are loaded: wait for the end.
        wait_until(lambda: not self.proc.alive() or "Server startup complete" in self.log_text(),
                   timeout, f"RabbitMQ {self.node} to start", 0.2)
        if not self.proc.alive():
            raise CommandError(f"RabbitMQ {self.node} exited: " + self.log_text()[-2000:])
        return self

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stop(self, timeout=30):
        if self.proc:
            self.proc.stop(timeout=timeout)
        self.proc = None

    def kill(self):
        if self.proc:
            self.proc.stop(9)
        self.proc = None


BASE = "cellagent/dev1"


def online(s):
    return s.get("state") == "online"


def offline(s):
    return s == {"state": "offline"}


class Scenario:
    """The agent dev1 against one broker (anything with .host and .port), as the fleet runs
    it: user dev1 with a password file, the backend as users backend (subscriber) and ops
    (publisher), dev2 as the other device. protocol: the agent's [mqtt] protocol. No modem
    (an empty system bus): sms/out answers queued, the request waiting in the spool.

    run() does the common part and asserts what every broker must do; the differences
    (what dev2's refused publish looked like, whether dev2 can take dev1's client id) are
    left in attributes for the test to assert."""

    def __init__(self, directory, broker, protocol):
        self.d = directory
        os.makedirs(directory, exist_ok=True)
        self.broker = broker
        self.protocol = protocol
        self.cli_protocol = "mqttv5" if protocol == "5" else "mqttv311"
        self.env = {"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=" + os.path.join(directory, "no-bus")}
        pwfile = os.path.join(directory, "dev1.pw")
        with open(pwfile, "w") as f:
            f.write(password("dev1") + "\n")
        os.chmod(pwfile, 0o600)
        self.settings = {"mqtt": {"host": broker.host, "port": broker.port, "username": "dev1",
                                  "password-file": pwfile, "protocol": protocol,
                                  "keepalive": 10}}
        self.agents = 0

    def agent(self):
        self.agents += 1
        a = Agent(self.d, dict(self.settings), env=self.env, name=f"agent-{self.protocol}-{self.agents}")
        on_failure(a.dump_log)
        return a.start()

    def pub(self, topic, payload, user="ops", retain=False):
        publish(self.broker.port, topic, payload, host=self.broker.host, retain=retain,
                extra_args=["-V", self.cli_protocol] + creds(user))

    def client(self, user, *args, timeout=15):
        """mosquitto_pub/_sub as user: the CompletedProcess (it may fail: refusals)."""
        return subprocess.run([args[0], "-h", self.broker.host, "-p", str(self.broker.port),
                               "-V", self.cli_protocol] + creds(user) + list(args[1:]),
                              capture_output=True, text=True, timeout=timeout)

    def retained(self, topic, user="ops", timeout=3):
        return retained(self.broker.port, topic, timeout=timeout, host=self.broker.host,
                        extra_args=creds(user))

    def run(self):
        b = self.broker
        sub = Subscriber(b.port, f"{BASE}/#", host=b.host, protocol=self.cli_protocol,
                         extra_args=creds("backend", "backend-sub-" + self.protocol))
        assert sub.proc.poll() is None, "the backend could not subscribe: " + \
            sub.proc.stderr.read()
        a = self.first_agent = self.agent()
        # Status: retained online (a fresh client reads it), live to the backend.
        s = wait_retained(b.port, f"{BASE}/status", online, timeout=scaled(15), host=b.host,
                          extra_args=creds("ops"))
        assert s["version"] and s["started_at"].endswith("Z"), s
        a.wait_log(r'connected to %s:%d as "dev1" \(MQTT %s' % (
            re.escape(b.host), b.port, re.escape(self.protocol)))
        sub.wait_for(f"{BASE}/status", lambda m: m["json"] and online(m["json"]), 10)
        a.wait_log(r'subscribed to "cellagent/dev1/cmd/\+"')
        a.wait_log(r'subscribed to "cellagent/dev1/sms/out"')

        # Telemetry (no modem: absent), retained.
        t = sub.wait_for(f"{BASE}/telemetry", lambda m: m["json"] is not None, 15)[-1]["json"]
        assert t["modem"]["state"] == "absent" and t["ts"].endswith("Z"), t
        assert self.retained(f"{BASE}/telemetry") is not None, "telemetry is not retained"

        # A command round trip, and telemetry on request.
        self.pub(f"{BASE}/cmd/ping", '{"id":"ping-1"}')
        r = sub.wait_for(f"{BASE}/cmd/ping/result", lambda m: (m["json"] or {}).get("id") == "ping-1",
                         10)[-1]["json"]
        assert r["ok"] is True and r["result"]["pong"] is True, r
        # A reconnect while running (cmd/mqtt-reconnect): the broker resumes the session.
        n_conn = a.log_text().count("] connected to")
        self.pub(f"{BASE}/cmd/mqtt-reconnect", '{"id":"reconnect-1"}')
        r = sub.wait_for(f"{BASE}/cmd/mqtt-reconnect/result",
                         lambda m: (m["json"] or {}).get("id") == "reconnect-1", 10)[-1]["json"]
        assert r["ok"] is True, r
        wait_until(lambda: a.log_text().count("] connected to") > n_conn, scaled(15),
                   "the agent to reconnect")
        assert a.log_text().rsplit("] connected to", 1)[1].split("\n", 1)[0].endswith(
            "session resumed)"), "no session resumed after cmd/mqtt-reconnect"
        n_tel = len(sub.matching(f"{BASE}/telemetry"))
        self.pub(f"{BASE}/cmd/telemetry", '{"id":"tel-1"}')
        sub.wait_for(f"{BASE}/cmd/telemetry/result", lambda m: (m["json"] or {}).get("id") == "tel-1", 10)
        sub.wait_for(f"{BASE}/telemetry", None, 10, count=n_tel + 1)

        # sms/out and its result: queued (spooled until a modem is registered).
        self.pub(f"{BASE}/sms/out", '{"id":"sms-1","to":"+15550001234","text":"interop"}')
        r = sub.wait_for(f"{BASE}/sms/out/result", lambda m: (m["json"] or {}).get("id") == "sms-1",
                         10)[-1]["json"]
        assert r["status"] == "queued" and r["parts"] == 1, r
        self.pub(f"{BASE}/sms/out", '{"id":"sms-2","to":"not a number","text":"x"}')
        r = sub.wait_for(f"{BASE}/sms/out/result", lambda m: (m["json"] or {}).get("id") == "sms-2",
                         10)[-1]["json"]
        assert r["status"] == "rejected" and r["error"].startswith("to:"), r

        # The per-device ACL: dev2 cannot publish into dev1's subtree (nothing reaches dev1
        # or the backend), nor read dev1's retained status.
        self.evil = self.client("dev2", "mosquitto_pub", "-d", "-q", "1", "-t", f"{BASE}/sms/out",
                                "-m", '{"id":"evil-1","to":"+15550000666","text":"x"}')
        print("dev2 publishing into dev1's sms/out:", self.evil.returncode,
              " / ".join(self.evil.stdout.splitlines() + self.evil.stderr.splitlines()))
        self.pub(f"{BASE}/sms/out", '{"id":"marker-1","to":"+15550001234","text":"after"}')
        sub.wait_for(f"{BASE}/sms/out/result", lambda m: (m["json"] or {}).get("id") == "marker-1", 10)
        assert not sub.matching(pred=lambda m: "evil-1" in m.get("payload", "")), \
            "dev2's publish into dev1's subtree was delivered"
        assert "evil-1" not in a.log_text()
        assert self.retained(f"{BASE}/status", user="dev2", timeout=2) is None, \
            "dev2 read dev1's retained status"
        assert self.retained(f"{BASE}/status", user="ops") is not None
        # dev2 connecting with dev1's client id: does the broker throw dev1 off?
        before = a.log_text().count("disconnected from")
        hold_client_id(self.broker.host, self.broker.port, "dev1", "dev2", password("dev2"),
                       protocol="5" if self.cli_protocol == "mqttv5" else "3.1.1", seconds=2)
        self.takeover = a.log_text().count("disconnected from") > before
        if self.takeover:  # dev2's client has gone: the agent is back for good, within its
            # backoff (a broker closing a stable connection: up to 30 s, docs/mqtt.md)
            wait_until(lambda: (lambda t: t.rfind("] connected to") > t.rfind("] disconnected from"))(
                a.log_text()), scaled(45), "the agent to reconnect after the takeover")

        # Last Will: kill -9, the broker publishes the retained offline.
        a.kill()
        sub.wait_for(f"{BASE}/status", lambda m: m["json"] and offline(m["json"]), 15)
        wait_retained(b.port, f"{BASE}/status", offline, timeout=10, host=b.host,
                      extra_args=creds("ops"))
        # A command while dev1 is away waits in its persistent session.
        self.pub(f"{BASE}/cmd/ping", '{"id":"while-away"}')
        a2 = self.agent()
        r = sub.wait_for(f"{BASE}/cmd/ping/result", lambda m: (m["json"] or {}).get("id") == "while-away",
                         20)[-1]["json"]
        assert r["ok"] is True, r
        a2.wait_log(r"session resumed\)")
        wait_retained(b.port, f"{BASE}/status", online, timeout=10, host=b.host,
                      extra_args=creds("ops"))
        # A repeated sms/out id gets the answer kept for it, even after the restart.
        n = len(sub.matching(f"{BASE}/sms/out/result", lambda m: (m["json"] or {}).get("id") == "sms-1"))
        self.pub(f"{BASE}/sms/out", '{"id":"sms-1","to":"+15550001234","text":"interop"}')
        r = sub.wait_for(f"{BASE}/sms/out/result", lambda m: (m["json"] or {}).get("id") == "sms-1",
                         10, count=n + 1)[-1]["json"]
        assert r["status"] == "queued", r

        # Clean stop: offline published by the agent and acknowledged, exit 0.
        rc, secs = a2.stop(signal.SIGTERM, timeout=10)
        assert rc == 0, f"exit code {rc}"
        assert "offline acknowledged" in a2.log_text()
        wait_retained(b.port, f"{BASE}/status", offline, timeout=10, host=b.host,
                      extra_args=creds("ops"))
        # Done: a client id is the broker's (RabbitMQ), so the next scenario's subscriber
        # must not meet this one.
        sub.close()
        return self
