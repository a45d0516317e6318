#!/usr/bin/python3
"""Fleet simulation: N real agents (default 500) against one mosquitto on loopback.

Each agent is the built cellagent with its own device id (fleet-0001 ...), state dir and
config (the shipped defaults but the broker's address, and probes only at the broker), and
no modem. The agents share one private system bus (one dbus-daemon with raised connection
limits: an empty bus per agent would be 500 more processes and tells nothing more). The
broker has persistence on, so its restart keeps the agents' sessions.

Figures (docs/benchmarks.md, docs/fleet.md):
- idle, over CA_BENCH_FLEET_IDLE seconds (120) once every agent is online: broker-side TCP
  connections accepted and MQTT packets per second (PUBLISH alone and all packets), from the
  broker's log (log_type all); bytes per device per day, from the broker's per-connection
  TCP counters (ss -ti: MQTT bytes both ways, and IP bytes adding 52 bytes of IPv4 + TCP
  header per segment); all extrapolated to 1,000 devices.
- after a broker restart (SIGTERM, start again): seconds until every agent is connected
  again, and the peak of connection attempts per second (TCP connections accepted by the
  broker, per second of its log's timestamps), as a share of the fleet. Targets: no second
  above 10 % of the fleet, all back within 120 s.
- baselines (same run): for the idle figures, what each device would cost with its
  keepalive alone (one PINGREQ and PINGRESP per keepalive + 1 s); for the restart, the same
  storm with another cellagent build (--baseline-agent, e.g. one from before the spread
  first retry, run as a second fleet after the first is stopped), or else 100 % (the
  whole fleet back in one second).

Usage: bench_fleet.py [--agents N] [--idle SECONDS] [--baseline-agent PATH];
CA_BENCH_FLEET_AGENTS, CA_BENCH_FLEET_IDLE and CA_BENCH_FLEET_BASELINE_AGENT do the same
under scripts/bench (CA_BENCH_FLEET_AGENTS=50 for development). Needs root for nothing; raises
RLIMIT_NOFILE to its hard limit for itself and the broker. Every agent, the broker and the
bus are stopped on exit, on failure and on Ctrl-C.
"""
# ctest: timeout=1800
import argparse
import collections
import os
import re
import resource
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402
import cellagent_test.bench  # noqa: E402

KEEPALIVE = 60
TARGET_PEAK = 0.10    # share of the fleet connecting in any one second
TARGET_BACK_S = 120   # every agent online again after the broker restart
MIN_AGENTS_FOR_PEAK = 200
# IPv4 (20) + TCP with timestamps (32) per segment, as on loopback.
SEG_OVERHEAD = 52

LINE = re.compile(r"^(\d+): (.*)$")
CONNECTED = re.compile(r"New client connected from \S+ as (\S+) \(")
ACCEPTED = re.compile(r"New connection from ")
RECEIVED = re.compile(r"Received (\w+) from ")
SENT = re.compile(r"Sending (\w+) to ")


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def log_lines(path, start=0):
    """(timestamp, text) of the broker log's lines from byte offset start; and the end offset."""
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read()
    end = start + data.rfind(b"\n") + 1 if b"\n" in data else start
    out = []
    for raw in data[:end - start].decode(errors="replace").splitlines():
        m = LINE.match(raw)
        if m:
            out.append((int(m.group(1)), m.group(2)))
    return out, end


class Tally:
    """Follows the broker's log: who connected, and what happened per second."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.connected = set()
        self.accepted = collections.Counter()   # second -> TCP connections accepted
        self.connects = collections.Counter()   # second -> CONNECTs accepted (CONNACK 0)
        self.received = collections.Counter()   # packet type -> count
        self.sent = collections.Counter()

    def poll(self):
        lines, self.offset = log_lines(self.path, self.offset)
        for ts, text in lines:
            m = CONNECTED.search(text)
            if m:
                self.connected.add(m.group(1))
                self.connects[ts] += 1
            elif ACCEPTED.search(text):
                self.accepted[ts] += 1
            else:
                m = RECEIVED.search(text) or SENT.search(text)
                if m:
                    (self.received if text.startswith("Received") else self.sent)[m.group(1)] += 1
        return len(self.connected)

    def reset(self):
        self.poll()
        self.connected.clear()
        self.accepted.clear()
        self.connects.clear()
        self.received.clear()
        self.sent.clear()


def tcp_counters(port):
    """Sum over the broker's established connections of its TCP counters (ss -ti):
    {'bytes_out', 'bytes_in', 'segs_out', 'segs_in', 'n'} (bytes: MQTT payload)."""
    out = subprocess.run(["ss", "-Htin", "state", "established", f"( sport = :{port} )"],
                         capture_output=True, text=True, timeout=60).stdout
    tot = {"bytes_out": 0, "bytes_in": 0, "segs_out": 0, "segs_in": 0, "n": 0}
    for key, field in (("bytes_out", "bytes_acked"), ("bytes_in", "bytes_received"),
                       ("segs_out", "segs_out"), ("segs_in", "segs_in")):
        tot[key] = sum(int(x) for x in re.findall(rf"\b{field}:(\d+)", out))
    tot["n"] = len(re.findall(r"\bsegs_out:", out))
    return tot


def write_bus_limits(bus, agents):
    """The private bus, with room for every agent's connections (several each)."""
    with open(bus.conf) as f:
        conf = f.read()
    n = max(4096, agents * 8)
    limits = "".join(f'<limit name="{k}">{n}</limit>' for k in (
        "max_completed_connections", "max_incomplete_connections", "max_connections_per_user",
        "max_match_rules_per_connection", "max_pending_service_starts"))
    with open(bus.conf, "w") as f:
        f.write(conf.replace("</busconfig>", limits + "</busconfig>"))


def start_agents(directory, n, broker, bus, prefix="fleet", binary=None):
    """n agents with device ids PREFIX-0001 ...; binary: another cellagent build."""
    agent_mod = sys.modules["cellagent_test.agent"]
    if binary:
        agent_mod.CELLAGENT = binary  # Agent.start() runs this module-level path
    try:
        return _start_agents(directory, n, broker, bus, prefix)
    finally:
        agent_mod.CELLAGENT = ct.CELLAGENT


def _start_agents(directory, n, broker, bus, prefix):
    agents = []
    for i in range(1, n + 1):
        dev = f"{prefix}-{i:04d}"
        settings = {"agent": {"device-id": dev, "log-level": "info",
                              "state-dir": os.path.join(directory, "state", dev)},
                    "mqtt": {"host": "127.0.0.1", "port": broker.port,
                             "keepalive": KEEPALIVE},
                    "health": {"probes": "tcp:mqtt"}}
        a = ct.Agent(os.path.join(directory, "agents"), settings, env={
            "DBUS_SYSTEM_BUS_ADDRESS": bus.address}, name=dev, args=("--log-level", "info"),
            gate_wrapper=False)
        agents.append(a.start())
        if i % 25 == 0:  # pace the start-up: 2 cores
            time.sleep(0.5)
    return agents


def stop_agents(agents):
    """SIGTERM all, then reap (a clean stop publishes offline); SIGKILL the slow ones."""
    for a in agents:
        if a.alive():
            a.proc.send_signal(signal.SIGTERM)
    for a in agents:
        try:
            a.proc.wait(30)
        except subprocess.TimeoutExpired:
            a.kill()


def storm(broker, tally, agents, n, all_online):
    """Restart the broker under the online fleet: a clean stop (sessions saved) and a start
    on the same port. Returns (seconds until all are back, peak attempts in one second,
    a note with the attempts per second)."""
    tally.reset()
    r0 = time.monotonic()
    broker.stop()
    down = time.monotonic() - r0
    broker.start()
    up = time.monotonic()
    ct.wait_until(all_online("after the broker restart"), TARGET_BACK_S * 3,
                  f"all {n} agents back after the broker restart", 0.5)
    back = time.monotonic() - r0
    tally.poll()
    secs = sorted(tally.accepted)
    tally.accepted[secs[0]] -= 1  # Broker.start()'s own probe that it listens
    peak = max(tally.accepted.values())
    peak_at = max(tally.accepted, key=tally.accepted.get) - secs[0]
    attempts = sum(tally.accepted.values())
    hist = " ".join(str(tally.accepted.get(s, 0)) for s in range(secs[0], secs[-1] + 1))
    note = (f"{n} agents; broker stopped in {down:.1f} s, listening again {up - r0:.1f} s "
            f"after the stop began; all back after {back:.1f} s; {attempts} connection "
            f"attempts seen by the broker, per second: {hist} (peak {peak} at second "
            f"{peak_at})")
    print(note, flush=True)
    return back, peak, note


def per_1000(x, n):
    return x * 1000.0 / n


def test():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int,
                    default=int(os.environ.get("CA_BENCH_FLEET_AGENTS", "500")))
    ap.add_argument("--idle", type=float,
                    default=float(os.environ.get("CA_BENCH_FLEET_IDLE", "120")))
    ap.add_argument("--baseline-agent", metavar="PATH",
                    default=os.environ.get("CA_BENCH_FLEET_BASELINE_AGENT"),
                    help="also run the restart with this cellagent build (same run baseline)")
    args = ap.parse_args()
    n = args.agents
    ct.need("mosquitto", "dbus-daemon", "ss")
    nofile = raise_nofile()
    if nofile < n * 4 + 100:
        ct.skip(f"RLIMIT_NOFILE hard limit {nofile} is too low for {n} agents")
    d = ct.run_dir("bench-fleet")
    os.makedirs(os.path.join(d, "agents"))
    broker = ct.Broker(d, persistence=True, extra_conf="max_connections -1\n").start()
    bus = ct.PrivateBus(d)
    write_bus_limits(bus, n)
    bus.start()
    tally = Tally(broker.log)
    print(f"bench fleet: {n} agents, broker 127.0.0.1:{broker.port}, one private bus; "
          f"run dir {d}", flush=True)

    t0 = time.monotonic()
    agents = start_agents(d, n, broker, bus)

    def all_online(what):
        def pred():
            dead = [a for a in agents if not a.alive()]
            if dead:
                dead[0].dump_log(20)
                raise AssertionError(f"{len(dead)} agent(s) exited ({what})")
            return tally.poll() >= n
        return pred
    ct.wait_until(all_online("start"), 60 + n * 0.5, f"all {n} agents connected", 1.0)
    online_at = time.monotonic()
    print(f"all {n} online {online_at - t0:.1f} s after the first start", flush=True)

    # Idle: the fleet settles (start-up telemetry, subscriptions), then the window.
    time.sleep(min(30.0, args.idle / 4))  # a pause, not a wait for a condition
    tally.reset()
    c0 = tcp_counters(broker.port)
    w0 = time.monotonic()
    time.sleep(args.idle)  # the measurement window
    tally.poll()
    c1 = tcp_counters(broker.port)
    window = time.monotonic() - w0
    assert c0["n"] >= n and c1["n"] >= n, f"connections at the broker: {c0['n']}, {c1['n']}"
    accepted = sum(tally.accepted.values())
    publishes = tally.received["PUBLISH"] + tally.sent["PUBLISH"]
    packets = sum(tally.received.values()) + sum(tally.sent.values())
    mqtt_bytes = (c1["bytes_out"] - c0["bytes_out"]) + (c1["bytes_in"] - c0["bytes_in"])
    segs = (c1["segs_out"] - c0["segs_out"]) + (c1["segs_in"] - c0["segs_in"])
    ip_bytes = mqtt_bytes + segs * SEG_OVERHEAD
    day = 86400.0 / window
    # Baseline: keepalive only. A PINGREQ and a PINGRESP (2 bytes each) per keepalive + 1 s,
    # each its own segment, and the ACK of each (a PINGRESP answers the PINGREQ, so 3 segs).
    ka_period = KEEPALIVE + 1
    base_packets = 2.0 / ka_period
    base_bytes = 4.0 * 86400 / ka_period
    base_ip = (4.0 + 3 * SEG_OVERHEAD) * 86400 / ka_period
    extra = ([f"CA_BENCH_FLEET_AGENTS={n}"] if n != 500 else []) + \
        ([f"CA_BENCH_FLEET_IDLE={args.idle:g}"] if args.idle != 120 else [])
    cmd = ct.bench.reproduce(__file__, " ".join(extra))
    if window < 2 * (KEEPALIVE + 1):
        # The agents start within seconds of each other, so their 60 s timers run in step:
        # a shorter window may hold none of their rounds, or one.
        print(f"warning: an idle window of {window:.0f} s is shorter than two telemetry and "
              "keepalive periods: the idle figures are not representative", flush=True)
    note = (f"{n} agents, no modem, one private bus, mosquitto 2.0 with persistence on "
            f"loopback; idle window {window:.0f} s; {publishes} PUBLISH, {packets} packets, "
            f"{mqtt_bytes} MQTT bytes in {segs} segments; keepalive {KEEPALIVE} s")
    ok = True
    ok &= ct.bench.record("fleet", "idle connections accepted per 1,000 devices",
                          per_1000(accepted / window, n), "1/s", None, None, cmd, note)
    ok &= ct.bench.record("fleet", "idle MQTT packets per 1,000 devices (both ways)",
                          per_1000(packets / window, n), "1/s",
                          per_1000(base_packets * n, n), None, cmd, note)
    ok &= ct.bench.record("fleet", "idle PUBLISH per 1,000 devices (both ways)",
                          per_1000(publishes / window, n), "1/s", None, None, cmd, note)
    ok &= ct.bench.record("fleet", "idle MQTT bytes per device per day",
                          mqtt_bytes / n * day, "B", base_bytes, None, cmd, note)
    ok &= ct.bench.record("fleet", "idle IP bytes per device per day (no TLS)",
                          ip_bytes / n * day, "B", base_ip, None, cmd, note)

    # The connections must count as stable (30 s up) when the broker goes: a pause.
    time.sleep(max(0.0, online_at + 35 - time.monotonic()))
    back, peak, note_r = storm(broker, tally, agents, n, all_online)
    base_peak, base_back = 100.0, None
    if args.baseline_agent:
        # The same storm with another build (e.g. one from before the spread first retry).
        stop_agents(agents)
        tally.reset()
        old = start_agents(d, n, broker, bus, prefix="base", binary=args.baseline_agent)
        agents = old
        ct.wait_until(all_online("baseline start"), 60 + n * 0.5,
                      f"all {n} baseline agents connected", 1.0)
        time.sleep(35)  # a pause: the connections must count as stable (30 s)
        base_back, base_peak, note_b = storm(broker, tally, old, n, all_online)
        base_peak = base_peak * 100.0 / n
        note_r += f"; baseline ({args.baseline_agent}): {note_b}"
    else:
        note_r += "; baseline 100 %: the whole fleet back within one second"
    ok &= ct.bench.record("fleet", "broker restart: all agents back", back, "s", base_back,
                          f"<= {TARGET_BACK_S}", cmd, note_r)
    # Below a few hundred agents one second's share is too noisy for the target (50 agents:
    # 10 % is 5 agents, and 20 seconds of a uniform spread have a mean of 2.5 each).
    peak_target = f"<= {TARGET_PEAK * 100:.0f}" if n >= MIN_AGENTS_FOR_PEAK else None
    ok &= ct.bench.record("fleet", "broker restart: peak connection attempts in one second",
                          peak * 100.0 / n, "% of fleet", base_peak, peak_target, cmd, note_r)
    assert all(a.alive() for a in agents), "an agent exited"
    stop_agents(agents)
    bus.stop()
    broker.stop()
    assert ok, "a target was missed (see above)"


if __name__ == "__main__":
    ct.main(test)
