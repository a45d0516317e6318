#!/usr/bin/python3
# ctest: timeout=3600
"""Benchmark: the agent's own data cost on the cellular interface, in bytes a month.

The ECM lab (docs/lab.md): real NetworkManager 1.42 and ModemManager 1.20, the emulated
Fibocom L610 whose data goes over usb0, a veth to the "operator" namespace, which routes to
the lab's "internet". The broker (mosquitto) listens there with TLS (8883, a certificate for
broker.lab made by the bench), so every byte between the agent and the broker crosses usb0.
The figure is the kernel's counters of usb0 in the device namespace (rx_bytes + tx_bytes):
every IP packet with its Ethernet header, as the usage accounting counts them.

Runs, one after the other, on one lab:
  baseline  mosquitto_sub with TLS, MQTT 5, keepalive 60 s, subscribed to one topic: the
            cost of a bare idle MQTT connection, in the same run.
  defaults  the agent with every default ([economy] mode=auto; NetworkManager guesses a
            modem device metered, so economy engages), health probes aimed at the lab's
            internet (the defaults' 1.1.1.1 and 9.9.9.9 are not in the lab: same kinds,
            same cost), idle, then with one signal change a minute (CSQ 10 <-> 22: 38
            points, beyond both deadbands).
  off       the same with [economy] mode=off: the normal figures on a metered link.

Extrapolation to a 30-day month (2 592 000 s), per run (docs/benchmarks.md, "Data cost"):
  - what recurs within the window (probe rounds, telemetry every 60 s, usage every 60 s,
    PINGREQs) is scaled linearly: bytes / window x month;
  - what recurs less often than the window (economy: telemetry, usage and link every 6 h,
    signal-driven telemetry at most hourly; off: link hourly) is added from its count per
    month times its measured cost on the wire: the overhead of one QoS 1 publish (TLS record,
    TCP/IP, PUBACK, ACKs) measured with cmd/telemetry against cmd/ping, plus its topic and
    payload as the broker delivered it, plus the ARP exchange a wake of the link causes
    (ARP_PER_WAKE);
  - PINGREQs in economy: month / (keepalive + 1) times the measured cost of one (the idle
    window's bytes divided by the PINGREQs the broker logged in it).
Environment: CA_BENCH_DATA_SECONDS scales the windows (default 1.0).
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402
import cellagent_test.bench  # noqa: E402
import cellagent_test.lab  # noqa: E402
import cellagent_test.mqtt  # noqa: E402
import cellagent_test.uplink  # noqa: E402

MONTH = 30 * 86400
MB = 1e6
SCALE = float(os.environ.get("CA_BENCH_DATA_SECONDS", "1.0"))
BASE = "cellagent/dev1"
TLS_PORT = 8883
PROBES = "icmp:%s;dns:%s;tcp:mqtt" % (ct.lab.INTERNET_PROBE, ct.lab.INTERNET_DNS)
TARGET_DEFAULTS = 20.0
TARGET_ECONOMY = 5.0
# Economy's defaults (agent/core/config-keys.c), for the parts added per month.
ECONOMY = {"telemetry-interval": 21600, "min-spacing": 3600, "keepalive": 280,
           "link-interval": 21600, "usage-interval": 21600}
# Every wake of an idle link also costs ARP on usb0 five seconds later (the neighbour
# entries went stale): a request and a reply each way, 4 x 42 bytes, seen with a packet
# capture in the lab. Counted once per message added per month below.
ARP_PER_WAKE = 4 * 42

lab = broker = sub = None
pki = None


def usb0_bytes():
    total = 0
    for name in ("rx_bytes", "tx_bytes"):
        out = lab.net.nsexec(lab.net.dut, ["cat", "/sys/class/net/usb0/statistics/" + name])
        total += int(out.stdout.strip())
    return total


def pingreqs(client):
    return broker.log_text().count("Received PINGREQ from " + client)


def wait_cellular():
    def up():
        out = lab.net.ip(lab.net.dut, "-4", "-o", "addr", "show", "dev", "usb0", check=False)
        return "10.201.100." in out.stdout
    if not up():
        lab.nm.nmcli("connection", "up", "cellular", check=False)
    ct.wait_until(up, 60, "usb0 addressed (cellular session up)", 0.5)


def window(seconds, every=None, until=None, limit=900):
    """Bytes on usb0 over seconds; every(): called once a minute (first after 5 s); until():
    the window goes on (at most limit s) until it holds."""
    seconds = seconds * SCALE
    mark = len(sub.messages)
    b0, t0 = usb0_bytes(), time.monotonic()
    next_call = t0 + 5
    while True:
        now = time.monotonic()
        if now >= t0 + seconds and (until is None or until() or now >= t0 + limit):
            break
        if every and now >= next_call:
            every()
            next_call += 60
        time.sleep(max(0.05, min(1.0, t0 + seconds - now)))
    b1, t1 = usb0_bytes(), time.monotonic()
    return b1 - b0, t1 - t0, sub.messages[mark:]


def per_month(nbytes, seconds):
    return nbytes / seconds * MONTH


def by_topic(msgs):
    """{subtopic: (count, payload bytes)} of the agent's messages."""
    out = {}
    for m in msgs:
        t = m["topic"]
        if not t.startswith(BASE + "/"):
            continue
        k = t[len(BASE) + 1:]
        n, b = out.get(k, (0, 0))
        out[k] = (n + 1, b + len(json.dumps(m["json"], separators=(",", ":"))
                                 if m.get("json") is not None else 0))
    return out


def agent_settings(mode):
    return {"agent": {"device-id": "dev1", "log-level": "info"},
            "mqtt": {"host": "broker.lab", "port": TLS_PORT, "tls": True, "ca-file": pki["ca"]},
            "health": {"probes": PROBES},
            "economy": {"mode": mode}}


def start_agent(mode):
    agent = ct.Agent.in_lab(lab, agent_settings(mode), name="agent-" + mode,
                            args=("--log-level", "info"))
    ct.on_failure(agent.dump_log)
    mark = len(sub.messages)
    agent.start()
    sub.wait_for(BASE + "/status", lambda m: m["json"] and m["json"].get("state") == "online",
                 timeout=60)
    sub.wait_for(BASE + "/telemetry", timeout=60)
    return agent, mark


def economy_state(agent):
    rc, doc = agent.status_json()
    return (doc.get("economy") or {}) if rc == 0 else {}


def command(name):
    """Bytes on usb0 for one cmd/<name> round trip (the request comes from inside the
    internet namespace; the agent's answers cross usb0), and the result message."""
    cid = "bench-%s-%d" % (name, time.monotonic_ns())
    time.sleep(2)
    b0 = usb0_bytes()
    broker.publish("%s/cmd/%s" % (BASE, name), {"id": cid})
    msgs = sub.wait_for("%s/cmd/%s/result" % (BASE, name),
                        lambda m: m["json"] and m["json"].get("id") == cid, timeout=20)
    time.sleep(2)  # the last ACKs
    return usb0_bytes() - b0, msgs[0]


def size_of(m):
    return len(m["topic"]) + len(json.dumps(m["json"], separators=(",", ":")))


def publish_overhead(tel_payload):
    """Bytes on usb0 of one QoS 1 publish beyond its topic and payload (see the docstring)."""
    d_tel, r_tel = command("telemetry")
    d_ping, r_ping = command("ping")
    tel = len(BASE + "/telemetry") + tel_payload
    o = d_tel - d_ping - tel - size_of(r_tel) + size_of(r_ping)
    print("publish overhead: cmd/telemetry %d B, cmd/ping %d B -> %d B per publish"
          % (d_tel, d_ping, o), flush=True)
    return max(o, 0)


def last_sizes(msgs):
    """Payload+topic size of the last message per subtopic."""
    out = {}
    for m in msgs:
        if m["topic"].startswith(BASE + "/") and m.get("json") is not None:
            out[m["topic"][len(BASE) + 1:]] = size_of(m)
    return out


def change_signal():
    state = {"csq": 22}

    def flip():
        state["csq"] = 10 if state["csq"] == 22 else 22
        lab.modem.set_signal(csq=state["csq"])
    return flip


def record(metric, value_mb, baseline_mb, target, note):
    return ct.bench.record("data", metric, round(value_mb, 2), "MB/month", baseline_mb,
                           target, ct.bench.reproduce(__file__), note)


def test():
    global lab, broker, sub, pki
    ct.need("mosquitto", "mosquitto_sub", "openssl")
    if os.geteuid() != 0:
        ct.skip("needs root (the lab)")
    lab = ct.lab.Lab(personality="ecm", connectivity=False).start()
    ct.at_exit(lab.stop)
    ct.uplink.enable_ping_sockets(lab)
    # The operator namespace's kernel sends IPv6 router solicitations on its side of usb0
    # (70 bytes each, backing off from seconds to an hour), which no modem does; the
    # device side has IPv6 off (the profile's ipv6.method=ignore).
    lab.net.sysctl(lab.net.op, "net.ipv6.conf.lan.disable_ipv6", 1)
    d = os.path.join(lab.run_dir, "pki")
    os.makedirs(d, exist_ok=True)
    pki = {"ca": ct.mqtt.make_ca(d, "ca")}
    pki["crt"], pki["key"] = ct.mqtt.make_cert(d, "ca", "broker", "broker.lab", "DNS:broker.lab")
    broker = ct.mqtt.Broker(os.path.join(lab.run_dir, "mqtt-inet"), port=1883,
                            host=ct.lab.INTERNET_BROKER, lab=lab,
                            wrapper=["ip", "netns", "exec", lab.net.inet], extra_conf=(
                                "user root\nlistener %d %s\ncafile %s\ncertfile %s\nkeyfile %s\n"
                                % (TLS_PORT, ct.lab.INTERNET_BROKER, pki["ca"], pki["crt"],
                                   pki["key"]))).start()
    sub = broker.subscribe([BASE + "/#", "bench/#"])
    lab.mm.wait_modem()
    wait_cellular()
    results = {}

    # Baseline: a bare MQTT 5 connection over TLS, keepalive 60 s.
    base = lab.spawn("baseline-sub", ["mosquitto_sub", "-h", "broker.lab", "-p", str(TLS_PORT),
                                      "--cafile", pki["ca"], "-V", "mqttv5", "-k", "60",
                                      "-i", "baseline", "-t", "bench/baseline", "-q", "1"])
    ct.wait_until(lambda: "New client connected" in broker.log_text()
                  and "baseline" in broker.log_text(), 30, "the baseline connected")
    time.sleep(5)
    b, w, _ = window(130)
    base_mb = per_month(b, w) / MB
    print("baseline: %d bytes in %.0f s = %.2f MB/month" % (b, w, base_mb), flush=True)
    base.stop()

    # Defaults: [economy] mode=auto, NetworkManager guesses the modem metered.
    agent, mark = start_agent("auto")
    ct.wait_until(lambda: economy_state(agent).get("active") is True, 60,
                  "economy mode on (auto, the modem guessed metered)")
    eco = economy_state(agent)
    print("economy:", eco, flush=True)
    # Settle: the keepalive reconnect, the first probes, the start-up messages.
    time.sleep(40)
    sizes = last_sizes(sub.messages[mark:])
    p0 = pingreqs("dev1")
    # At least one PINGREQ (traffic in the window can delay it past 300 s).
    b_idle, w_idle, m_idle = window(300, until=lambda: pingreqs("dev1") > p0)
    n_ping = pingreqs("dev1") - p0
    assert n_ping >= 1, "no PINGREQ in the economy idle window"
    topics = by_topic(m_idle)
    print("economy idle: %d bytes in %.0f s, %d PINGREQ, messages %s"
          % (b_idle, w_idle, n_ping, topics), flush=True)
    o = publish_overhead(sizes.get("telemetry", 900) - len(BASE + "/telemetry"))
    sizes = last_sizes(sub.messages[mark:])
    cost = {k: o + v + ARP_PER_WAKE for k, v in sizes.items()}
    # A message in the idle window (e.g. usage after a session event) is taken out at its
    # publish cost; the rest of the window, link-layer traffic included, is the PINGREQs'.
    seen = sum((o + b / n) * n for k, (n, b) in topics.items())
    c_ping = max(b_idle - seen, 0) / n_ping
    residual = 0
    k = ECONOMY["keepalive"]
    parts = {
        "keepalive (PINGREQ/PINGRESP every %d s, %.0f B each)" % (k + 1, c_ping):
            MONTH / (k + 1) * c_ping,
        "telemetry every %d s (%d B)" % (ECONOMY["telemetry-interval"], cost["telemetry"]):
            MONTH / ECONOMY["telemetry-interval"] * cost["telemetry"],
        "usage every %d s (%d B)" % (ECONOMY["usage-interval"], cost.get("usage", o + 900)):
            MONTH / ECONOMY["usage-interval"] * cost.get("usage", o + 900),
        "link every %d s (%d B)" % (ECONOMY["link-interval"], cost["link"]):
            MONTH / ECONOMY["link-interval"] * cost["link"],
        "other (residual of the window)": per_month(residual, w_idle),
    }
    eco_idle = sum(parts.values()) / MB
    for name, v in parts.items():
        print("  economy idle: %-55s %6.3f MB/month" % (name, v / MB), flush=True)
    results["economy idle"] = eco_idle

    # One signal change a minute: coalesced to one telemetry message per min-spacing.
    b_ch, w_ch, m_ch = window(300, every=change_signal())
    tel_ch = by_topic(m_ch).get("telemetry", (0, 0))[0]
    assert tel_ch <= 1 + int(w_ch // ECONOMY["min-spacing"]), \
        "economy did not coalesce signal changes: %d telemetry messages" % tel_ch
    extra = (MONTH / ECONOMY["min-spacing"] - MONTH / ECONOMY["telemetry-interval"]) \
        * cost["telemetry"]
    eco_change = eco_idle + extra / MB
    print("economy, a change a minute: %d bytes in %.0f s (%d telemetry); month = idle + "
          "%.3f MB (telemetry every %d s instead of %d s)"
          % (b_ch, w_ch, tel_ch, extra / MB, ECONOMY["min-spacing"],
             ECONOMY["telemetry-interval"]), flush=True)
    results["economy change"] = eco_change
    agent.stop(timeout=10)

    # Economy off: the normal figures on the same link.
    agent, mark = start_agent("off")
    time.sleep(40)
    ct.wait_until(lambda: economy_state(agent).get("active") is False, 10, "economy off")
    b_off, w_off, m_off = window(180)
    topics = by_topic(m_off)
    sizes = last_sizes(sub.messages[mark:])
    link_add = 0.0 if "link" in topics else \
        MONTH / 3600 * (o + sizes.get("link", 1300) + ARP_PER_WAKE)
    off_idle = (per_month(b_off, w_off) + link_add) / MB
    print("economy off, idle: %d bytes in %.0f s, messages %s = %.2f MB/month (link hourly "
          "added: %.2f MB)" % (b_off, w_off, topics, off_idle, link_add / MB), flush=True)
    b_offc, w_offc, m_offc = window(180, every=change_signal())
    off_change = (per_month(b_offc, w_offc) + link_add) / MB
    print("economy off, a change a minute: %d bytes in %.0f s, messages %s = %.2f MB/month"
          % (b_offc, w_offc, by_topic(m_offc), off_change), flush=True)
    agent.stop(timeout=10)

    note = "usb0 kernel counters, TLS, MQTT 5; baseline: mosquitto_sub keepalive 60 s"
    ok = [
        record("defaults (economy auto: modem guessed metered), idle", eco_idle, base_mb,
               "<= %g" % TARGET_DEFAULTS, note),
        record("defaults (economy auto: modem guessed metered), one telemetry change a minute",
               eco_change, base_mb, "<= %g" % TARGET_DEFAULTS, note),
        record("economy, idle", eco_idle, base_mb, "<= %g" % TARGET_ECONOMY, note),
        record("economy, one telemetry change a minute", eco_change, base_mb,
               "<= %g" % TARGET_ECONOMY, note),
        record("economy off (mode=off), idle", off_idle, base_mb, None, note),
        record("economy off (mode=off), one telemetry change a minute", off_change, base_mb,
               None, note),
    ]
    assert all(ok), "a data cost target was missed"


if __name__ == "__main__":
    ct.main(test)
