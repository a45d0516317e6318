#!/usr/bin/python3
"""The agent starts with no ModemManager, NetworkManager, system bus or broker, says that it
waits for them, stays up, reloads its config on SIGHUP (keeping the old one when the new one
is bad), and exits cleanly within 2 s of SIGTERM and SIGINT."""
# ctest: labels=integration;memcheck timeout=300
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402


def test():
    d = ct.run_dir()
    # A system bus address that leads nowhere: no bus, no daemons, no broker.
    env = {"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=" + os.path.join(d, "no-bus")}
    agent = ct.Agent(d, {"mqtt": {"host": "127.0.0.1", "port": ct.free_port()}}, env=env)
    ct.on_failure(agent.dump_log)
    agent.start()
    agent.wait_log(r"starting as device \"dev1\"")
    # Each D-Bus adapter says it waits for its daemon's bus and retries.
    agent.wait_log(r"\[modem\] system bus unavailable: .*; will retry")
    agent.wait_log(r"\[uplink\] cannot reach NetworkManager's bus: .*; retrying in")
    # ... and the MQTT module for its broker.
    agent.wait_log(r"\[mqtt\] reconnecting to 127\.0\.0\.1:\d+ in")
    assert agent.alive(), "agent exited without daemons"
    assert os.path.isdir(os.path.join(d, "state")), "state-dir was not created"

    # SIGHUP with a broken file: logged, old config kept, still running.
    with open(agent.config, "a") as f:
        f.write("[mqtt]\nport=99999\n")
    agent.proc.send_signal(signal.SIGHUP)
    agent.wait_log(r"reload failed, keeping the running configuration")
    agent.wait_log(r"\[mqtt\] port: \"99999\"")
    assert agent.alive()
    # SIGHUP with a valid file: reloaded.
    ct.write_config(agent.config, dict(agent.settings, agent=dict(agent.settings["agent"], **{"log-level": "debug"})))
    agent.proc.send_signal(signal.SIGHUP)
    agent.wait_log(r"configuration reloaded")

    rc, secs = agent.stop(signal.SIGTERM, timeout=5)
    assert rc == 0, f"exit code {rc}"
    assert secs < ct.scaled(2.0), f"SIGTERM took {secs:.2f} s"
    agent.wait_log(r"stopping on SIGTERM")

    agent2 = ct.Agent(d, {"mqtt": {"host": "127.0.0.1", "port": ct.free_port()}}, env=env, name="agent2")
    ct.on_failure(agent2.dump_log)
    agent2.start()
    agent2.wait_log(r"\[modem\] system bus unavailable")
    rc, secs = agent2.stop(signal.SIGINT, timeout=5)
    assert rc == 0 and secs < ct.scaled(2.0), (rc, secs)


def test_cli():
    cfg = os.path.join(ct.SOURCE_DIR, "config", "cellagent.conf")
    out = subprocess.run([ct.CELLAGENT, "--version"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0 and out.stdout.strip().startswith("cellagent "), out
    ok = subprocess.run([ct.CELLAGENT, "--check-config", "--config", cfg], capture_output=True, text=True, timeout=10)
    assert ok.returncode == 0, ok.stderr
    assert "[mqtt]" in ok.stdout and "queue-limit=1000" in ok.stdout
    d = ct.run_dir("check-config")
    bad = ct.write_config(os.path.join(d, "bad.conf"), {"agent": {"device-id": "a/b"}, "mqtt": {"port": 99999}})
    r = subprocess.run([ct.CELLAGENT, "--check-config", "--config", bad], capture_output=True, text=True, timeout=10)
    assert r.returncode == 1, r
    lines = r.stderr.strip().splitlines()
    assert any(l.startswith(bad + ":2: [agent] device-id") for l in lines), lines
    assert any(l.startswith(bad + ":5: [mqtt] port") for l in lines), lines
    assert len(lines) == 2, lines
    # tls=false towards a broker elsewhere: valid, but --check-config warns (naming the key).
    clear = ct.write_config(os.path.join(d, "clear.conf"), {"mqtt": {"host": "broker.example.com"}})
    r = subprocess.run([ct.CELLAGENT, "--check-config", "--config", clear], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 0, r
    assert "warning: [mqtt] tls: false while host \"broker.example.com\"" in r.stderr, r.stderr
    missing = subprocess.run([ct.CELLAGENT, "--config", os.path.join(d, "nope.conf")],
                             capture_output=True, text=True, timeout=10)
    assert missing.returncode == 1 and "cannot read" in missing.stderr, missing
    badlvl = subprocess.run([ct.CELLAGENT, "--log-level", "loud", "--version"], capture_output=True, text=True, timeout=10)
    assert badlvl.returncode == 2 and "--log-level" in badlvl.stderr, badlvl


if __name__ == "__main__":
    ct.main(lambda: (test_cli(), test()))
