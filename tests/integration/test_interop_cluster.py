#!/usr/bin/python3
"""Two ejabberd nodes clustered on one machine behind one broker name, and the agent
failing over between them (docs/fleet.md, "A broker cluster").

The test runs in private network and mount namespaces (root): loopback only, and its own
/etc/hosts in which broker.test is 127.0.0.2 and 127.0.0.3. Node A's MQTT listener is on
the first address, node B's on the second, the same port; the agent is configured with
host=broker.test and tries every address of the name (RFC 8305). The nodes share a private
epmd and cookie; B joins A's cluster (ejabberdctl join_cluster).

- Live messages cross the cluster: the agent's status reaches a subscriber on the other
  node, and an sms/out published on the other node reaches the agent (result queued).
- Retained messages do not cross in ejabberd 23.01: a node serves the retained messages
  published through it (its index of retained topics is local, built from the shared table
  at start), so a fresh reader on the other node finds no status. Asserted as such: a
  backend reads presence on the node a device is connected to, or keeps it from the live
  messages.
- The node the agent is connected to stops (SIGTERM, a clean stop): the agent reconnects
  to the other node within the delay it announced, in a new session (sessions live in the
  node that held the connection), subscribes again, and its online status is retained on
  the surviving node. An sms/out and a command published there reach it.
- The agent killed (-9): the surviving node publishes its Last Will, retained offline."""
# ctest: labels=integration;interop timeout=180
import os
import re
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402
from cellagent_test import interop  # noqa: E402
from cellagent_test.interop import BASE, creds, offline, online  # noqa: E402

NS_ENV = "CA_CLUSTER_TEST_IN_NAMESPACE"
NAME = "broker.test"
ADDRS = ["127.0.0.2", "127.0.0.3"]


def enter_namespace():
    """Re-run this file in private network and mount namespaces; never returns."""
    env = dict(os.environ, **{NS_ENV: "1"})
    sys.stdout.flush()
    os.execvpe("unshare", ["unshare", "--net", "--mount", "--propagation", "private", "--",
                           sys.executable, os.path.abspath(__file__)], env)


def resolved(name):
    seen = []
    for ai in socket.getaddrinfo(name, 1883, socket.AF_INET, socket.SOCK_STREAM):
        if ai[4][0] not in seen:
            seen.append(ai[4][0])
    return seen


def log_time(line):
    """Seconds since midnight of an agent log line (HH:MM:SS.mmm first)."""
    h, m, s = line.split()[0].split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def test():
    ct.need("erl", "epmd", "mosquitto_sub", "mosquitto_pub", "ip")
    try:
        interop.erl_libs()
    except ct.CommandError as e:
        ct.skip(str(e))
    t_start = time.monotonic()
    d = ct.run_dir()
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=10)
    hosts = os.path.join(d, "hosts")
    with open(hosts, "w") as f:
        f.write("127.0.0.1 localhost\n" + "".join(f"{a} {NAME}\n" for a in ADDRS))
    subprocess.run(["mount", "--bind", hosts, "/etc/hosts"], check=True, timeout=10)
    assert resolved(NAME) == ADDRS, f"{NAME} resolves to {resolved(NAME)} here"

    epmd = interop.Epmd(d)
    port = ct.free_port()
    a = interop.Ejabberd(d, epmd, name="node-a", mqtt_host=ADDRS[0], mqtt_port=port).start()
    ct.on_failure(lambda: print("---- node A\n" + a.log_text()[-3000:]))
    a.register()
    b = interop.Ejabberd(d, epmd, name="node-b", mqtt_host=ADDRS[1], mqtt_port=port,
                         cookie=a.cookie).start()
    ct.on_failure(lambda: print("---- node B\n" + b.log_text()[-3000:]))
    b.join(a)
    print(f"cluster {a.node} + {b.node} up in {time.monotonic() - t_start:.1f} s")
    nodes = {ADDRS[0]: a, ADDRS[1]: b}

    def retained(node, topic, timeout=3):
        return ct.mqtt.retained(port, topic, timeout=timeout, host=node.host,
                                extra_args=creds("ops"))

    def pub(node, topic, payload):
        ct.publish(port, topic, payload, host=node.host, extra_args=creds("ops"))

    subs = {n: ct.Subscriber(port, f"{BASE}/#", host=n.host,
                             extra_args=creds("backend", "backend-" + n.name))
            for n in (a, b)}
    sc = interop.Scenario(d, a, "5")
    sc.settings["mqtt"]["host"] = NAME
    agent = sc.agent()
    agent.wait_log(r'connected to broker\.test:%d as "dev1" \(MQTT 5, session new\)' % port, 15)
    first_addr = re.findall(r"connecting to broker\.test:%d \(address ([0-9.]+)," % port,
                            agent.log_text())[-1]
    first = nodes[first_addr]
    other = b if first is a else a
    print(f"agent connected to {first.node} ({first_addr})")

    # Live messages cross the cluster, both ways.
    subs[other].wait_for(f"{BASE}/status", lambda m: m["json"] and online(m["json"]), 10)
    agent.wait_log(r'subscribed to "cellagent/dev1/sms/out"')
    pub(other, f"{BASE}/sms/out", '{"id":"via-other","to":"+15550001234","text":"cluster"}')
    r = subs[other].wait_for(f"{BASE}/sms/out/result",
                             lambda m: (m["json"] or {}).get("id") == "via-other", 10)[-1]["json"]
    assert r["status"] == "queued", r
    # Retained messages do not: only the node the status was published through has it.
    assert online(retained(first, f"{BASE}/status"))
    assert retained(other, f"{BASE}/status", timeout=2) is None, \
        "the other node serves the retained status now: update docs/fleet.md"

    # Stop the node the agent is connected to: the agent moves to the other one.
    n_disc = agent.log_text().count("] disconnected from")
    t0 = time.monotonic()
    first.stop()
    print(f"{first.node} stopped in {time.monotonic() - t0:.1f} s")
    agent.wait_log(r'connecting to broker\.test:%d \(address %s, MQTT 5\)(.*\n)*.*connected to '
                   r'broker\.test:%d as "dev1" \(MQTT 5, session new\)' % (port, re.escape(other.host), port),
                   ct.scaled(30))
    took = time.monotonic() - t0
    lines = agent.log_text().splitlines()
    i_disc = [i for i, l in enumerate(lines) if "] disconnected from" in l][n_disc]
    i_conn = next(i for i, l in enumerate(lines) if i > i_disc and "] connected to" in l)
    delays = [float(x) for x in re.findall(r"reconnecting to \S+ in ([0-9.]+) s",
                                           "\n".join(lines[i_disc:i_conn]))]
    gap = log_time(lines[i_conn]) - log_time(lines[i_disc])
    assert delays, "no announced reconnect delay"
    assert gap <= sum(delays) + 2.0, f"reconnected {gap:.1f} s after the disconnect, delays {delays}"
    print(f"failover: reconnected to {other.node} {gap:.2f} s after the disconnect "
          f"(announced delays {delays}; {took:.1f} s after the stop began)")
    agent.wait_log(r'subscribed to "cellagent/dev1/sms/out"(.*\n)*.*subscribed to "cellagent/dev1/sms/out"')

    # The surviving node: online retained, an sms/out and a command reach the agent.
    sub = subs[other]
    ct.mqtt.wait_retained(port, f"{BASE}/status", online, timeout=10, host=other.host,
                          extra_args=creds("ops"))
    pub(other, f"{BASE}/sms/out", '{"id":"after-failover","to":"+15550001234","text":"x"}')
    r = sub.wait_for(f"{BASE}/sms/out/result",
                     lambda m: (m["json"] or {}).get("id") == "after-failover", 10)[-1]["json"]
    assert r["status"] == "queued", r
    pub(other, f"{BASE}/cmd/ping", '{"id":"ping-after"}')
    r = sub.wait_for(f"{BASE}/cmd/ping/result",
                     lambda m: (m["json"] or {}).get("id") == "ping-after", 10)[-1]["json"]
    assert r["ok"] is True, r
    statuses = [m["json"] for m in sub.matching(f"{BASE}/status")]
    print("status seen on the surviving node:", statuses)
    assert online(statuses[-1]), statuses
    assert online(retained(other, f"{BASE}/status")), "the retained status is not online"

    # Last Will on the surviving node.
    agent.kill()
    sub.wait_for(f"{BASE}/status", lambda m: m["json"] and offline(m["json"]), 15)
    ct.mqtt.wait_retained(port, f"{BASE}/status", offline, timeout=10, host=other.host,
                          extra_args=creds("ops"))
    other.stop()
    print(f"cluster failover: passed in {time.monotonic() - t_start:.1f} s")


if __name__ == "__main__":
    if os.environ.get(NS_ENV) != "1":
        if os.geteuid() != 0:
            ct.skip("needs root for private network and mount namespaces")
        enter_namespace()
    ct.main(test)
