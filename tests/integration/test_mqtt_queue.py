#!/usr/bin/python3
"""10 000 publishes while the broker is down with queue-limit=1000: the queue holds 1000,
memory stays bounded (RSS after 10 000 about what it was after 1 000), the 9 000 drops are
counted and reported in an mqtt-queue-overflow event after reconnect, the newest 1 000 arrive
(each once), and an event queued behind them is not lost (telemetry is dropped first)."""
# ctest: labels=integration;mqtt timeout=120
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402

BASE = "cellagent/dev1"
PAD = 1000  # payload bytes: 10 000 unbounded messages would be ~10 MB


def test():
    ct.need("mosquitto", "mosquitto_sub")
    d = ct.run_dir()
    port = ct.free_port()
    # Under ASan freed memory sits in quarantine and would count as growth: no quarantine.
    asan = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"), "quarantine_size_mb=0"]))
    drv = ct.mqtt.Driver(d, {"mqtt": {"host": "127.0.0.1", "port": port, "queue-limit": 1000}},
                         env={"ASAN_OPTIONS": asan})
    ct.on_failure(drv.dump)
    drv.send("start")
    drv.wait_log(r"connection to 127\.0\.0\.1:%d failed" % port)

    # A normal message first: must survive the overflow (telemetry goes first).
    rss_0 = ct.rss_kb(drv.proc.pid)
    drv.send('pub keep events 1 0 normal {"tag":"keep"}')
    drv.send(f"fire telemetry 1 telemetry 1000 {PAD}")
    drv.expect(r"^fired 1000$")
    st = drv.stats()
    assert st["queue"] == 1001 - 1 and st["dropped"] == 1, st  # limit 1000: 1 telemetry dropped
    rss_1000 = ct.rss_kb(drv.proc.pid)
    for _ in range(9):
        drv.send(f"fire telemetry 1 telemetry 1000 {PAD}")
    drv.expect(r"^fired 1000$", count=10, timeout=60)
    st = drv.stats()
    rss_10000 = ct.rss_kb(drv.proc.pid)
    print(f"RSS before {rss_0} kB, after 1 000 publishes {rss_1000} kB, after 10 000 {rss_10000} kB; {st}")
    assert st["queue"] == 1000, st
    assert st["dropped"] == 9001, st
    # Unbounded, the next 9 000 would cost ~9x what the first 1 000 did (the baseline, measured
    # in the same run, so it holds under ASan and valgrind too); bounded, about nothing.
    first, rest = max(rss_1000 - rss_0, 500), rss_10000 - rss_1000
    assert rest < 2 * first, f"RSS grew {rest} kB for 9 000 more messages (first 1 000: {first} kB)"
    assert not drv.matching(r"^done keep"), "the normal message was dropped"

    # The overflow event is not retained: hold the driver back (link down) until the
    # subscriber's subscription is in (Subscriber returns after its SUBACK), or it may
    # connect and report first.
    drv.send("link 0")
    broker = ct.Broker(d, port=port).start()
    sub = ct.Subscriber(port, f"{BASE}/#")
    assert not drv.matching(r"^connected$"), "connected while the link was down"
    drv.send("link 1")
    drv.expect(r"^connected$", 30)
    drv.expect(r"^done keep ok$", 30)
    ev = sub.wait_for(f"{BASE}/events", lambda m: m["json"] and m["json"].get("type") == "mqtt-queue-overflow", 20)[0]["json"]
    print("event:", ev)
    assert ev["dropped"] == 9001 and ev["dropped_telemetry"] == 9001 and ev["dropped_other"] == 0, ev
    assert ev["queue_limit"] == 1000 and ev["ts"].endswith("Z"), ev
    # The newest 999 telemetry arrive, once each (seq 1..999 of the last burst).
    msgs = sub.wait_for(f"{BASE}/telemetry", None, 30, count=999)
    drv.send('pub marker events 1 0 normal {"tag":"marker"}')
    drv.expect(r"^done marker ok$", 20)
    sub.wait_for(f"{BASE}/events", lambda m: m["json"] and m["json"].get("tag") == "marker", 20)
    seqs = [m["json"]["seq"] for m in sub.matching(f"{BASE}/telemetry")]
    assert sorted(seqs) == list(range(1, 1000)), f"{len(seqs)} telemetry, first {sorted(seqs)[:5]}"
    assert drv.stats()["queue"] == 0
    assert len(sub.matching(f"{BASE}/events", lambda m: m["json"] and m["json"].get("type") == "mqtt-queue-overflow")) == 1
    assert drv.close() == 0
    broker.stop()


if __name__ == "__main__":
    ct.main(test)
