#!/usr/bin/python3
"""The broker closes the agent's socket: a second client connects with the same client id
(mosquitto 2.0 closes the older connection; a broker may also send an MQTT 5 DISCONNECT with
reason 142 "session taken over", which the agent logs). The two then keep taking the id from each other. The agent must
not busy-loop (CPU time over 10 s under 1 %, from /proc/<pid>/stat), must keep reconnecting
with backoff, and is online again once the other client is gone."""
# ctest: labels=integration;mqtt timeout=120
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402


def scenario(d, broker, env, protocol):
    name = f"agent-{protocol}"
    agent = ct.Agent(d, {"mqtt": {"host": "127.0.0.1", "port": broker.port, "protocol": protocol}},
                     env=env, name=name, wrapper=ct.mqtt.WRAPPER)
    ct.on_failure(agent.dump_log)
    agent.start()
    ct.mqtt.wait_retained(broker.port, "cellagent/dev1/status", lambda s: s.get("state") == "online")
    connects0 = len(re.findall(r"connected to 127", agent.log_text()))

    thief = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-i", "dev1",
                              "-V", "mqttv5" if protocol == "5" else "mqttv311", "-t", "unrelated/#"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ct.at_exit(lambda: thief.poll() is None and thief.kill())
    agent.wait_log(r"disconnected from 127\.0\.0\.1:%d" % broker.port, 10)
    # Measure while the two fight over the id.
    cpu0, t0 = ct.cpu_seconds(agent.proc.pid), time.monotonic()
    time.sleep(10)  # the measurement window itself, not a wait for an event
    cpu1, t1 = ct.cpu_seconds(agent.proc.pid), time.monotonic()
    share = (cpu1 - cpu0) / (t1 - t0)
    text = agent.log_text()
    connects = len(re.findall(r"connected to 127", text)) - connects0
    delays = re.findall(r"reconnecting to \S+ in ([0-9.]+) s", text)
    print(f"MQTT {protocol}: agent CPU {cpu1 - cpu0:.3f} s over {t1 - t0:.1f} s ({share:.2%}); "
          f"{connects} reconnects; delays {delays}")
    assert share < 0.01, f"agent used {share:.2%} CPU while its connection was taken over"
    assert connects >= 1, "the agent did not reconnect"
    # mosquitto 2.0.11 closes the old connection without a DISCONNECT, under both versions.
    assert re.search(r"disconnected from 127\S+ after \d+ s: ", text), "no disconnect logged"
    thief.terminate()
    thief.wait(5)
    ct.mqtt.wait_retained(broker.port, "cellagent/dev1/status", lambda s: s.get("state") == "online", timeout=60)
    # The last connection lasts: the last "connected to" is not followed by a disconnect.
    ct.wait_until(lambda: re.search(r"connected to 127[^\n]*\n(?![\s\S]*disconnected from)", agent.log_text()),
                  60, "a lasting connection")
    rc, _ = agent.stop()
    assert rc == 0


def test():
    ct.need("mosquitto", "mosquitto_sub")
    d = ct.run_dir()
    env = {"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=" + os.path.join(d, "no-bus")}
    broker = ct.Broker(d).start()
    ct.on_failure(lambda: print(open(broker.log).read()[-2000:]))
    for protocol in ("5", "3.1.1"):
        scenario(d, broker, env, protocol)


if __name__ == "__main__":
    ct.main(test)
