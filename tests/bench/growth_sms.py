"""Growth driver: SMS both ways, in the lab (real ModemManager, the ECM modem). Each
operation is one SMS out (an sms/out request through one long-running mosquitto_pub -l,
confirmed by its "sent" result) and one SMS in (delivered at the emulator, confirmed on
sms/in; the agent deletes it from the modem after the broker's PUBACK). Sends go in
batches of 20 requests, then that batch's 20 received messages one at a time, never while a
send is in flight (ModemManager 1.20 drops the notice of a message arriving during a send or
in a fast burst; the agent's resync, 5 s after the last message here, recovers those, but
the resync is not what this measures).

[sms] dedupe-limit is 100 (the minimum) here: the agent remembers the result of each of the
last dedupe-limit request ids and each received message id (default 10 000 each, 30 days),
memory that grows by design until the limit and then stays; with the default the 1 000
operations would measure that store filling up (about 1.6 kB per pair, see
docs/benchmarks.md), not a leak. With 100 it is full after the first tenth."""
import json
import subprocess

import cellagent_test as ct

NAME = "SMS each way"
COUNT = 1000
BOUND = 1.05
MODEM = True
BASE = "cellagent/bench"
BATCH = 20


def setup(ctx):
    ctx.settings.setdefault("sms", {}).update({"rate-limit": 100000, "resync-delay": 5,
                                                 "dedupe-limit": 100})


def ready(ctx):
    broker = ctx.env.broker
    ctx.sub = broker.subscribe([BASE + "/sms/out/result", BASE + "/sms/in", BASE + "/telemetry"])
    ctx.pub = subprocess.Popen(broker.wrapper + ["mosquitto_pub", "-h", broker.host, "-p",
                                                 str(broker.port), "-q", "1", "-t",
                                                 BASE + "/sms/out", "-l"],
                               stdin=subprocess.PIPE, text=True)
    ct.at_exit(lambda: ctx.pub.poll() is None and ctx.pub.kill())
    ct.at_exit(ctx.sub.close)
    ctx.sub.wait_for(BASE + "/telemetry", lambda m: m["json"] and (m["json"].get("modem") or {})
                     .get("state") not in (None, "absent"), 60)
    ct.wait_until(lambda: "using the Messaging interface" in ctx.agent.log_text(), 60,
                  "the SMS bridge on the modem")


def _sent(ctx):
    return len(ctx.sub.matching(BASE + "/sms/out/result",
                                lambda m: (m["json"] or {}).get("status") == "sent"))


def _received(ctx):
    return len(ctx.sub.matching(BASE + "/sms/in"))


def run(ctx, start, stop):
    modem = ctx.env.lab.modem
    sent0, recv0 = _sent(ctx), _received(ctx)
    for b0 in range(start, stop, BATCH):
        b1 = min(stop, b0 + BATCH)
        for i in range(b0, b1):
            ctx.pub.stdin.write(json.dumps({"id": "g%d" % i, "to": "+254700009001",
                                            "text": "growth out %d" % i}) + "\n")
        ctx.pub.stdin.flush()
        ct.wait_until(lambda: _sent(ctx) >= sent0 + (b1 - start), 120,
                      f"sms/out results up to {b1}")
        for i in range(b0, b1):
            modem.deliver_sms("growth in %d" % i, sender="+254700009002")
            ct.wait_until(lambda: _received(ctx) >= recv0 + (i + 1 - start), 60,
                          f"SMS in {i + 1} on sms/in")
            # The agent deleted it from the modem: ModemManager is idle for the next one.
            ct.wait_until(lambda: not modem.status()["storage"]["ME"]["indices"], 30,
                          f"SMS in {i + 1} deleted from the modem")
