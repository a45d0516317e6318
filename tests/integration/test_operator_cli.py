#!/usr/bin/python3
"""`cellagent --status` against a running agent (a real mosquitto, no daemons): the summary
and `--json` show the broker connection, and follow it when the broker goes away and comes
back (the file is rewritten on change); the file is group-readable (0640) and replaced
atomically. A status file whose refresh is overdue is reported stale (exit 2), one whose
process is gone (SIGKILL) and no file at all (a clean stop removes it) as not running
(exit 3); a corrupt file is an error (exit 1).

`cellagent --diagnose` with no system bus at all (no daemons): the bundle is still written
(mode 0600), marks ModemManager and NetworkManager as unreachable and holds the status of
the running agent; a bad --since is refused (exit 2), an unwritable --output fails (exit 1),
and a configuration that does not load is put in the bundle with the reason."""
# ctest: labels=integration;mqtt timeout=120
import json
import os
import signal
import stat
import sys
import tarfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402

RUNNING, ERROR, STALE, NOT_RUNNING = 0, 1, 2, 3


def test():
    d = ct.run_dir("test_operator_cli")
    broker = ct.Broker(d).start()
    ct.on_failure(lambda: print(open(broker.log).read()[-3000:]))
    env = {"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=" + os.path.join(d, "no-bus")}
    settings = {"mqtt": {"host": "127.0.0.1", "port": broker.port}}
    agent = ct.Agent(d, settings, env=env, wrapper=ct.mqtt.WRAPPER)
    ct.on_failure(agent.dump_log)

    # Before the agent ever ran: not running, said clearly, on stderr.
    rc, out, err = agent.status()
    assert rc == NOT_RUNNING, (rc, out, err)
    assert "cellagent is not running" in err and out == "", (out, err)
    rc, doc = agent.status_json()
    assert rc == NOT_RUNNING and doc["reader"]["state"] == "not-running", doc

    agent.start()
    agent.wait_log(r"connected to 127\.0\.0\.1:%d" % broker.port)

    def status_is(pred):
        rc, doc = agent.status_json()
        return doc if rc == RUNNING and pred(doc) else None

    doc = ct.wait_until(lambda: status_is(lambda s: s["mqtt"]["state"] == "connected"),
                        ct.scaled(10), "status: broker connected")
    assert doc["reader"] == {"state": "running", "age": doc["reader"]["age"]}, doc
    assert doc["reader"]["age"] <= 2, doc
    assert doc["pid"] == agent.proc.pid or doc["pid"] > 0, doc
    assert doc["device_id"] == "dev1" and doc["refresh"] == 30, doc
    assert doc["mqtt"]["broker"] == "127.0.0.1:%d" % broker.port, doc
    assert doc["modem"] == {"ts": doc["modem"]["ts"], "modem": {"state": "absent"}}, doc
    assert "uplinks" in doc["link"] and "cellular" in doc["link"]["uplinks"], doc
    assert doc["watchdog"]["enabled"] is True, doc
    assert doc["sms"]["enabled"] is True and doc["sms"]["queued"] == 0, doc
    mode = stat.S_IMODE(os.stat(agent.status_file()).st_mode)
    assert mode == 0o640, oct(mode)
    assert not os.path.exists(agent.status_file() + ".tmp")

    rc, out, err = agent.status()
    assert rc == RUNNING, (rc, out, err)
    for line in ("Agent    |", "Broker   |", "Uplinks  |", "Modem    |", "SMS      |",
                 "Watchdog |", "state: connected", "broker: 127.0.0.1:%d" % broker.port,
                 "device id: dev1", "state: absent (no modem)", "cellular: "):
        assert line in out, (line, out)

    check_diagnose(d, agent)

    # On change: the broker goes away, then comes back; the file follows each within the
    # rate limit (1 s), long before the 30 s refresh.
    broker.stop()
    ct.wait_until(lambda: status_is(lambda s: s["mqtt"]["state"] == "disconnected"),
                  ct.scaled(10), "status: broker disconnected")
    broker.start()
    ct.wait_until(lambda: status_is(lambda s: s["mqtt"]["state"] == "connected"),
                  ct.scaled(30), "status: broker connected again")

    # A clean stop removes the file: not running, exit 3.
    rc, _ = agent.stop(signal.SIGTERM)
    assert rc == 0, rc
    assert not os.path.exists(agent.status_file())
    rc, out, err = agent.status()
    assert rc == NOT_RUNNING and "not running" in err, (rc, out, err)

    # SIGKILL leaves the file behind; its process is gone: not running, exit 3.
    agent2 = ct.Agent(d, dict(settings), env=env, name="agent2", wrapper=ct.mqtt.WRAPPER)
    ct.on_failure(agent2.dump_log)
    agent2.start()
    ct.wait_until(lambda: os.path.exists(agent2.status_file()), ct.scaled(10), "status file")
    with open(agent2.status_file()) as f:
        left = json.load(f)
    agent2.kill()
    rc, out, err = agent2.status()
    assert rc == NOT_RUNNING, (rc, out, err)
    assert "process %d is gone" % left["pid"] in err, err

    # A file whose refresh is long overdue, of a live process (this test): stale, exit 2,
    # the summary still printed under a warning.
    left["pid"] = os.getpid()
    left["updated_at"] = "2026-01-01T00:00:00Z"
    with open(agent2.status_file(), "w") as f:
        json.dump(left, f)
    rc, out, err = agent2.status()
    assert rc == STALE, (rc, out, err)
    assert "STALE" in out and "stale" in err, (out, err)
    rc, doc = agent2.status_json()
    assert rc == STALE and doc["reader"]["state"] == "stale" and doc["reader"]["age"] > 60, doc

    # Garbage: an error, exit 1, naming the file.
    with open(agent2.status_file(), "w") as f:
        f.write("{\"format\": 1, \"mqtt\": {")
    rc, out, err = agent2.status()
    assert rc == ERROR and agent2.status_file() in err, (rc, out, err)


def bundle(path):
    with tarfile.open(path, "r:gz") as tar:
        top = tar.getnames()[0]
        return {m.name[len(top) + 1:]: tar.extractfile(m).read().decode()
                for m in tar.getmembers() if m.isfile()}


def check_diagnose(d, agent):
    out = os.path.join(d, "bundle.tar.gz")
    t0 = time.monotonic()
    r = agent.cli("--diagnose", "--output", out)
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t0 < 10
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    b = bundle(out)
    assert "FAILED: the system bus" in b["modemmanager.txt"], b["modemmanager.txt"]
    assert "FAILED: the system bus" in b["networkmanager.txt"], b["networkmanager.txt"]
    assert json.loads(b["status.json"])["mqtt"]["state"] == "connected", b["status.json"]
    assert "# %s:" % agent.config in b["config.txt"], b["config.txt"]
    assert "== routes" in b["system.txt"] and "== kernel" in b["system.txt"], b["system.txt"]

    r = agent.cli("--diagnose", "--since", "6 hours")
    assert r.returncode == 2 and "--since" in r.stderr, (r.returncode, r.stderr)
    r = agent.cli("--diagnose", "--output", os.path.join(d, "no", "such", "dir.tar.gz"))
    assert r.returncode == 1 and "cannot create" in r.stderr, (r.returncode, r.stderr)
    r = agent.cli("--status", "--output", out)
    assert r.returncode == 2, r.returncode

    # A broken configuration: the bundle says why, with the defaults.
    bad = os.path.join(d, "bad.conf")
    with open(bad, "w") as f:
        f.write("[mqtt]\nport=99999\n")
    r = ct.run([ct.CELLAGENT, "--config", bad, "--diagnose", "--output", out], check=False,
               env=agent.env)
    assert r.returncode == 0, r.stderr
    b = bundle(out)
    assert "THE CONFIGURATION DOES NOT LOAD" in b["config.txt"], b["config.txt"]
    assert "%s:2: [mqtt] port" % bad in b["config.txt"], b["config.txt"]


if __name__ == "__main__":
    ct.main(test)
