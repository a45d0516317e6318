#!/usr/bin/python3
"""Status and Last Will, under MQTT 5 and 3.1.1: the agent publishes a retained online status
on connect; kill -9 leaves the retained Last Will (offline); SIGTERM publishes offline itself
(acknowledged by the broker) and exits 0 within the shutdown bound; a restarted agent is
online again."""
# ctest: labels=integration;mqtt timeout=120
import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402


def online(s):
    return s.get("state") == "online"


def offline(s):
    return s == {"state": "offline"}


def scenario(protocol):
    d = ct.run_dir(f"test_mqtt_status-{protocol}")
    broker = ct.Broker(d).start()
    ct.on_failure(lambda: print(open(broker.log).read()[-3000:]))
    env = {"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=" + os.path.join(d, "no-bus")}
    settings = {"mqtt": {"host": "127.0.0.1", "port": broker.port, "protocol": protocol}}
    topic = "cellagent/dev1/status"

    agent = ct.Agent(d, settings, env=env, wrapper=ct.mqtt.WRAPPER)
    ct.on_failure(agent.dump_log)
    agent.start()
    s = ct.mqtt.wait_retained(broker.port, topic, online)
    assert s["version"], s
    assert s["started_at"].endswith("Z") and "T" in s["started_at"], s
    agent.wait_log(r"connected to 127\.0\.0\.1:%d as \"dev1\" \(MQTT %s" % (broker.port, protocol.replace(".", r"\.")))

    # kill -9: no DISCONNECT, so the broker publishes the Last Will (retained).
    agent.kill()
    ct.mqtt.wait_retained(broker.port, topic, offline, timeout=10)

    # Restarted: online again (a new started_at).
    agent2 = ct.Agent(d, settings, env=env, name="agent2", wrapper=ct.mqtt.WRAPPER)
    ct.on_failure(agent2.dump_log)
    agent2.start()
    s2 = ct.mqtt.wait_retained(broker.port, topic, online)
    assert s2["started_at"] >= s["started_at"]

    # SIGTERM: a live subscriber sees offline after online; the broker acknowledged it.
    sub = ct.Subscriber(broker.port, topic, protocol="mqttv5" if protocol == "5" else "mqttv311")
    sub.wait_for(topic, lambda m: m["json"] and online(m["json"]))
    rc, secs = agent2.stop(signal.SIGTERM, timeout=5)
    assert rc == 0, f"exit code {rc}"
    assert secs < 3, f"took {secs:.1f} s to stop"
    sub.wait_for(topic, lambda m: m["json"] == {"state": "offline"}, timeout=5)
    assert "offline acknowledged" in agent2.log_text()
    assert offline(ct.mqtt.retained(broker.port, topic))
    # The clean stop sent DISCONNECT: no Last Will on top (exactly one offline after online).
    msgs = [m["json"] for m in sub.matching(topic)]
    assert msgs.count({"state": "offline"}) == 1, msgs
    sub.close()
    broker.stop()


def test():
    ct.need("mosquitto", "mosquitto_sub")
    for protocol in ("5", "3.1.1"):
        scenario(protocol)


if __name__ == "__main__":
    ct.main(test)
