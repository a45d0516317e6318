#!/usr/bin/python3
"""The usage store's file without daemons: a damaged usage.json is moved aside to
usage.json.bad with a warning naming the problem, and the agent runs on (counting starts
over, nothing crashes); a reload that changes [usage] and the plans re-reads the file and
goes on; a stop exits 0."""
# ctest: labels=integration;memcheck timeout=120
import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402


def test():
    d = ct.run_dir()
    state = os.path.join(d, "state")
    os.makedirs(state, exist_ok=True)
    damaged = '{"version":1,"sims":[{"iccid":"8925402123456789012","last_seen":1,"cur":'
    with open(os.path.join(state, "usage.json"), "w") as f:
        f.write(damaged)
    env = {"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=" + os.path.join(d, "no-bus")}
    settings = {"mqtt": {"host": "127.0.0.1", "port": ct.free_port()},
                "usage": {"save-interval": 5},
                "plan-a": {"iccid": "8925402*", "limit-mb": 100}}
    agent = ct.Agent(d, settings, env=env)
    ct.on_failure(agent.dump_log)
    agent.start()
    agent.wait_log(r"\[usage\] .*usage\.json is unusable \(not a JSON object\): moved to "
                   r".*usage\.json\.bad, counting starts over")
    with open(os.path.join(state, "usage.json.bad")) as f:
        assert f.read() == damaged, "the damaged file was not kept as it was"
    assert not os.path.exists(os.path.join(state, "usage.json"))
    assert agent.alive()
    # Running its loop (signal handlers installed) once it retries the broker.
    agent.wait_log(r"\[mqtt\] reconnecting to 127\.0\.0\.1:\d+ in")

    # A reload that changes the plans and [usage]: applied, the agent runs on.
    ct.write_config(agent.config, dict(settings, usage={"save-interval": 60},
                                       **{"plan-b": {"cycle": "weekly", "cycle-start-day": 7}}))
    agent.proc.send_signal(signal.SIGHUP)
    agent.wait_log(r"configuration reloaded")
    # An invalid plan is refused naming group and key; the running config stays.
    with open(agent.config, "a") as f:
        f.write("[plan-c]\ncycle=days\n")
    agent.proc.send_signal(signal.SIGHUP)
    agent.wait_log(r"\[plan-c\] cycle-anchor: required with cycle=days")
    assert agent.alive()
    rc, _ = agent.stop(signal.SIGTERM, timeout=5)
    assert rc == 0, f"exit code {rc}"


if __name__ == "__main__":
    ct.main(test)
