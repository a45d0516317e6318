#!/usr/bin/python3
# ctest: labels=integration;lab timeout=420
"""Usage accounting end to end over a real data path: the emulated Fibocom L610 in ECM mode
(NetworkManager -> ModemManager -> the emulated modem -> DHCP on usb0, a veth whose peer
`lan` sits in the "operator" namespace), the agent and a real mosquitto in the device
namespace. The reference for every figure is the operator's side of the link: the peer's
kernel counters (what the device sent is what the operator received, and back).

1. A known transfer (5 MB of TCP through usb0 to the operator) is counted within 1 % on
   <base>/usage, and telemetry's bearer counters and cmd/status show it too (ModemManager reports none
   for this modem). The plan's thresholds fire once each, with an SMS to [sms-alerts].
2. A session dropped by the network and established again is not counted twice.
3. The agent killed (SIGKILL) right after a transfer loses nothing; traffic while the
   agent is stopped (SIGTERM) is counted after the restart; thresholds are not repeated.
   cmd/usage-adjust past the limit: state limit, event usage-limit and its SMS;
   cmd/usage-override lifts the cap (action override) and ends it; bad args are refused.
4. A SIM change (another ICCID, the modem re-plugged) starts a new counter; the old SIM's
   counts stay in the store.
"""

import datetime
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402
import cellagent_test.lab  # noqa: E402
import cellagent_test.modem  # noqa: E402

USAGE = ct.modem.BASE + "/usage"
OPERATOR = "10.201.100.1"
PORT = 5001
MB = 1000 * 1000
ALERT_NUMBER = "+254700000001"
NEW_ICCID = "8925402000000000777"

SINK = r"""
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(1)
print("ready", flush=True)
c, _ = s.accept()
n = 0
while True:
    b = c.recv(65536)
    if not b:
        break
    n += len(b)
print(n, flush=True)
"""

SEND = r"""
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
c.sendall(b"x" * int(sys.argv[3]))
c.shutdown(socket.SHUT_WR)
c.recv(1)
c.close()
"""

lab = broker = sub = agent = None
settings = None


def start_agent():
    return ct.modem.start_agent(lab, broker, **settings)


def setUpModule():
    global lab, broker, sub, agent, settings
    lab = ct.lab.Lab(personality="ecm").start()
    broker = lab.start_broker()
    sub = broker.subscribe("cellagent/#")
    settings = {
        "usage": {"sample-interval": 1, "save-interval": 5, "publish-interval": 0,
                  "timezone": "UTC"},
        # 20 MiB; 5 MB is 23.8 %: both thresholds at once.
        "plan-lab": {"iccid": lab.emu.identity["iccid"], "limit-mb": 20, "alerts": "10;20"},
        "sms-alerts": {"enabled": "true", "numbers": ALERT_NUMBER},
    }
    agent = start_agent()


def tearDownModule():
    if agent and agent.alive():
        agent.stop()
    lab.stop()


def peer_bytes():
    """rx + tx of the operator's end of the link (the reference)."""
    total = 0
    for name in ("rx_bytes", "tx_bytes"):
        out = lab.net.nsexec(lab.net.op, ["cat", "/sys/class/net/lan/statistics/" + name])
        total += int(out.stdout.strip())
    return total


def transfer(nbytes):
    """nbytes of TCP payload from the device to the operator, through usb0."""
    sink = subprocess.Popen(["ip", "netns", "exec", lab.net.op, "/usr/bin/python3", "-c", SINK,
                             OPERATOR, str(PORT)], stdout=subprocess.PIPE, text=True)
    try:
        ct.wait_until(lambda: sink.stdout.readline().strip() == "ready", 10, "the sink")
        lab.run_in_dut(["/usr/bin/python3", "-c", SEND, OPERATOR, str(PORT), str(nbytes)],
                       timeout=60)
        received = int(sink.stdout.readline().strip())
        sink.wait(10)
    finally:
        if sink.poll() is None:
            sink.kill()
            sink.wait()
        sink.stdout.close()
    assert received == nbytes, "the sink received %d of %d bytes" % (received, nbytes)


def usage_now():
    """cmd/usage: the agent reads the counters now; its result is the payload."""
    r = ct.modem.command(broker, sub, "usage")
    assert r["ok"], r
    return r["result"]


def payloads(since=0):
    return [m["json"] for m in sub.messages[since:] if m["topic"] == USAGE]


def wait_usage(pred, timeout=30, since=0):
    def found():
        for p in payloads(since):
            if p and pred(p):
                return p
        return None
    return ct.wait_until(found, ct.scaled(timeout), "a usage payload matching the condition")


def wait_connected(timeout=40):
    """The cellular session up (the agent's uplink policy may bring it up itself)."""
    def up():
        facts = ct.modem.command(broker, sub, "telemetry")["result"]
        return facts.get("bearer", {}).get("connected") is True
    if not up():
        lab.nm.nmcli("connection", "up", "cellular", check=False)
    ct.wait_until(up, timeout, "the cellular session up", 0.5)


def assert_counted(case, counted, reference, what):
    """counted within 1 % of the operator's figure."""
    case.assertGreater(reference, 0, what)
    case.assertLessEqual(abs(counted - reference), reference / 100,
                         "%s: counted %d, the operator saw %d" % (what, counted, reference))


def read_store():
    with open(os.path.join(agent.settings["agent"]["state-dir"], "usage.json")) as f:
        return json.load(f)


class UsageTest(unittest.TestCase):

    def test_1_known_transfer(self):
        ct.modem.wait_telemetry(sub, ct.modem.state_is("registered", "connected"), timeout=40)
        wait_connected()
        p = wait_usage(lambda p: p["iccid"] == lab.emu.identity["iccid"])
        self.assertEqual(p["plan"], "lab")
        self.assertEqual(p["limit_bytes"], 20 * 1024 * 1024)
        mark = ct.modem.mark(sub)
        t0, p0 = usage_now()["total_bytes"], peer_bytes()
        tel0 = ct.modem.command(broker, sub, "telemetry")["result"]["bearer"]
        transfer(5 * MB)
        t1, p1 = usage_now()["total_bytes"], peer_bytes()
        self.assertGreaterEqual(t1 - t0, 5 * MB)
        assert_counted(self, t1 - t0, p1 - p0, "5 MB transfer")
        # Telemetry's bearer counters come from the same source.
        tel1 = ct.modem.command(broker, sub, "telemetry")["result"]["bearer"]
        self.assertGreaterEqual(tel1["tx_bytes"] - (tel0["tx_bytes"] or 0), 5 * MB)
        # And cmd/status (its SMS text too).
        status = ct.modem.command(broker, sub, "status")["result"]
        self.assertGreaterEqual(status["tx_bytes"], tel1["tx_bytes"])
        # 23.8 % of the plan: one event for the highest threshold crossed, and its SMS.
        e = ct.modem.wait_event(sub, "usage-threshold", timeout=10, since=mark)
        self.assertEqual(e["threshold"], 20)
        self.assertEqual(e["plan"], "lab")
        self.assertEqual(e["sim"], "..." + lab.emu.identity["iccid"][-4:])
        self.assertEqual(e["sms"], 1)
        self.assertNotIn(lab.emu.identity["iccid"], json.dumps(e))
        lab.modem.wait_sent(lambda m: "data plan lab at 2" in m.get("text", ""), timeout=60)
        p = wait_usage(lambda p: p["total_bytes"] >= t1, since=mark)
        self.assertEqual(p["state"], "warning")
        self.assertEqual(p["action"], "none")
        self.assertGreater(p["percent"], 20)
        self.assertLess(p["percent"], 30)

    def test_2_session_drop_not_double_counted(self):
        wait_connected()
        t0, p0 = usage_now()["total_bytes"], peer_bytes()
        mark = ct.modem.mark(sub)
        lab.modem.drop_session(notify=True)
        ct.modem.wait_telemetry(sub, lambda x: ct.modem.field(x, "bearer.connected") is False,
                                timeout=30, since=mark)
        wait_connected()
        transfer(1 * MB)
        t1, p1 = usage_now()["total_bytes"], peer_bytes()
        assert_counted(self, t1 - t0, p1 - p0, "across a session drop")
        self.assertGreaterEqual(t1 - t0, 1 * MB)

    def test_3_restarts_lose_nothing(self):
        global agent
        wait_connected()
        t0, p0 = usage_now()["total_bytes"], peer_bytes()
        mark = ct.modem.mark(sub)
        transfer(2 * MB)
        # SIGKILL right away: the saved reading and the kernel's counters give the rest.
        agent.kill()
        agent = start_agent()
        wait_usage(lambda p: p["iccid"] == lab.emu.identity["iccid"], since=mark)
        wait_connected()
        t1, p1 = usage_now()["total_bytes"], peer_bytes()
        assert_counted(self, t1 - t0, p1 - p0, "across SIGKILL")
        # A clean stop, traffic while the agent is away, a start.
        rc, _ = agent.stop()
        self.assertEqual(rc, 0)
        transfer(1 * MB)
        mark = ct.modem.mark(sub)
        agent = start_agent()
        wait_usage(lambda p: p["iccid"] == lab.emu.identity["iccid"], since=mark)
        wait_connected()
        t2, p2 = usage_now()["total_bytes"], peer_bytes()
        assert_counted(self, t2 - t0, p2 - p0, "across SIGKILL and a stop")
        # The thresholds of this cycle were reported before the restarts: not again.
        self.assertEqual(ct.modem.events(sub, mark, "usage-threshold"), [])

    def test_3b_adjust_and_override(self):
        mark = ct.modem.mark(sub)
        # The operator's portal says 21 MB: past the 20 MiB limit.
        r = ct.modem.command(broker, sub, "usage-adjust", {"bytes": 21000000})
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["result"]["billable_estimate_bytes"], 21000000)
        self.assertEqual(r["result"]["state"], "limit")
        self.assertEqual(r["result"]["action"], "alert")
        e = ct.modem.wait_event(sub, "usage-adjusted", timeout=10, since=mark)
        self.assertEqual(e["to"], 21000000)
        self.assertEqual(e["source"], "mqtt")
        e = ct.modem.wait_event(sub, "usage-limit", timeout=10, since=mark)
        self.assertEqual(e["action"], "alert")
        self.assertEqual(e["sms"], 1)
        lab.modem.wait_sent(lambda m: "data plan lab limit reached" in m.get("text", ""),
                            timeout=60)
        wait_usage(lambda p: p["state"] == "limit", since=mark)
        # Lift the cap for an hour, then end the override.
        r = ct.modem.command(broker, sub, "usage-override", {"until": "2000-01-01T00:00:00Z"})
        self.assertFalse(r["ok"])
        self.assertIn("future", r["error"])
        r = ct.modem.command(broker, sub, "usage-override", {"until": "tomorrow"})
        self.assertFalse(r["ok"])
        # The agent shares this machine's clock.
        until = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
                 ).strftime("%Y-%m-%dT%H:%M:%SZ")
        r = ct.modem.command(broker, sub, "usage-override", {"until": until})
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["result"]["action"], "override")
        self.assertEqual(r["result"]["override_until"], until)
        self.assertEqual(r["result"]["state"], "limit")
        wait_usage(lambda p: p["action"] == "override", since=mark)
        r = ct.modem.command(broker, sub, "usage-override", {"until": None})
        self.assertEqual(r["result"]["action"], "alert")
        self.assertIsNone(r["result"]["override_until"])
        # Back to the measured figure: no longer at the limit.
        measured = r["result"]["total_bytes"]
        r = ct.modem.command(broker, sub, "usage-adjust", {"bytes": measured})
        self.assertEqual(r["result"]["state"], "warning")
        self.assertEqual(r["result"]["action"], "none")

    def test_4_sim_change_new_counter(self):
        global agent
        old = lab.emu.identity["iccid"]
        old_total = usage_now()["total_bytes"]
        self.assertGreater(old_total, 8 * MB)
        mark = ct.modem.mark(sub)
        lab.modem.set(iccid=NEW_ICCID)
        lab.mm.unplug()
        ct.wait_until(lambda: not lab.mm.modems(), 10, "the modem object to go")
        lab.mm.replug()
        p = wait_usage(lambda p: p["iccid"] == NEW_ICCID, timeout=60, since=mark)
        self.assertIsNone(p["plan"])  # the lab plan names the old ICCID only
        self.assertLess(p["total_bytes"], 100 * 1000)
        wait_connected(60)
        t0, p0 = usage_now()["total_bytes"], peer_bytes()
        transfer(1 * MB)
        t1, p1 = usage_now()["total_bytes"], peer_bytes()
        assert_counted(self, t1 - t0, p1 - p0, "the new SIM")
        # The old SIM's counts are kept: what it had, plus at most the few packets (ARP,
        # DHCP) that crossed the interface between that reading and the unplug; none of the
        # new SIM's transfer. The new one's are saved within the save interval (5 s).
        def saved():
            sims = {s["iccid"]: s for s in read_store()["sims"]}
            new = sims.get(NEW_ICCID)
            return sims if new and new["cur"]["tx_bytes"] >= 1 * MB else None
        sims = ct.wait_until(saved, ct.scaled(15), "the new SIM's counts saved")
        kept = sims[old]["cur"]["rx_bytes"] + sims[old]["cur"]["tx_bytes"]
        self.assertGreaterEqual(kept, old_total)
        self.assertLess(kept - old_total, 16 * 1024, "the old SIM counted more than background")


if __name__ == "__main__":
    ct.lab.main()
