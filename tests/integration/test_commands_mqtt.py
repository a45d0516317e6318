#!/usr/bin/python3
"""The command set over MQTT against the real agent and a real broker (no modem, no uplinks
needed): status, log-level, reload, reboot (refused by default; allowed, through a recording
command), mqtt-reconnect. For each: a valid call and its effect, invalid args refused before
anything runs, and the "command" event on <base>/events saying who asked (mqtt) and what
happened; read-only commands make no event."""
# ctest: labels=integration;mqtt;memcheck timeout=180
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402
import cellagent_test.commands  # noqa: E402

BASE = "cellagent/dev1"


def test():
    ct.need("mosquitto", "mosquitto_sub", "mosquitto_pub")
    d = ct.run_dir()
    env = {"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=" + os.path.join(d, "no-bus")}
    broker = ct.Broker(d).start()
    ct.on_failure(lambda: print(open(broker.log).read()[-2000:]))
    marker = os.path.join(d, "reboot-called")
    settings = {
        "agent": {"log-level": "info"},
        "mqtt": {"host": "127.0.0.1", "port": broker.port},
    }
    agent = ct.Agent(d, settings, env=env, wrapper=os.environ.get("CA_AGENT_WRAPPER", "").split())
    ct.on_failure(agent.dump_log)
    agent.start()
    client = ct.commands.CommandClient(broker.port, BASE)
    ct.mqtt.wait_retained(broker.port, f"{BASE}/status", lambda s: s.get("state") == "online")
    agent.wait_log(r"subscribed to \"cellagent/dev1/cmd/\+\"")

    # status: read-only, answers the summary (nothing known here but the uptime).
    r = client.ask("status", "s1")
    assert r["ok"] is True, r
    assert r["result"]["uptime"] >= 0 and r["result"]["uplink"] is None, r
    assert r["result"]["text"].startswith("dev1: up "), r
    r = client.ask("status", "s2", {"verbose": True})
    assert r["ok"] is False and r["error"] == "args.verbose: unknown argument", r

    # log-level: invalid args change nothing; a valid call changes the level and says so.
    for i, (args, err) in enumerate([(None, "args.level: missing"),
                                     ({"level": "loud"}, "args.level: must be"),
                                     ({"level": 7}, "args.level: must be a string"),
                                     ({"level": "debug", "x": 1}, "args.x: unknown argument")]):
        r = client.ask("log-level", f"l-bad-{i}", args)
        assert r["ok"] is False and r["error"].startswith(err), r
    # (Agent starts the agent with --log-level debug.)
    r = client.ask("log-level", "l1", {"level": "warning"})
    assert r["ok"] is True and r["result"] == {"level": "warning", "previous": "debug"}, r
    ev = client.wait_event(lambda e: e.get("type") == "command" and e.get("id") == "l1")
    assert ev["command"] == "log-level" and ev["source"] == "mqtt" and ev["ok"] is True, ev
    assert ev["result"] == {"level": "warning", "previous": "debug"}, ev
    assert ev["ts"].endswith("Z"), ev
    # The level took effect: the info line of the next command is not logged.
    r = client.ask("status", "s3")
    assert r["ok"] is True
    client.ask("log-level", "l2", {"level": "debug"})
    agent.wait_log(r'command "log-level" id "l2" from mqtt: ok')
    assert 'command "status" id "s3"' not in agent.log_text()

    # reload: the files are read again.
    r = client.ask("reload", "rl1")
    assert r["ok"] is True and r["result"]["files"] == [agent.config], r
    ev = client.wait_event(lambda e: e.get("type") == "command" and e.get("id") == "rl1")
    assert ev["ok"] is True and ev["source"] == "mqtt", ev
    r = client.ask("reload", "rl2", {"force": True})
    assert r["ok"] is False and r["error"] == "args.force: unknown argument", r
    # An invalid file: refused with the problem, the running config stays.
    with open(agent.config, "a") as f:
        f.write("\n[sms-alerts]\ndata-down-after=1\n")
    r = client.ask("reload", "rl3")
    assert r["ok"] is False and "data-down-after" in r["error"], r
    ev = client.wait_event(lambda e: e.get("type") == "command" and e.get("id") == "rl3")
    assert ev["ok"] is False and "data-down-after" in ev["error"], ev
    ct.write_config(agent.config, dict(settings, commands={
        "allow-reboot": True, "reboot-delay": 0,
        "reboot-command": f"/bin/sh -c 'echo \"$0\" >> {marker}' called"},
        watchdog={"reboot-budget": 1}))

    # reboot: refused while allow-reboot=false (still the running config).
    r = client.ask("reboot", "rb1")
    assert r["ok"] is False and r["error"] == "reboot not allowed ([commands] allow-reboot=false)", r
    ev = client.wait_event(lambda e: e.get("type") == "command" and e.get("id") == "rb1")
    assert ev["ok"] is False and ev["source"] == "mqtt", ev
    assert not os.path.exists(marker)
    # Allowed after a reload: answered, then the recording command runs exactly once.
    r = client.ask("reload", "rl4")
    assert r["ok"] is True, r
    r = client.ask("reboot", "rb2", {"now": True})
    assert r["ok"] is False and r["error"] == "args.now: unknown argument", r
    r = client.ask("reboot", "rb2b")
    assert r["ok"] is True and r["result"] == {"command": "/bin/sh", "delay": 0}, r
    ct.wait_until(lambda: os.path.exists(marker), 20, "the reboot command ran")
    agent.wait_log(r"reboot-command done")
    with open(marker) as f:
        assert f.read() == "called\n"
    ev = client.wait_event(lambda e: e.get("type") == "command" and e.get("id") == "rb2b")
    assert ev["ok"] is True and ev["command"] == "reboot", ev
    # Commands share the watchdog's persisted reboot budget ([watchdog] reboot-budget=1 here):
    # the next one within 24 h is refused and runs nothing.
    r = client.ask("reboot", "rb3")
    assert r["ok"] is False and r["error"].startswith("reboot budget spent: 1 reboot(s) in the last 24 h"), r
    with open(marker) as f:
        assert f.read() == "called\n"

    # mqtt-reconnect: answered, then a new connection.
    connects = agent.log_text().count("connected to 127.0.0.1")
    r = client.ask("mqtt-reconnect", "mr0", {"hard": True})
    assert r["ok"] is False and r["error"] == "args.hard: unknown argument", r
    r = client.ask("mqtt-reconnect", "mr1")
    assert r["ok"] is True, r
    agent.wait_log(r"reconnecting now \(requested\)")
    ct.wait_until(lambda: agent.log_text().count("connected to 127.0.0.1") > connects, 20,
                  "a new broker connection")
    ev = client.wait_event(lambda e: e.get("type") == "command" and e.get("id") == "mr1")
    assert ev["ok"] is True and ev["source"] == "mqtt", ev
    # Still answering afterwards.
    r = client.ask("status", "s4")
    assert r["ok"] is True, r

    # Read-only commands and refused args made no events. (Events are QoS 1, at least once: the reconnect
    # may deliver the one in flight twice, so no count of exactly one here.)
    cmd_events = [e for e in client.events() if e.get("type") == "command"]
    assert not [e for e in cmd_events if e["command"] in ("status", "ping", "telemetry")], cmd_events
    ids = set(e["id"] for e in cmd_events)
    assert ids == {"l1", "l2", "rl1", "rl3", "rb1", "rl4", "rb2b", "rb3", "mr1"}, ids
    rc, _ = agent.stop()
    assert rc == 0, rc


if __name__ == "__main__":
    ct.main(test)
