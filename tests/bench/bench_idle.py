#!/usr/bin/python3
"""Idle footprint: PSS, private memory and wakeups per second of the connected agent,
against baseline-idle (same libraries, same clients, idling) in the same run and the
same environment, over CA_BENCH_IDLE_SECONDS (60) after both settle.

Targets (docs/benchmarks.md): PSS <= 1.3x the baseline; < 0.2 wakeups/s outside the telemetry
timer (the agent runs with [telemetry] interval=0: no periodic timer). Both processes
run side by side, so they share the libraries' pages the same way; private memory is
the figure that sharing cannot move. Exits 1 when a target is missed.
"""
# ctest: timeout=300
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402
import cellagent_test.bench  # noqa: E402

SECONDS = float(os.environ.get("CA_BENCH_IDLE_SECONDS", "60"))
SAMPLE_EVERY = 5.0


def measure(pids, seconds):
    """Mean memory (sampled every SAMPLE_EVERY s) and wakeups/s of each pid over `seconds`."""
    counters = {p: ct.bench.Wakeups(p) for p in pids}
    w0 = {p: counters[p].poll() for p in pids}
    mem = {p: [] for p in pids}
    t0 = time.monotonic()
    next_sample = t0
    while True:
        now = time.monotonic()
        if now >= next_sample:
            for p in pids:
                mem[p].append(ct.bench.memory(p))
            next_sample += SAMPLE_EVERY
        for c in counters.values():
            c.poll()
        if now - t0 >= seconds:
            break
        time.sleep(min(0.5, max(0.0, t0 + seconds - now)))
    dt = time.monotonic() - t0
    out = {}
    for p in pids:
        n = len(mem[p])
        out[p] = {k: sum(m[k] for m in mem[p]) / n for k in ("Pss", "Private", "Rss")}
        out[p]["wakeups"] = (counters[p].poll() - w0[p]) / dt
    return out


def test():
    env = ct.bench.Env(ct.run_dir("bench-idle"))
    keepalive = 60
    agent = env.agent(env.agent_settings(mqtt={"keepalive": keepalive}))
    agent.wait_log(r"starting as device")
    base = ct.bench.Baseline(env, "idle", [env.broker_host, env.broker.port, keepalive])
    # "Connected" as the broker sees it, whatever the agent logs: the agent's client id is its
    # device id. Before the MQTT module existed the agent never connected; say so.
    try:
        ct.wait_until(lambda: re.search(r"New client connected .* as bench \(", env.broker_log()),
                      30, "the agent's MQTT connection")
        connected = "agent connected to the broker"
    except AssertionError:
        connected = "agent NOT connected to the broker"
    for pattern in READY + (LAB_READY if env.lab else []):
        agent.wait_log(pattern, timeout=60)
    settled = ct.bench.settle([agent.proc.pid, base.pid])
    print(f"settled after {settled:.1f} s; measuring {SECONDS:.0f} s ({env.kind})", flush=True)
    m = measure([agent.proc.pid, base.pid], SECONDS)
    a, z = m[agent.proc.pid], m[base.pid]
    assert agent.alive(), "the agent exited during the measurement"
    cmd = ct.bench.reproduce(__file__)
    note = f"{env.kind}; {connected}; {SECONDS:.0f} s window; {base.lines[0]}"
    ok = True
    ok &= ct.bench.record("idle", "PSS", a["Pss"], "kB", z["Pss"], "<= 1.3x", cmd, note)
    ok &= ct.bench.record("idle", "private memory", a["Private"], "kB", z["Private"], None, cmd, note)
    ok &= ct.bench.record("idle", "RSS", a["Rss"], "kB", z["Rss"], None, cmd, note)
    ok &= ct.bench.record("idle", "wakeups", a["wakeups"], "1/s", z["wakeups"] or None, "< 0.2", cmd,
                          note + f"; baseline {z['wakeups']:.3f}/s")
    agent.stop()
    env.stop()
    assert ok, "a target was missed (see above)"


# Hook: log lines (regexes) the agent prints once it is fully up (e.g. modem selected); the
# measurement starts after all of them, once both processes have been quiet for 3 s.
READY = []
# In the lab the cellular uplink comes up (ECM data path) before the agent is idle.
LAB_READY = [r"\[uplink\] cellular: \S+ -> up\b"]

if __name__ == "__main__":
    ct.main(test)
