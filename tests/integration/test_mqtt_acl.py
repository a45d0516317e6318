#!/usr/bin/python3
"""The per-device ACL of docs/fleet.md on a real mosquitto: `pattern readwrite cellagent/%u/#`
with one user per device and a backend user, and use_username_as_clientid. A second device's
credentials can neither publish into this device's sms/out, nor read its topics, nor take its
client id, while this device's status and command results still flow. A publish the broker refuses (PUBACK reason 135 under MQTT 5) is
reported to the caller, in the log and as an mqtt-publish-refused event."""
# ctest: labels=integration;mqtt timeout=120
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402

BASE = "cellagent/dev1"


def test():
    ct.need("mosquitto", "mosquitto_sub", "mosquitto_pub", "mosquitto_passwd")
    d = ct.run_dir()
    env = {"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=" + os.path.join(d, "no-bus")}
    # With use_username_as_clientid every connection of one user has the same client id: the
    # backend's long-lived subscriber and its short-lived publishers need different users.
    users = {"dev1": "pw-dev1", "dev2": "pw-dev2", "backend": "pw-backend", "ops": "pw-ops"}
    pw = ct.mqtt.passwd_file(os.path.join(d, "passwd"), users)
    acl = os.path.join(d, "acl")
    with open(acl, "w") as f:
        f.write("# the backend sees the whole fleet\nuser backend\ntopic readwrite cellagent/#\n"
                "user ops\ntopic readwrite cellagent/#\n\n"
                "# every device only its own subtree (user name = device id)\n"
                "pattern readwrite cellagent/%u/#\n"
                "# test only: one topic refused, to see PUBACK 135\n"
                "pattern deny cellagent/%u/forbidden\n")
    broker = ct.Broker(d, allow_anonymous=False,
                       extra_conf=f"user root\npassword_file {pw}\nacl_file {acl}\n"
                                 # the client id is the user name: no one can take dev1's id
                                 "use_username_as_clientid true\n").start()
    ct.on_failure(lambda: print(open(broker.log).read()[-3000:]))
    backend = ["-u", "backend", "-P", users["backend"]]
    ops = ["-u", "ops", "-P", users["ops"]]
    dev2 = ["-u", "dev2", "-P", users["dev2"]]
    pwfile = os.path.join(d, "dev1.pw")
    with open(pwfile, "w") as f:
        f.write(users["dev1"] + "\n")
    os.chmod(pwfile, 0o600)

    agent = ct.Agent(d, {"mqtt": {"host": "127.0.0.1", "port": broker.port, "username": "dev1",
                                  "password-file": pwfile}}, env=env, wrapper=ct.mqtt.WRAPPER)
    ct.on_failure(agent.dump_log)
    agent.start()
    ct.mqtt.wait_retained(broker.port, f"{BASE}/status", lambda s: s.get("state") == "online", extra_args=ops)
    sub = ct.Subscriber(broker.port, f"{BASE}/#", extra_args=backend)
    ct.wait_until(lambda: sub.matching(f"{BASE}/status"), 10, "backend subscriber ready")

    # dev2 tries to inject an SMS into dev1: refused (MQTT 5 PUBACK 135), never delivered.
    r = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-V", "mqttv5", "-q", "1",
                        "-t", f"{BASE}/sms/out", "-m", '{"id":"evil","to":"+15550000000","text":"x"}'] + dev2,
                       capture_output=True, text=True, timeout=10)
    print("dev2 publish:", r.returncode, r.stderr.strip())
    ct.publish(broker.port, f"{BASE}/sms/out", '{"id":"marker"}', extra_args=ops)
    sub.wait_for(f"{BASE}/sms/out", lambda m: m["json"] and m["json"].get("id") == "marker", 10)
    assert not sub.matching(f"{BASE}/sms/out", lambda m: m["json"] and m["json"].get("id") == "evil")
    # Nor can dev2 read dev1's topics (the retained status is not delivered to it).
    assert ct.mqtt.retained(broker.port, f"{BASE}/status", timeout=2, extra_args=dev2) is None
    assert ct.mqtt.retained(broker.port, f"{BASE}/status", timeout=2, extra_args=ops) is not None

    # dev2 connecting with dev1's client id does not throw dev1 off (use_username_as_clientid).
    thief = subprocess.run(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-i", "dev1",
                            "-t", "x", "-W", "2"] + dev2, capture_output=True, text=True, timeout=10)
    assert "disconnected from" not in agent.log_text(), "dev2 took over dev1's connection"

    # dev1's own traffic flows: a command round trip through the broker's ACL.
    ct.publish(broker.port, f"{BASE}/cmd/ping", '{"id":"acl1"}', extra_args=ops)
    res = sub.wait_for(f"{BASE}/cmd/ping/result", lambda m: m["json"] and m["json"].get("id") == "acl1", 10)
    assert res[-1]["json"]["ok"] is True
    rc, _ = agent.stop()
    assert rc == 0

    # A refused publish under MQTT 5: error to the caller, log line, event.
    drv = ct.mqtt.Driver(d, {"mqtt": {"host": "127.0.0.1", "port": broker.port, "username": "dev1",
                                      "password-file": pwfile, "client-id": "dev1-driver"}})
    ct.on_failure(drv.dump)
    drv.send("start")
    drv.expect(r"^connected$", 15)
    drv.send("pub f1 forbidden 1 0 normal {}")
    m = drv.expect(r"^done f1 (.*)$", 10)[0]
    assert "error" in m.group(1) and "135" in m.group(1), m.group(0)
    drv.wait_log(r'broker refused the message on "cellagent/dev1/forbidden": Not authorized \(reason code 135\)')
    ev = sub.wait_for(f"{BASE}/events", lambda m: m["json"] and m["json"].get("type") == "mqtt-publish-refused", 10)[-1]["json"]
    assert ev["reason_code"] == 135 and ev["topic"] == f"{BASE}/forbidden", ev
    drv.send("pub ok1 telemetry 1 1 telemetry {}")
    drv.expect(r"^done ok1 ok$", 10)
    assert drv.close() == 0

    # Under MQTT 3.1.1 the broker cannot say no: the same refused publish looks delivered.
    drv3 = ct.mqtt.Driver(d, {"mqtt": {"host": "127.0.0.1", "port": broker.port, "username": "dev1",
                                       "password-file": pwfile, "client-id": "dev1-driver3", "protocol": "3.1.1"}},
                          name="driver3")
    ct.on_failure(drv3.dump)
    drv3.send("start")
    drv3.expect(r"^connected$", 15)
    drv3.send("pub f3 forbidden 1 0 normal {}")
    drv3.expect(r"^done f3 ok$", 10)
    assert drv3.close() == 0
    broker.stop()


if __name__ == "__main__":
    ct.main(test)
