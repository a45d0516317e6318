"""Growth driver: telemetry publishes, in the lab (real ModemManager, the ECM modem).
Each operation is one cmd/telemetry request: the agent builds the telemetry object from its
view of the modem, publishes it on <base>/telemetry and answers on cmd/telemetry/result.
The requests go through one long-running mosquitto_pub -l in batches of 100, each batch
confirmed by its 100 results (the outbound queue never overflows)."""
import json
import subprocess

import cellagent_test as ct

NAME = "telemetry publishes (cmd/telemetry)"
COUNT = 10000
BOUND = 1.05
MODEM = True
BASE = "cellagent/bench"
BATCH = 100


def ready(ctx):
    broker = ctx.env.broker
    ctx.sub = broker.subscribe([BASE + "/cmd/telemetry/result", BASE + "/telemetry"])
    ctx.pub = subprocess.Popen(broker.wrapper + ["mosquitto_pub", "-h", broker.host, "-p",
                                                 str(broker.port), "-q", "1", "-t",
                                                 BASE + "/cmd/telemetry", "-l"],
                               stdin=subprocess.PIPE, text=True)
    ct.at_exit(lambda: ctx.pub.poll() is None and ctx.pub.kill())
    ct.at_exit(ctx.sub.close)
    # The modem is known before the count starts (telemetry says so).
    ctx.sub.wait_for(BASE + "/telemetry", lambda m: m["json"] and (m["json"].get("modem") or {})
                     .get("state") not in (None, "absent"), 60)


def _results(ctx):
    return len(ctx.sub.matching(BASE + "/cmd/telemetry/result",
                                lambda m: m["json"] and m["json"].get("ok") is True))


def run(ctx, start, stop):
    base = _results(ctx)
    for b0 in range(start, stop, BATCH):
        b1 = min(stop, b0 + BATCH)
        for i in range(b0, b1):
            ctx.pub.stdin.write(json.dumps({"id": "t%d" % i}) + "\n")
        ctx.pub.stdin.flush()
        ct.wait_until(lambda: _results(ctx) >= base + (b1 - start), 120,
                      f"results of telemetry requests up to {b1}")
