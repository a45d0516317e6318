#!/usr/bin/python3
"""The system bus restarts under a running agent (a private dbus-daemon of type system at a
fixed socket path, no ModemManager or NetworkManager on it):
- the agent survives each restart (every test runs with G_DEBUG=fatal-criticals: a client
  left on the closed connection is a critical, and the agent would abort);
- both D-Bus adapters come back each time: the agent holds its two connections again (the
  modem and uplink modules each own a private one, agent/core/bus.h) and logs that it is
  following ModemManager and NetworkManager again;
- MQTT is untouched (status stays online, no reconnect);
- SIGTERM still exits 0."""
# ctest: labels=integration timeout=180
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402

RESTARTS = 3


def test():
    ct.need("mosquitto", "mosquitto_sub", "dbus-daemon", "busctl")
    d = ct.run_dir()
    broker = ct.Broker(d).start()
    bus = ct.PrivateBus(d).start()
    agent = ct.Agent(d, {"mqtt": {"host": "127.0.0.1", "port": broker.port}},
                     env={"DBUS_SYSTEM_BUS_ADDRESS": bus.address})
    ct.on_failure(agent.dump_log)
    agent.start()
    ct.mqtt.wait_retained(broker.port, "cellagent/dev1/status", lambda s: s.get("state") == "online")
    pid = agent.proc.pid
    ct.wait_until(lambda: bus.client_pids().count(pid) == 2, ct.scaled(20),
                  "the agent's two bus connections (modem and uplink)")
    agent.wait_log(r"\[uplink\] connected to NetworkManager \(not running yet\)")
    agent.wait_log(r"\[modem\] waiting for ModemManager on the system bus")

    for i in range(1, RESTARTS + 1):
        text = agent.log_text()
        n_nm = text.count("[uplink] connected to NetworkManager")
        n_mm = text.count("[modem] waiting for ModemManager on the system bus")
        bus.stop()
        agent.wait_log(r"\[modem\] system bus closed")
        assert agent.alive(), f"the agent died when the bus closed (restart {i})"
        bus.start()
        ct.wait_until(lambda: bus.client_pids().count(pid) == 2, ct.scaled(30),
                      f"the agent's two bus connections after restart {i}")
        ct.wait_until(lambda: agent.log_text().count("[uplink] connected to NetworkManager") > n_nm
                      and agent.log_text().count("[modem] waiting for ModemManager on the system "
                                                "bus") > n_mm,
                      ct.scaled(30), f"both adapters following the bus again after restart {i}")
        assert agent.alive(), f"the agent died after restart {i}"

    text = agent.log_text()
    assert "connection is closed" not in text, "a client used the closed bus connection"
    assert text.count("[mqtt] connected to") == 1, "MQTT reconnected while the bus restarted"
    rc, _ = agent.stop()
    assert rc == 0, f"exit code {rc}"
    bus.stop()
    broker.stop()


if __name__ == "__main__":
    ct.main(test)
