#!/usr/bin/python3
"""A modem that ModemManager removed while the agent was starting is not held for good.

GDBusObjectManagerClient can keep an object removed while it was being set up (the
InterfacesRemoved signal handled before the GetManagedObjects reply); before the fix the
agent kept "using" that ghost and never took the modem plugged in after it. The real
ModemManager produces this only with a replug in the few milliseconds of the agent's start,
so this test uses a fake ModemManager (tests/tools/fake-mm-ghost.py) whose object list
names a modem nothing answers for: the agent finds it gone, and takes the next modem.
"""
# ctest: labels=integration timeout=120
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402

FAKE = os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "tools", "fake-mm-ghost.py")


def test():
    ct.need("mosquitto", "mosquitto_sub", "dbus-daemon")
    d = ct.run_dir()
    broker = ct.Broker(d).start()
    bus = ct.PrivateBus(d).start()
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=bus.address)
    fake = subprocess.Popen(["/usr/bin/python3", FAKE], env=env, stdout=subprocess.PIPE, text=True)
    ct.at_exit(fake.kill)
    assert fake.stdout.readline().strip() == "ready", "the fake ModemManager did not start"
    agent = ct.Agent(d, {"mqtt": {"host": "127.0.0.1", "port": broker.port}},
                     env={"DBUS_SYSTEM_BUS_ADDRESS": bus.address})
    ct.on_failure(agent.dump_log)
    agent.start()
    agent.wait_log(r"\[modem\] using modem Modem/0 ", 20)
    fake.send_signal(signal.SIGUSR1)
    assert fake.stdout.readline().startswith("added"), "the fake did not add Modem/1"
    agent.wait_log(r"\[modem\] using modem Modem/1 \(FAKE GHOST-1", 20)
    assert "modem Modem/0 no longer exists in ModemManager" in agent.log_text()
    assert agent.alive()
    rc, _ = agent.stop()
    assert rc == 0, f"exit code {rc}"
    fake.send_signal(signal.SIGTERM)
    fake.wait(10)
    bus.stop()
    broker.stop()


if __name__ == "__main__":
    ct.main(test)
