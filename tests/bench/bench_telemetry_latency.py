#!/usr/bin/python3
# ctest: timeout=600
"""Benchmark: delay from a change in the emulated modem to the telemetry message.

Lab (real ModemManager, emulated SIMCom modem), a real mosquitto and the agent with
[telemetry] min-spacing=0. For each of N changes (signal quality alternating 32 % / 70 %,
beyond the deadband) the emulator reports +CSQ; we time, from the control call:
  - agent:    the <base>/telemetry message carrying the new quality at an MQTT subscriber;
  - baseline: ModemManager's PropertiesChanged(SignalQuality) with the new value at a D-Bus
              monitor on the same bus (what any ModemManager client could see at best),
measured in the same run, so the ratio agent/baseline survives a slower or busier machine.
Also reported: the agent's own share (agent - baseline, per change).

Run: tests/bench/bench_telemetry_latency.py [N]   (root; CELLAGENT_BIN or build/cellagent)
Exit 0 with the figures, 77 when the lab cannot run here, 1 on failure.
"""

import math
import os
import re
import statistics
import sys
import time

HERE = os.path.dirname(os.path.realpath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402
import cellagent_test.lab  # noqa: E402
import cellagent_test.modem  # noqa: E402
import cellagent_test.bench  # noqa: E402

CHANGES = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("CA_BENCH_CHANGES", 100))
LOW, HIGH = 10, 22  # CSQ -> ModemManager quality 32 % and 70 %


class DbusWatch:
    """dbus-monitor on the lab bus: (monotonic arrival, SignalQuality value) per change."""

    def __init__(self, env):
        rule = ("type='signal',interface='org.freedesktop.DBus.Properties',"
                "member='PropertiesChanged',sender='org.freedesktop.ModemManager1'")
        self.seen = []
        self.want = False
        self.monitor = ct.bench.DbusMonitor(env, rule, self._line)

    def _line(self, line):
        now = time.monotonic()
        if '"SignalQuality"' in line:
            self.want = True
        elif self.want:
            m = re.search(r"uint32 (\d+)", line)
            if m:
                self.seen.append((now, int(m.group(1))))
                self.want = False

    def close(self):
        self.monitor.close()


def pct(values, p):
    """Nearest-rank percentile."""
    s = sorted(values)
    return s[max(0, min(len(s) - 1, math.ceil(p / 100.0 * len(s)) - 1))]


def first_after(samples, t0, pred):
    for t, v in samples:
        if t >= t0 and pred(v):
            return t
    return None


def main():
    lab = ct.lab.Lab(personality="simtech").start()
    try:
        broker = lab.start_broker()
        arrivals = []
        sub = broker.subscribe(ct.modem.TELEMETRY, on_message=lambda m: arrivals.append(
            (time.monotonic(), ct.modem.field(m["json"], "modem.signal_quality"))))
        agent = ct.modem.start_agent(lab, broker, args=["--log-level", "info"],
                                     telemetry={"signal-rate": 30})
        ct.modem.wait_telemetry(sub, lambda t: ct.modem.field(t, "modem.state") == "registered"
                                and ct.modem.field(t, "modem.signal_quality") == 70, timeout=40)
        watch = DbusWatch(lab.env)
        quality = {LOW: None, HIGH: 70}
        agent_ms, base_ms, own_ms = [], [], []
        csq = HIGH
        for i in range(CHANGES + 2):
            csq = LOW if csq == HIGH else HIGH
            old = 70 if csq == LOW else quality[LOW]
            t0 = time.monotonic()
            lab.modem.set_signal(csq=csq)
            new = lambda v: v is not None and v != old  # noqa: E731

            def both():
                a = first_after(arrivals, t0, new)
                b = first_after(watch.seen, t0, new)
                return (a, b) if a and b else None
            ta, tb = ct.wait_until(both, 10, "the change at D-Bus and MQTT", 0.005)
            if quality[csq] is None:
                quality[csq] = next(v for t, v in watch.seen if t >= t0 and v != old)
            if i >= 2:  # the first two warm up both paths
                agent_ms.append((ta - t0) * 1000)
                base_ms.append((tb - t0) * 1000)
                own_ms.append((ta - tb) * 1000)
            time.sleep(0.2)  # pacing between changes (not a wait for a result)
        watch.close()
        sub.close()
        agent.stop()
    finally:
        lab.stop()

    med_a, p99_a = statistics.median(agent_ms), pct(agent_ms, 99)
    med_b, p99_b = statistics.median(base_ms), pct(base_ms, 99)
    med_o, p99_o = statistics.median(own_ms), pct(own_ms, 99)
    print("telemetry latency over %d changes (ms):" % len(agent_ms))
    print("  agent    (emulator -> MQTT telemetry):   median %.1f  p99 %.1f  max %.1f"
          % (med_a, p99_a, max(agent_ms)))
    print("  baseline (emulator -> MM D-Bus signal):  median %.1f  p99 %.1f  max %.1f"
          % (med_b, p99_b, max(base_ms)))
    print("  agent's share (MQTT - D-Bus):            median %.1f  p99 %.1f" % (med_o, p99_o))
    print("  ratio agent/baseline: median %.2f  p99 %.2f" % (med_a / med_b, p99_a / p99_b))
    try:
        cmd = "tests/bench/bench_telemetry_latency.py"
        ct.bench.record("latency", "telemetry p50 (emulator -> MQTT)", med_a, "ms", med_b,
                        command=cmd, note="baseline: ModemManager D-Bus signal")
        ct.bench.record("latency", "telemetry p99 (emulator -> MQTT)", p99_a, "ms", p99_b,
                        command=cmd, note="baseline: ModemManager D-Bus signal")
    except ImportError:
        pass
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ct.lab.LabSkip as exc:
        print("SKIP: %s" % exc)
        sys.exit(77)
