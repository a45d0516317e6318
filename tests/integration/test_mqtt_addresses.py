#!/usr/bin/python3
"""A broker host with several addresses: every address is tried (RFC 8305), and TLS still
checks the certificate against the configured name.

The test runs in a private network namespace (loopback only, addresses of its own) and a
private mount namespace whose /etc/hosts it writes; nothing touches the host's network.
The broker listens on 127.0.0.1 only. Each case must come online within 10 s, a third of
the agent's 30 s connect timeout, which is what one unusable first address used to cost on
every attempt:
- the standard Debian /etc/hosts: `localhost` is ::1, then 127.0.0.1 (plain MQTT);
- `localhost` is first an IPv6 address whose SYNs are dropped, then 127.0.0.1, over TLS
  with a certificate for localhost (host name verification stays on the name);
- `broker.test` is first an IPv4 address whose SYNs are dropped, then another IPv4 address
  the broker listens on (plain: the agent hands libmosquitto the address that answered)."""
# ctest: labels=integration;mqtt timeout=180
import os
import re
import socket
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402

NS_ENV = "CA_ADDRESSES_TEST_IN_NAMESPACE"
DROP6 = "2001:db8::dead"
DROP4 = "192.0.2.99"
GOOD4 = "198.51.100.7"  # global like DROP4, so RFC 6724 keeps the /etc/hosts order


def enter_namespace():
    """Re-run this file in private network and mount namespaces; never returns."""
    env = dict(os.environ, **{NS_ENV: "1"})
    sys.stdout.flush()
    os.execvpe("unshare", ["unshare", "--net", "--mount", "--propagation", "private", "--",
                           sys.executable, os.path.abspath(__file__)], env)


def sh(*argv, stdin=None):
    subprocess.run(argv, check=True, timeout=10, input=stdin, text=True)


def setup_network():
    """Loopback up, the two addresses that drop SYNs (on lo, so they are routed here)."""
    sh("ip", "link", "set", "lo", "up")
    sh("ip", "addr", "add", DROP6 + "/128", "dev", "lo", "nodad")
    sh("ip", "addr", "add", DROP4 + "/32", "dev", "lo")
    sh("ip", "addr", "add", GOOD4 + "/32", "dev", "lo")
    sh("nft", "-f", "-", stdin=(
        "table inet catest {\n"
        "  chain out {\n"
        "    type filter hook output priority 0;\n"
        f"    ip6 daddr {DROP6} tcp flags syn drop\n"
        f"    ip daddr {DROP4} tcp flags syn drop\n"
        "  }\n"
        "}\n"))


def resolved(name):
    seen = []
    for ai in socket.getaddrinfo(name, 1883, type=socket.SOCK_STREAM):
        if ai[4][0] not in seen:
            seen.append(ai[4][0])
    return seen


def online(s):
    return s.get("state") == "online"


def test():
    ct.need("mosquitto", "mosquitto_sub", "openssl", "nft", "ip")
    d = ct.run_dir()
    setup_network()
    hosts = os.path.join(d, "hosts")
    with open(hosts, "w") as f:
        f.write("127.0.0.1 localhost\n")
    sh("mount", "--bind", hosts, "/etc/hosts")

    def write_hosts(text):
        with open(hosts, "w") as f:  # in place: the bind mount shows the new text
            f.write(text)

    env = {"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=" + os.path.join(d, "no-bus")}
    pki = ct.mqtt.make_pki(os.path.join(d, "pki"))
    tls_port = ct.free_port()
    good4_port = ct.free_port()
    broker = ct.Broker(d, extra_conf=(
        "user root\n"
        f"listener {tls_port} 127.0.0.1\n"
        f"cafile {pki['ca']}\ncertfile {pki['server_crt']}\nkeyfile {pki['server_key']}\n"
        "require_certificate true\nuse_identity_as_username true\n"
        f"listener {good4_port} {GOOD4}\nallow_anonymous true\n")).start()
    ct.on_failure(lambda: print(open(broker.log).read()[-3000:]))

    cases = [
        ("debian-hosts", "::1 localhost ip6-localhost ip6-loopback\n127.0.0.1 localhost\n",
         "localhost", ["::1", "127.0.0.1"],
         {"host": "localhost", "port": broker.port}),
        ("drop6-tls", f"{DROP6} localhost\n127.0.0.1 localhost\n",
         "localhost", [DROP6, "127.0.0.1"],
         {"host": "localhost", "port": tls_port, "tls": True, "ca-file": pki["ca"],
          "cert-file": pki["dev1_crt"], "key-file": pki["dev1_key"]}),
        ("drop4", f"{DROP4} broker.test\n{GOOD4} broker.test\n",
         "broker.test", [DROP4, GOOD4],
         {"host": "broker.test", "port": good4_port}),
    ]
    for name, text, host, order, mqtt in cases:
        write_hosts(text)
        got = resolved(host)
        assert got == order, f"{name}: {host} resolves to {got} here, the case needs {order}"
        device = "dev1" if mqtt.get("tls") else "dev-" + name  # TLS: the certificate's name
        a = ct.Agent(d, {"agent": {"device-id": device}, "mqtt": dict(mqtt)}, env=env,
                     name="agent-" + name, wrapper=ct.mqtt.WRAPPER)
        ct.on_failure(a.dump_log)
        a.start()
        ct.mqtt.wait_retained(broker.port, f"cellagent/{device}/status", online,
                              timeout=ct.scaled(10))
        a.wait_log(r"has 2 addresses; trying them in turn")
        a.wait_log(r"connecting to %s:%d \(address %s, MQTT 5%s\)"
                   % (re.escape(host), mqtt["port"], re.escape(order[1]),
                      ", TLS" if mqtt.get("tls") else ""))
        rc, _ = a.stop()
        assert rc == 0, f"{name}: agent exit code {rc}"
        print(f"{name}: {host} = {' then '.join(order)}: online over {order[1]}")


if __name__ == "__main__":
    if os.environ.get(NS_ENV) != "1":
        if os.geteuid() != 0:
            ct.skip("needs root for private network and mount namespaces")
        enter_namespace()
    ct.main(test)
