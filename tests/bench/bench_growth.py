#!/usr/bin/python3
"""Memory growth: the agent's RSS after N operations against its RSS after start-up.

Each driver is a file tests/bench/growth_<name>.py (found by glob; add one to add a row):

    NAME = "telemetry publishes"     # what one operation is
    COUNT = 10000                    # N (CA_BENCH_GROWTH_SCALE multiplies it, e.g. 0.1)
    BOUND = 1.10                     # RSS after N / RSS after start-up must stay <= BOUND
    MODEM = True                     # needs the lab's modem (skipped without the lab)
    def setup(ctx): ...              # optional: edit ctx.settings before the agent starts
    def ready(ctx): ...              # optional: wait until the agent is ready to be driven
    def run(ctx, start, stop): ...   # perform operations start..stop-1, wait for their effect

ctx has .dir, .env (ct.bench.Env: .broker, .bus, .lab, .env), .settings and .agent
(ct.Agent, once started). The driver runs COUNT/10 operations, then the rest; RSS is
read after start-up, after the first tenth and at the end, each after the agent settles,
so one-time growth (first-use caches) and per-operation growth are told apart.
Exits 1 when a driver exceeds its bound. CA_BENCH_GROWTH=name,name runs only those.
"""
# ctest: timeout=1200
import glob
import importlib.util
import os
import sys
import types

HERE = os.path.dirname(os.path.realpath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402
import cellagent_test.bench  # noqa: E402


def load_drivers():
    only = [s for s in os.environ.get("CA_BENCH_GROWTH", "").split(",") if s]
    drivers = []
    for path in sorted(glob.glob(os.path.join(HERE, "growth_*.py"))):
        key = os.path.basename(path)[len("growth_"):-3]
        if only and key not in only:
            continue
        spec = importlib.util.spec_from_file_location("growth_" + key, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        mod.KEY = key
        drivers.append(mod)
    return drivers


def run_driver(mod):
    scale = float(os.environ.get("CA_BENCH_GROWTH_SCALE", "1"))
    count = max(10, int(mod.COUNT * scale))
    ctx = types.SimpleNamespace(dir=ct.run_dir("bench-growth-" + mod.KEY), agent=None)
    ctx.env = ct.bench.Env(ctx.dir, modem=getattr(mod, "MODEM", False))
    if getattr(mod, "MODEM", False) and not ctx.env.lab:
        ctx.env.stop()
        print(f"growth {mod.KEY}: skipped (needs the lab's modem)")
        return True
    ctx.settings = ctx.env.agent_settings()
    if hasattr(mod, "setup"):
        mod.setup(ctx)
    ctx.agent = ctx.env.agent(ctx.settings)
    ctx.agent.wait_log(r"starting as device")
    if hasattr(mod, "ready"):
        mod.ready(ctx)
    pid = ctx.agent.proc.pid
    ct.bench.settle([pid])
    rss0 = ct.bench.rss(pid)
    tenth = max(1, count // 10)
    mod.run(ctx, 0, tenth)
    ct.bench.settle([pid])
    rss1 = ct.bench.rss(pid)
    mod.run(ctx, tenth, count)
    ct.bench.settle([pid])
    rss2 = ct.bench.rss(pid)
    assert ctx.agent.alive(), "the agent exited"
    per_op = (rss2 - rss1) * 1024 / (count - tenth)
    note = (f"{count} x {mod.NAME}; RSS start {rss0} kB, after {tenth} {rss1} kB, "
            f"after {count} {rss2} kB ({per_op:.1f} B/op after the first tenth); {ctx.env.kind}")
    cmd = ct.bench.reproduce(__file__, f"CA_BENCH_GROWTH={mod.KEY}")
    ok = ct.bench.record("growth", f"RSS after {count} {mod.NAME}", rss2, "kB", rss0,
                         f"<= {mod.BOUND}x", cmd, note)
    rc, _ = ctx.agent.stop()
    ctx.env.stop()
    assert rc == 0, f"agent exit code {rc}"
    return ok


def test():
    drivers = load_drivers()
    assert drivers, "no growth_*.py driver selected"
    failed = []
    for d in drivers:  # one driver failing does not stop the others
        try:
            if not run_driver(d):
                failed.append(f"{d.KEY} (over its bound)")
        except AssertionError as e:
            print(f"growth {d.KEY}: FAILED: {e}", flush=True)
            failed.append(f"{d.KEY} ({e})")
    assert not failed, f"failed: {failed}"


if __name__ == "__main__":
    ct.main(test)
