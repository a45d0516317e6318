#!/usr/bin/python3
"""--log-level survives a reload. `systemctl reload cellagent` runs the unit's ExecReload,
which sends SIGHUP; the agent then reads its files again, and [agent] log-level in them
must not replace the level given on the command line (log-level.h: cmd/log-level, then
--log-level, then the file). Runs without daemons or broker, like test_agent_lifecycle."""
# ctest: labels=integration timeout=120
import os
import re
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402


def wait_log_after(agent, offset, pattern, timeout=10):
    rx = re.compile(pattern)
    return ct.wait_until(lambda: rx.search(agent.log_text()[offset:]), ct.scaled(timeout),
                        f"agent log after reload /{pattern}/")


def test():
    # systemctl reload is SIGHUP for this unit.
    with open(os.path.join(ct.SOURCE_DIR, "systemd", "cellagent.service")) as f:
        assert re.search(r"^ExecReload=/bin/kill -HUP \$MAINPID$", f.read(), re.M)

    d = ct.run_dir()
    env = {"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=" + os.path.join(d, "no-bus")}
    port = ct.free_port()
    settings = {"agent": {"log-level": "error"}, "mqtt": {"host": "127.0.0.1", "port": port}}
    # The harness starts every agent with --log-level debug.
    agent = ct.Agent(d, settings, env=env)
    assert "--log-level" not in agent.args
    ct.on_failure(agent.dump_log)
    agent.start()
    agent.wait_log(r"debug +\[mqtt\] state: ")

    # The file now asks for warning, and the MQTT settings change, so the MQTT module logs
    # its state changes (debug) during the reload itself.
    offset = len(agent.log_text())
    settings["agent"]["log-level"] = "warning"
    settings["mqtt"]["topic-prefix"] = "other"
    ct.write_config(agent.config, settings)
    agent.proc.send_signal(signal.SIGHUP)
    wait_log_after(agent, offset, r"\[mqtt\] broker settings changed")
    wait_log_after(agent, offset, r"debug +\[mqtt\] state: .* -> waiting for the uplink")
    wait_log_after(agent, offset, r"\[agent\] configuration reloaded")

    # A second reload with nothing changed keeps it too.
    offset = len(agent.log_text())
    agent.proc.send_signal(signal.SIGHUP)
    wait_log_after(agent, offset, r"\[agent\] configuration reloaded")
    assert agent.alive()
    rc, _ = agent.stop(signal.SIGTERM, timeout=5)
    assert rc == 0, f"exit code {rc}"


if __name__ == "__main__":
    ct.main(test)
