#!/usr/bin/python3
# ctest: timeout=900
"""Benchmark: the SMS bridge's added delay, against baselines measured in the same run.

Lab (real ModemManager 1.20, the emulated SIMCom modem), a real mosquitto and the agent.

Outgoing, N sends each way, interleaved so both see the same machine load:
  - agent:    publish of an sms/out request (a long-running mosquitto_pub -l) until the
              emulator receives AT+CMGS for it;
  - baseline: `mmcli --messaging-create-sms` + `mmcli -s PATH --send` started until the
              emulator receives AT+CMGS (what a shell script on the device would do).
Incoming, N messages 0.5 s apart:
  - agent:    the emulator's +CMTI until the sms/in message reaches an MQTT subscriber;
  - baseline: the emulator's +CMTI until ModemManager's Messaging.Added signal reaches a
              D-Bus monitor (the earliest any ModemManager client can know);
  - the agent's share: the difference, per message.

Run: tests/bench/bench_sms.py [N]   (root; CELLAGENT_BIN or build/cellagent). Prints the
figures; exit 0, 77 when the lab cannot run here, 1 on failure.
"""

import datetime
import json
import math
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.realpath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402
import cellagent_test.lab  # noqa: E402
import cellagent_test.bench  # noqa: E402
import cellagent_test.sms  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("CA_BENCH_SMS", 50))
WARMUP = 2


def pct(values, p):
    """Nearest-rank percentile."""
    s = sorted(values)
    return s[max(0, min(len(s) - 1, math.ceil(p / 100.0 * len(s)) - 1))]


def wall(iso):
    return datetime.datetime.fromisoformat(iso).timestamp()


class TimedSubscriber:
    """A subscriber on sms/# recording the wall-clock arrival of every message."""

    def __init__(self, broker):
        self.sub = broker.subscribe(ct.sms.BASE + "/sms/#",
                                    on_message=lambda m: m.update(wall=time.time()))

    def find(self, topic, pred):
        """(arrival, payload) of the first message on topic whose payload matches, or None."""
        ms = self.sub.matching(topic, lambda m: m["json"] is not None and pred(m["json"]))
        return (ms[0]["wall"], ms[0]["json"]) if ms else None

    def close(self):
        self.sub.close()


class AddedWatch:
    """dbus-monitor: wall-clock arrival of ModemManager's Messaging.Added signals."""

    def __init__(self, env):
        rule = ("type='signal',interface='org.freedesktop.ModemManager1.Modem.Messaging',"
                "member='Added'")
        self.seen = []
        self.monitor = ct.bench.DbusMonitor(
            env, rule, lambda line: self.seen.append(time.time()) if "member=Added" in line else None)

    def close(self):
        self.monitor.close()


def cmgs_after(lab, t0, since):
    """Wall time of the first AT+CMGS the emulator received at or after t0."""
    for c in lab.modem.call("dump", since=since)["commands"]:
        if c["cmd"].upper().startswith("AT+CMGS=") and wall(c["ts"]) >= t0 - 0.001:
            return wall(c["ts"])
    return None


def main():
    rig = ct.sms.SmsRig(sms={"rate-limit": 100000, "resync-delay": 0})
    try:
        rig.start_agent()
        sub = TimedSubscriber(rig.broker)
        # Its connection time falls into the WARMUP rounds, which are not counted.
        pub = subprocess.Popen(["mosquitto_pub", "-p", str(rig.broker.port), "-q", "1", "-t",
                                ct.sms.BASE + "/sms/out", "-l"], stdin=subprocess.PIPE, text=True)
        agent_out, mmcli_out = [], []
        for i in range(N + WARMUP):
            # Agent: publish -> AT+CMGS.
            since = len(lab_commands(rig))
            rid = "bench-%d" % i
            t0 = time.time()
            pub.stdin.write(json.dumps({"id": rid, "to": "+254700009001",
                                        "text": "bench %d" % i}) + "\n")
            pub.stdin.flush()
            ct.wait_until(lambda: sub.find(ct.sms.BASE + "/sms/out/result",
                                           lambda p: p.get("id") == rid and
                                           p.get("status") == "sent"), 30, "sent")
            t_agent = cmgs_after(rig.lab, t0, since)
            # Baseline: mmcli create + send -> AT+CMGS.
            since = len(lab_commands(rig))
            t1 = time.time()
            path = rig.lab.mm.send_sms("+254700009002", "bench %d" % i)
            t_mmcli = cmgs_after(rig.lab, t1, since)
            rig.lab.mm.mmcli("-m", "any", "--messaging-delete-sms=" + path)
            if i >= WARMUP:
                agent_out.append((t_agent - t0) * 1000)
                mmcli_out.append((t_mmcli - t1) * 1000)
        pub.stdin.close()
        pub.wait(5)

        watch = AddedWatch(rig.lab.env)
        agent_in, mm_in, share_in = [], [], []
        for i in range(N + WARMUP):
            sender = "+2547110%05d" % i
            nevents = len(rig.lab.modem.dump()["events"])
            added_before = len(watch.seen)
            rig.lab.modem.deliver_sms("incoming %d" % i, sender=sender)
            got = ct.wait_until(lambda: sub.find(ct.sms.BASE + "/sms/in",
                                                 lambda p: p.get("from") == sender), 30,
                                "sms/in")
            stored = next(e for e in rig.lab.modem.dump()["events"][nevents:]
                          if e["type"] == "sms-stored")
            t_cmti = wall(stored["ts"])
            t_added = watch.seen[added_before] if len(watch.seen) > added_before else None
            if i >= WARMUP and t_added:
                agent_in.append((got[0] - t_cmti) * 1000)
                mm_in.append((t_added - t_cmti) * 1000)
                share_in.append((got[0] - t_added) * 1000)
            time.sleep(0.5)  # spacing, so ModemManager drops no +CMTI (not a wait for a result)
        watch.close()
        sub.close()
    finally:
        rig.stop()

    def line(name, values):
        return "  %-48s median %7.1f  p99 %7.1f  max %7.1f" % (
            name, statistics.median(values), pct(values, 99), max(values))
    print("sms/out over %d sends each (ms):" % len(agent_out))
    print(line("agent (sms/out publish -> AT+CMGS)", agent_out))
    print(line("baseline (mmcli create + send -> AT+CMGS)", mmcli_out))
    print("  ratio agent/mmcli: median %.2f  p99 %.2f" % (
        statistics.median(agent_out) / statistics.median(mmcli_out),
        pct(agent_out, 99) / pct(mmcli_out, 99)))
    print("sms/in over %d messages (ms):" % len(agent_in))
    print(line("agent (+CMTI -> sms/in at the subscriber)", agent_in))
    print(line("baseline (+CMTI -> ModemManager Added signal)", mm_in))
    print(line("agent's share (sms/in - Added)", share_in))
    return 0


def lab_commands(rig):
    return rig.lab.modem.dump()["commands"]


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ct.lab.LabSkip as exc:
        print("SKIP: %s" % exc)
        sys.exit(77)
