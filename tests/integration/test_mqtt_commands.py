#!/usr/bin/python3
"""Commands over MQTT against the real agent: cmd/ping round trip (with and without args);
unknown command; invalid JSON; missing and invalid id; a payload over 64 KiB refused without
being parsed; a repeated id answered with the same result and not run again; a command sent
while the agent was down (kill -9) answered after it is back (persistent session); a retained
cmd/ping or sms/out is never run at a start: it is reported (retained-ignored) and cleared."""
# ctest: labels=integration;mqtt timeout=120
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402
import cellagent_test as ct  # noqa: E402

BASE = "cellagent/dev1"


def test():
    ct.need("mosquitto", "mosquitto_sub", "mosquitto_pub")
    d = ct.run_dir()
    env = {"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=" + os.path.join(d, "no-bus")}
    broker = ct.Broker(d).start()
    ct.on_failure(lambda: print(open(broker.log).read()[-2000:]))
    settings = {"mqtt": {"host": "127.0.0.1", "port": broker.port}}
    agent = ct.Agent(d, settings, env=env, wrapper=ct.mqtt.WRAPPER)
    ct.on_failure(agent.dump_log)
    agent.start()
    sub = ct.Subscriber(broker.port, f"{BASE}/cmd/+/result")
    ct.mqtt.wait_retained(broker.port, f"{BASE}/status", lambda s: s.get("state") == "online")
    agent.wait_log(r"subscribed to \"cellagent/dev1/cmd/\+\"")

    def ask(name, payload, match_id, timeout=10):
        ct.publish(broker.port, f"{BASE}/cmd/{name}", payload)
        return sub.wait_for(f"{BASE}/cmd/{name}/result",
                            lambda m: m["json"] is not None and m["json"].get("id") == match_id, timeout)[-1]["json"]

    r = ask("ping", '{"id":"r1"}', "r1")
    assert r["ok"] is True and r["result"]["pong"] is True and r["result"]["version"], r
    assert r["ts"].endswith("Z"), r
    r = ask("ping", '{"id":"r2","args":{}}', "r2")
    assert r["ok"] is True, r

    r = ask("frobnicate", '{"id":"u1"}', "u1")
    assert r == {"id": "u1", "ok": False, "ts": r["ts"], "error": "unknown command"}, r

    def ask_anon(name, payload, error_part):
        before = len(sub.matching(f"{BASE}/cmd/{name}/result"))
        ct.publish(broker.port, f"{BASE}/cmd/{name}", payload)
        m = sub.wait_for(f"{BASE}/cmd/{name}/result", None, 10, count=before + 1)[-1]["json"]
        assert m["ok"] is False and m["id"] is None and error_part in m["error"], m
        return m

    ask_anon("Not_A-Name", '{"id":"n2"}', "unknown command")  # not a valid name: not parsed
    ask_anon("ping", "{not json", "invalid JSON")
    ask_anon("ping", "{}", "missing id")
    ask_anon("ping", '{"id":"has space"}', "invalid id")
    ask_anon("ping", '{"id":"' + "x" * 65 + '"}', "invalid id")
    r = ask("ping", '{"id":"a1","args":[1]}', "a1")
    assert r["ok"] is False and "invalid args" in r["error"], r
    # Over 64 KiB: refused by size, so even its (valid) id is not read.
    big = '{"id":"big1","pad":"' + "x" * (70 * 1024) + '"}'
    m = ask_anon("ping", big, "payload too large")
    assert "big1" not in str(m)

    # A repeated id: same answer (same ts), not run again.
    first = sub.matching(f"{BASE}/cmd/ping/result", lambda m: m["json"] and m["json"].get("id") == "r1")[0]["json"]
    ct.publish(broker.port, f"{BASE}/cmd/ping", '{"id":"r1"}')
    again = sub.wait_for(f"{BASE}/cmd/ping/result", lambda m: m["json"] and m["json"].get("id") == "r1", 10, count=2)[-1]["json"]
    assert again == first, (first, again)
    agent.wait_log(r'command "ping" id "r1" repeated')
    assert agent.log_text().count('command "ping" id "r1" from mqtt: ok') == 1

    # Sent while the agent is down: the broker keeps it in the agent's session.
    agent.kill()
    ct.mqtt.wait_retained(broker.port, f"{BASE}/status", lambda s: s == {"state": "offline"})
    ct.publish(broker.port, f"{BASE}/cmd/ping", '{"id":"offline-1"}')
    agent2 = ct.Agent(d, settings, env=env, name="agent2", wrapper=ct.mqtt.WRAPPER)
    ct.on_failure(agent2.dump_log)
    agent2.start()
    r = sub.wait_for(f"{BASE}/cmd/ping/result", lambda m: m["json"] and m["json"].get("id") == "offline-1", 15)[-1]["json"]
    assert r["ok"] is True, r
    agent2.wait_log(r"session resumed")

    # A retained request (a backend's mistake, or an attacker's) is delivered again at every
    # subscription. Published while the agent is subscribed, the broker forwards it as a live
    # message (retain flag 0): it runs once.
    # (A request published while the agent is away is queued in its persistent session and
    # delivered live as well: that one is a request like any other.)
    results = ct.Subscriber(broker.port, f"{BASE}/sms/out/result")
    ct.publish(broker.port, f"{BASE}/cmd/ping", '{"id":"ret-1"}', retain=True)
    r = sub.wait_for(f"{BASE}/cmd/ping/result", lambda m: m["json"] and m["json"].get("id") == "ret-1", 15)[-1]["json"]
    assert r["ok"] is True, r
    ct.publish(broker.port, f"{BASE}/sms/out", '{"id":"ret-sms","to":"+254700000001","text":"x"}',
               retain=True)
    results.wait_for(f"{BASE}/sms/out/result", lambda m: (m["json"] or {}).get("id") == "ret-sms", 15)
    rc, _ = agent2.stop()
    assert rc == 0
    n_results = len(results.matching(f"{BASE}/sms/out/result"))
    # At the next start both come as retained messages: neither is run again (nor
    # answered), each is reported and cleared from the broker.
    events = ct.Subscriber(broker.port, f"{BASE}/events")
    agent3 = ct.Agent(d, settings, env=env, name="agent3", wrapper=ct.mqtt.WRAPPER)
    ct.on_failure(agent3.dump_log)
    agent3.start()
    for topic in ("cmd/ping", "sms/out"):
        ev = events.wait_for(f"{BASE}/events", lambda m, t=topic: (m["json"] or {}).get("type") == "retained-ignored"
                             and m["json"].get("topic") == t, 15)[-1]["json"]
        assert ev["bytes"] > 0, ev
        ct.wait_until(lambda t=topic: ct.mqtt.retained(broker.port, f"{BASE}/{t}", timeout=1) is None, 15,
                      f"the retained {topic} to be cleared")
    agent3.wait_log(r'ignoring the retained message on "cellagent/dev1/cmd/ping"')
    # A live request after them is still answered: the agent works on.
    r2 = ask("ping", '{"id":"after-ret"}', "after-ret")
    assert r2["ok"] is True, r2
    assert len(sub.matching(f"{BASE}/cmd/ping/result", lambda m: m["json"] and m["json"].get("id") == "ret-1")) == 1
    assert 'command "ping" id "ret-1"' not in agent3.log_text()
    assert len(results.matching(f"{BASE}/sms/out/result")) == n_results, results.matching(f"{BASE}/sms/out/result")
    rc, _ = agent3.stop()
    assert rc == 0

    # MQTT 3.1.1, and a retained reboot published before the device's first connection (no
    # session yet): refused and cleared the same way, nothing answered.
    base2 = "cellagent/dev2"
    ct.publish(broker.port, f"{base2}/cmd/reboot", '{"id":"ret-boot"}', retain=True)
    events2 = ct.Subscriber(broker.port, f"{base2}/events")
    sub2 = ct.Subscriber(broker.port, f"{base2}/cmd/+/result")
    settings2 = {"agent": {"device-id": "dev2"},
                 "mqtt": {"host": "127.0.0.1", "port": broker.port, "protocol": "3.1.1"}}
    agent4 = ct.Agent(d, settings2, env=env, name="agent4", wrapper=ct.mqtt.WRAPPER)
    ct.on_failure(agent4.dump_log)
    agent4.start()
    events2.wait_for(f"{base2}/events", lambda m: (m["json"] or {}).get("type") == "retained-ignored"
                     and m["json"].get("topic") == "cmd/reboot", 15)
    ct.wait_until(lambda: ct.mqtt.retained(broker.port, f"{base2}/cmd/reboot", timeout=1) is None, 15,
                  "the retained cmd/reboot to be cleared")
    ct.publish(broker.port, f"{base2}/cmd/ping", '{"id":"p311"}')
    sub2.wait_for(f"{base2}/cmd/ping/result", lambda m: (m["json"] or {}).get("id") == "p311", 10)
    assert sub2.matching(f"{base2}/cmd/reboot/result") == [], sub2.matching(f"{base2}/cmd/reboot/result")
    assert 'command "reboot" id' not in agent4.log_text()
    rc, _ = agent4.stop()
    assert rc == 0


if __name__ == "__main__":
    ct.main(test)
