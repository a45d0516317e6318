#!/usr/bin/python3
"""cmd/diagnose over a real mosquitto (no daemons: their parts say so): the bundle arrives
as base64 chunks on <base>/diagnose/<bundle>/<n> (JSON {"bundle","n","of","data"}, each at
most [diagnose] chunk-size bytes), they reassemble to the size and SHA-256 the result
announces, and the whole is a tar.gz made by cmd/diagnose without the journal. A second
request within the hour is refused unless forced; a bundle over [diagnose] max-size is
refused and not one chunk of it is sent; bad args are refused."""
# ctest: labels=integration;mqtt;memcheck timeout=120
import base64
import hashlib
import io
import os
import signal
import sys
import tarfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402

BASE = "cellagent/dev1"
CHUNK = 1024


def command(broker, sub, cid, args=None, timeout=20):
    req = {"id": cid}
    if args is not None:
        req["args"] = args
    broker.publish(BASE + "/cmd/diagnose", req)
    return sub.wait_for(BASE + "/cmd/diagnose/result",
                        lambda m: (m["json"] or {}).get("id") == cid,
                        timeout=ct.scaled(timeout))[0]["json"]


def chunk_msgs(sub, bundle=None):
    prefix = BASE + "/diagnose/"
    return [m for m in sub.matching()
            if m["topic"].startswith(prefix)
            and (bundle is None or m["topic"].startswith(prefix + bundle + "/"))]


def reassemble(sub, result):
    """Wait for every chunk of the result's bundle; return the bytes."""
    bundle, count = result["bundle"], result["chunks"]
    msgs = ct.wait_until(lambda: (lambda ms: ms if len(ms) >= count else None)(
        chunk_msgs(sub, bundle)), ct.scaled(20), "%d chunks of %s" % (count, bundle))
    parts = {}
    for m in msgs:
        j = m["json"]
        n = int(m["topic"].rsplit("/", 1)[1])
        assert j["bundle"] == bundle and j["n"] == n and j["of"] == count, (m["topic"], j)
        assert n not in parts, "chunk %d twice" % n
        data = base64.b64decode(j["data"], validate=True)
        assert 0 < len(data) <= CHUNK, len(data)
        parts[n] = data
    assert sorted(parts) == list(range(count)), sorted(parts)
    return b"".join(parts[n] for n in range(count))


def test():
    d = ct.run_dir("test_diagnose_mqtt")
    broker = ct.Broker(d).start()
    ct.on_failure(lambda: print(open(broker.log).read()[-3000:]))
    env = {"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=" + os.path.join(d, "no-bus")}
    settings = {"mqtt": {"host": "127.0.0.1", "port": broker.port},
                "diagnose": {"chunk-size": CHUNK}}
    sub = broker.subscribe([BASE + "/#"])
    agent = ct.Agent(d, settings, env=env, wrapper=ct.mqtt.WRAPPER)
    ct.on_failure(agent.dump_log)
    agent.start()
    sub.wait_for(BASE + "/status", lambda m: (m["json"] or {}).get("state") == "online")

    r = command(broker, sub, "d1")
    assert r["ok"] is True, r
    res = r["result"]
    assert res["chunks"] == (res["size"] + CHUNK - 1) // CHUNK and res["chunks"] >= 2, res
    assert res["chunk_size"] == CHUNK and res["topic"] == BASE + "/diagnose/" + res["bundle"], res
    data = reassemble(sub, res)
    assert len(data) == res["size"], (len(data), res)
    assert hashlib.sha256(data).hexdigest() == res["sha256"], res
    assert res["size"] <= 1048576
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        names = tar.getnames()
        top = names[0]
        assert top == res["name"], (names, res)
        files = {n[len(top) + 1:] for n in names if n != top}
        assert "journal.txt" not in files, files
        assert {"README.txt", "config.txt", "status.json", "modemmanager.txt",
                "networkmanager.txt", "system.txt"} <= files, files
        readme = tar.extractfile(top + "/README.txt").read().decode()
        assert "(cmd/diagnose)" in readme and "journal:         not included" in readme, readme

    # Within the hour: refused, nothing sent; forced: a new bundle.
    before = len(chunk_msgs(sub))
    r = command(broker, sub, "d2")
    assert r["ok"] is False and "at most one bundle an hour" in r["error"], r
    r = command(broker, sub, "d3", {"force": True})
    assert r["ok"] is True and r["result"]["bundle"] != res["bundle"], r
    data = reassemble(sub, r["result"])
    assert hashlib.sha256(data).hexdigest() == r["result"]["sha256"]
    assert len(chunk_msgs(sub)) == before + r["result"]["chunks"]

    r = command(broker, sub, "d4", {"force": "yes"})
    assert r["ok"] is False and "args.force" in r["error"], r

    # Over the cap: refused, and not one chunk of it (chunks go out before the result).
    settings["diagnose"]["max-size"] = 1024
    ct.write_config(agent.config, settings)
    agent.proc.send_signal(signal.SIGHUP)
    agent.wait_log(r"configuration reloaded")
    before = len(chunk_msgs(sub))
    r = command(broker, sub, "d5", {"force": True})
    assert r["ok"] is False and "bundle too large" in r["error"], r
    assert "max-size is 1024" in r["error"], r
    assert len(chunk_msgs(sub)) == before, chunk_msgs(sub)[before:]

    rc, _ = agent.stop()
    assert rc == 0, rc


if __name__ == "__main__":
    ct.main(test)
