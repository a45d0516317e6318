#!/usr/bin/python3
"""Remote configuration against the real broker (docs/remote-config.md):
- a valid retained config/desired is applied through the reload path, confirmed and reported
  (pending, then applied, with its version and hash); cmd/config-get shows each key's value
  and source (file:line, remote version N, default);
- the retained document is applied once: reconnects hand it over again (session-expiry=0
  resubscribes) and nothing is reloaded;
- invalid documents (a value out of range, a local-only key, a credential, an oversized
  document) are rejected with errors naming the group and key, and change nothing;
- a change to a broker port that does not answer is rolled back within confirm_within plus
  a few seconds, and the device is online again;
- SIGKILL during a pending change: the next start rolls it back and reports it;
- a flood of versions is spaced: one reload, the newest document."""
# ctest: name=test-remote-config-mqtt labels=integration;mqtt timeout=180
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402
import cellagent_test.commands  # noqa: E402,F401

BASE = "cellagent/dev1"
CONFIRM = 10


def test():
    ct.need("mosquitto", "mosquitto_sub", "mosquitto_pub")
    d = ct.run_dir()
    env = {"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=" + os.path.join(d, "no-bus")}
    broker = ct.Broker(d).start()
    dead_port = ct.free_port()
    ct.on_failure(lambda: print(open(broker.log).read()[-3000:]))
    settings = {"mqtt": {"host": "127.0.0.1", "port": broker.port, "session-expiry": 0},
                "telemetry": {"interval": 60},
                "remote-config": {"enabled": True, "confirm-within": CONFIRM, "max-bytes": 1024}}
    agent = ct.Agent(d, settings, env=env, wrapper=ct.mqtt.WRAPPER)
    ct.on_failure(agent.dump_log)
    state = os.path.join(agent.settings["agent"]["state-dir"], "remote-config")
    agent.start()
    reported = ct.Subscriber(broker.port, [f"{BASE}/config/reported", f"{BASE}/status"])
    cmd = ct.commands.CommandClient(broker.port, BASE)
    ct.mqtt.wait_retained(broker.port, f"{BASE}/status", lambda s: s.get("state") == "online")
    agent.wait_log(r"subscribed to \"cellagent/dev1/config/desired\"")

    def reloads():
        return agent.log_text().count("configuration reloaded")

    def desired(doc):
        ct.publish(broker.port, f"{BASE}/config/desired", json.dumps(doc), retain=True)

    def wait_report(version, state_, timeout=15):
        return reported.wait_for(
            f"{BASE}/config/reported",
            lambda m: m["json"] and m["json"].get("version") == version and m["json"].get("state") == state_,
            timeout)[-1]["json"]

    def config_get(rid):
        r = cmd.ask("config-get", rid)
        assert r["ok"] is True, r
        return r["result"]

    # 1. A valid change: pending, then applied, through one reload.
    assert reloads() == 0
    desired({"version": 1, "groups": {"telemetry": {"interval": 300}}, "confirm_within": CONFIRM})
    wait_report(1, "pending")
    r = wait_report(1, "applied")
    assert r["errors"] == [] and r["hash"].startswith("sha256:") and r["ts"].endswith("Z"), r
    assert reloads() == 1
    cmd.wait_event(lambda e: e["type"] == "config-applied" and e["version"] == 1)
    cfg = config_get("g1")
    assert cfg["config"]["telemetry"]["interval"] == {"value": "300", "source": "remote version 1"}, cfg
    assert cfg["config"]["mqtt"]["port"]["source"].endswith("agent.conf:3"), cfg["config"]["mqtt"]["port"]
    assert cfg["config"]["mqtt"]["keepalive"] == {"value": "60", "source": "default"}
    assert cfg["remote"]["enabled"] is True and cfg["remote"]["reported"]["state"] == "applied"
    assert not os.path.exists(os.path.join(state, "pending.json"))

    # 2. Applied once: a reconnect hands the retained document over again; nothing happens.
    before = len(agent.log_text())
    assert cmd.ask("mqtt-reconnect", "rc1")["ok"] is True
    agent.wait_log(r"configuration version 1 already handled")
    assert "subscribed to \"cellagent/dev1/config/desired\"" in agent.log_text()[before:]
    time.sleep(1)  # a second reload would follow the message at once
    assert reloads() == 1
    assert ct.mqtt.retained(broker.port, f"{BASE}/config/reported")["version"] == 1

    # 3. Rejected documents change nothing, and say which group and key.
    desired({"version": 2, "groups": {"telemetry": {"interval": -5}}})
    r = wait_report(2, "rejected")
    assert any("[telemetry] interval" in e and "-5" in e for e in r["errors"]), r
    desired({"version": 3, "groups": {"agent": {"state-dir": "/tmp/elsewhere"},
                                      "mqtt": {"password-file": "/etc/shadow"}}})
    r = wait_report(3, "rejected")
    assert any(e.startswith("[agent] state-dir: set only in the local files") for e in r["errors"]), r
    assert any(e.startswith("[mqtt] password-file: a credential") for e in r["errors"]), r
    desired({"version": 4, "groups": {"telemetry": {"interval": 120}}, "pad": "x" * 2000})
    r = wait_report(None, "rejected")  # refused unread: no version
    assert "larger than [remote-config] max-bytes (1024)" in r["errors"][0], r
    cmd.wait_event(lambda e: e["type"] == "config-rejected" and e["version"] == 3)
    assert reloads() == 1
    assert config_get("g2")["config"]["telemetry"]["interval"]["value"] == "300"

    # 4. A broker port that does not answer: rolled back within confirm_within + a few s.
    desired({"version": 5, "groups": {"mqtt": {"port": dead_port}}, "confirm_within": CONFIRM})
    # Applied (the old connection is closed without DISCONNECT: the Will says offline).
    reported.wait_for(f"{BASE}/status", lambda m: m["json"] == {"state": "offline"}, 15)
    t0 = time.monotonic()
    r = wait_report(5, "rolled-back", timeout=CONFIRM + 15)
    took = time.monotonic() - t0
    assert CONFIRM - 2 <= took <= CONFIRM + 5, took
    assert "no publish acknowledged by the broker within 10 s" in r["reason"], r
    ct.mqtt.wait_retained(broker.port, f"{BASE}/status", lambda s: s.get("state") == "online")
    cmd.wait_event(lambda e: e["type"] == "config-rolled-back" and e["version"] == 5)
    cfg = config_get("g3")
    assert cfg["config"]["mqtt"]["port"]["value"] == str(broker.port), cfg["config"]["mqtt"]
    assert cfg["config"]["telemetry"]["interval"]["source"] == "remote version 1"
    assert not os.path.exists(os.path.join(state, "pending.json"))

    # 5. SIGKILL during a pending change: the next start rolls it back.
    desired({"version": 6, "groups": {"mqtt": {"port": dead_port}}, "confirm_within": 300})
    agent.wait_log(r"applying configuration version 6")
    assert os.path.exists(os.path.join(state, "pending.json"))
    agent.proc.send_signal(signal.SIGKILL)
    agent.proc.wait()
    agent.start()
    agent.wait_log(r"remote configuration version 6 was on trial when the agent stopped: rolled back")
    r = wait_report(6, "rolled-back")
    assert "stopped before the change was confirmed" in r["reason"], r
    ct.mqtt.wait_retained(broker.port, f"{BASE}/status", lambda s: s.get("state") == "online")
    agent.wait_log(r"configuration version 6 already handled")
    cfg = config_get("g4")
    assert cfg["config"]["mqtt"]["port"]["value"] == str(broker.port)
    assert cfg["config"]["telemetry"]["interval"]["value"] == "300"
    assert not os.path.exists(os.path.join(state, "pending.json"))
    assert not os.path.exists(os.path.join(state, "recovered.json"))

    # Still working: a later version applies.
    desired({"version": 7, "groups": {"telemetry": {"interval": 600}}})
    wait_report(7, "applied")
    assert config_get("g5")["config"]["telemetry"]["interval"]["value"] == "600"

    # A flood of versions is no reload loop: one change every 5 s, only the newest waits.
    n = reloads()
    for v in range(8, 13):
        desired({"version": v, "groups": {"telemetry": {"interval": 600 + v}}})
    wait_report(12, "applied", timeout=20)
    assert reloads() == n + 1, (n, reloads())
    assert not [m for m in reported.matching(f"{BASE}/config/reported")
                if m["json"] and m["json"].get("version") in (8, 9, 10, 11)]
    assert config_get("g6")["config"]["telemetry"]["interval"]["value"] == "612"
    rc, _ = agent.stop()
    assert rc == 0


if __name__ == "__main__":
    ct.main(test)
