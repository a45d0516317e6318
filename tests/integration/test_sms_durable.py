#!/usr/bin/python3
"""Nothing lost: the SMS bridge across broker, agent and ModemManager failures (lab: real
ModemManager, emulated modem, real mosquitto with persistence so the test's subscriber
keeps its session across broker restarts).

- SMS arriving while the broker is down leave the modem once spooled and are published
  once it returns.
- The agent killed (SIGKILL) after a request was queued: sent exactly once after restart.
- The agent killed while the modem was transmitting: not sent a second time.
- The agent killed after an SMS was received but before publication: published after
  the restart, once.
- ModemManager stalled (SIGSTOP) during a send, for longer than send-timeout and the
  modem slower still: transmitted once (the Send call is not cut short and a send whose
  outcome is unknown is never repeated while ModemManager holds its SMS object).
- Damaged storage: a queued request whose spool record is damaged gets a final "failed"
  result (not "queued" for ever); damaged journal lines and records are reported as
  events; an outgoing journal that cannot be opened turns sending off, not receiving.
- ModemManager restarted while requests wait (modem not registered): sent after it
  returns; a received message waiting for the broker (already off the modem) is published
  once, with its id.
"""
# ctest: labels=integration;lab timeout=300
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402
import cellagent_test.lab  # noqa: E402
import cellagent_test.sms  # noqa: E402
from cellagent_test.sms import new_id, valid_request  # noqa: E402

rig = None
TS = "2024-06-01T08:00:00+00:00"


def setUpModule():
    global rig
    rig = ct.sms.SmsRig(sms={"resync-delay": 0})
    rig.start_agent()


def tearDownModule():
    rig.stop()


def from_(sender):
    return lambda j: j.get("from") == sender


def spooled_id(sender_text):
    """The id the agent logged when it spooled a received message (last one)."""
    ids = re.findall(r"received message (in-[0-9a-f]+) from", rig.agent.log_text())
    return ids[-1] if ids else None


class Durable(unittest.TestCase):

    def setUp(self):
        if not rig.agent.alive():
            rig.start_agent()
        if rig.broker.proc is None:
            rig.broker.start()
        rig.lab.modem.set_registration(stat="home")
        rig.lab.mm.wait_state(["registered", "connected"], timeout=30)

    def hold_sending(self):
        """The network goes away: the agent holds requests (modem not registered)."""
        rig.lab.modem.set_registration(stat="searching")
        rig.lab.mm.wait_state(["searching", "enabled"], timeout=30)

    def spooled_count(self):
        return rig.log_count(r"received message in-[0-9a-f]+ from")

    def test_broker_down_incoming(self):
        sender = "+254711000701"
        before = self.spooled_count()
        rig.broker.stop()
        rig.lab.modem.deliver_sms("while the broker is down", sender=sender, timestamp=TS)
        rig.wait_log_count(r"received message in-[0-9a-f]+ from", before + 1)
        # Not acknowledged, but on disk: deleted from the modem already, so the storage does
        # not fill while the broker is away.
        ct.wait_until(lambda: rig.stored() == [], 20, "the modem storage to be empty")
        rig.broker.start()
        msg = rig.wait_incoming(from_(sender), timeout=60)[0]
        self.assertEqual(msg["text"], "while the broker is down")
        ct.wait_until(lambda: rig.stored() == [], 20, "the modem storage to be empty")
        self.assertEqual(len(rig.incoming(from_(sender))), 1)

    def test_kill_after_queued(self):
        self.hold_sending()
        rid = new_id("kill-q")
        rig.request(valid_request(rid, to="+254700000801", text="sent exactly once"))
        rig.wait_result(rid, "queued")
        rig.kill_agent()
        rig.lab.modem.set_registration(stat="home")
        rig.start_agent()
        rig.wait_result(rid, "sent", timeout=60)
        self.assertEqual(len(rig.sent_to("+254700000801")), 1)
        self.assertEqual([r["status"] for r in rig.results(rid)], ["queued", "sent"])

    def test_kill_while_transmitting(self):
        rig.lab.modem.delay_next_send(3)
        rid = new_id("kill-tx")
        sending = rig.log_count(r"request %s: sending" % rid)
        rig.request(valid_request(rid, to="+254700000802", text="in flight"))
        rig.wait_log_count(r"request %s: sending" % rid, sending + 1)
        rig.kill_agent()
        rig.start_agent()
        sent = rig.wait_result(rid, "sent", timeout=60)[0]
        msgs = rig.sent_to("+254700000802")
        self.assertEqual(len(msgs), 1, msgs)
        self.assertEqual(sent["reference"], msgs[0]["references"][-1])
        rig.agent.wait_log(r"request %s: an interrupted attempt may still be under way" % rid)

    def test_modemmanager_stalled_while_sending(self):
        # ModemManager stops answering right after the agent called Send, for four times
        # send-timeout, and the modem then takes 15 s to transmit: an agent that gave up on
        # the call and sent again (or re-sent after a short wait) transmits twice.
        rig.stop_agent()
        rig.start_agent(**{"send-timeout": 5})
        try:
            rig.lab.modem.delay_next_send(15, count=2)
            rid, after = new_id("stall"), new_id("stall-next")
            sending = rig.log_count(r"request %s: sending" % rid)
            rig.request(valid_request(rid, to="+254700000804", text="sent once"))
            rig.wait_log_count(r"request %s: sending" % rid, sending + 1)
            rig.lab.mm.pause()
            try:
                # The fault itself: a stall of a fixed length (not a wait for an outcome).
                time.sleep(20)
            finally:
                rig.lab.mm.resume()
            sent = rig.wait_result(rid, "sent", timeout=120)[0]
            # The sender works in order: once the next request went out, a second copy of
            # the first would have been transmitted before it.
            rig.request(valid_request(after, to="+254700000805", text="after the stall"))
            rig.wait_result(after, "sent", timeout=120)
            msgs = rig.sent_to("+254700000804")
            self.assertEqual(len(msgs), 1, msgs)
            self.assertEqual(sent["reference"], msgs[0]["references"][-1])
            self.assertEqual([r["status"] for r in rig.results(rid)], ["queued", "sent"])
        finally:
            rig.stop_agent()
            rig.sms_settings.pop("send-timeout", None)
            rig.start_agent()

    def test_damaged_storage(self):
        sms_dir = os.path.join(rig.state_dir, "sms")
        journal = os.path.join(sms_dir, "in-published.journal")
        sender = "+254711000705"
        rig.lab.modem.deliver_sms("before the damage", sender=sender, timestamp=TS)
        rig.wait_incoming(from_(sender), timeout=60)

        def journal_lines():
            with open(journal) as f:
                return f.readlines()
        ct.wait_until(journal_lines, 20, "a line in the in-published journal")
        # 1. A queued request whose spool record is damaged while the agent is stopped, and
        # a damaged line (not the last, which a power cut can tear) in a journal.
        self.hold_sending()
        rid = new_id("damaged")
        rig.request(valid_request(rid, to="+254700000806", text="damaged on disk"))
        rig.wait_result(rid, "queued")
        rig.stop_agent()
        out = os.path.join(sms_dir, "out")
        records = [os.path.join(out, n) for n in os.listdir(out) if not n.endswith(".bad")]
        damaged = [r for r in records if rid in open(r, errors="replace").read()]
        self.assertEqual(len(damaged), 1, records)
        with open(damaged[0], "w") as f:
            f.write('{"request": {"id": ')
        lines = journal_lines()
        with open(journal, "w") as f:
            f.write("not a journal line\n" + "".join(lines))
        rig.start_agent()
        rig.lab.modem.set_registration(stat="home")
        failed = rig.wait_result(rid, "failed", timeout=30)[0]
        self.assertIn("damaged", failed["error"])
        self.assertEqual(rig.sent_to("+254700000806"), [])
        ct.wait_until(lambda: rig.events("sms-spool-damaged"), 10, "event sms-spool-damaged")
        ct.wait_until(lambda: [e for e in rig.events("sms-journal-damaged")
                               if e.get("journal") == "in-published" and e.get("lines") == 1],
                      10, "event sms-journal-damaged for in-published")
        # 2. The outgoing journal cannot be opened (a directory in its place): receiving
        # goes on, requests are answered "failed", and an event says sending is off.
        rig.stop_agent()
        results = os.path.join(sms_dir, "out-results.journal")
        os.rename(results, results + ".saved")
        os.mkdir(results)
        try:
            rig.start_agent()
            sender = "+254711000706"
            rig.lab.modem.deliver_sms("received with sending off", sender=sender, timestamp=TS)
            msg = rig.wait_incoming(from_(sender), timeout=60)[0]
            self.assertEqual(msg["text"], "received with sending off")
            rid = new_id("send-off")
            rig.request(valid_request(rid, to="+254700000807", text="not sent"))
            failed = rig.wait_result(rid, "failed", timeout=30)[0]
            self.assertIn("outgoing SMS storage is unavailable", failed["error"])
            ct.wait_until(lambda: rig.events("sms-send-off"), 10, "event sms-send-off")
        finally:
            rig.stop_agent()
            os.rmdir(results)
            os.rename(results + ".saved", results)
            rig.start_agent()

    def test_kill_after_receive_before_publication(self):
        sender = "+254711000702"
        before = self.spooled_count()
        rig.broker.stop()
        rig.lab.modem.deliver_sms("received, then the agent died", sender=sender, timestamp=TS)
        rig.wait_log_count(r"received message in-[0-9a-f]+ from", before + 1)
        spooled = spooled_id(sender)
        rig.kill_agent()
        rig.broker.start()
        rig.start_agent()
        msg = rig.wait_incoming(from_(sender), timeout=60)[0]
        self.assertEqual(msg["id"], spooled)
        self.assertEqual(msg["text"], "received, then the agent died")
        ct.wait_until(lambda: rig.stored() == [], 20, "the modem storage to be empty")
        self.assertEqual(len(rig.incoming(from_(sender))), 1)

    def test_modemmanager_restart(self):
        # Requests wait for the network; a received message waits for the broker.
        self.hold_sending()
        ids = [new_id("mm") for _ in range(2)]
        for i, rid in enumerate(ids):
            rig.request(valid_request(rid, to="+254700000803", text="after the restart %d" % i))
            rig.wait_result(rid, "queued")
        sender = "+254711000703"
        before = self.spooled_count()
        rig.broker.stop()
        rig.lab.modem.deliver_sms("kept across the restart", sender=sender, timestamp=TS)
        rig.wait_log_count(r"received message in-[0-9a-f]+ from", before + 1)
        spooled = spooled_id(sender)
        self.assertEqual(rig.sent_to("+254700000803"), [])
        modems = rig.log_count(r"using the Messaging interface")
        rig.lab.mm.restart()
        # The agent finds the modem again (it comes back disabled and is enabled again); the
        # message left the modem once it was spooled, so nothing is announced again.
        rig.wait_log_count(r"using the Messaging interface", modems + 1, timeout=60)
        self.assertEqual(rig.stored(), [])
        rig.lab.modem.set_registration(stat="home")
        ct.wait_until(lambda: len(rig.sent_to("+254700000803")) == 2, 60, "both requests sent")
        rig.broker.start()
        for rid in ids:
            rig.wait_result(rid, "sent", timeout=60)
        self.assertEqual([m["text"] for m in rig.sent_to("+254700000803")],
                         ["after the restart 0", "after the restart 1"])
        msg = rig.wait_incoming(from_(sender), timeout=60)[0]
        self.assertEqual(msg["id"], spooled)
        ct.wait_until(lambda: rig.stored() == [], 20, "the modem storage to be empty")
        self.assertEqual(len(rig.incoming(from_(sender))), 1)
        # Spooled once: the re-announced copy was recognised, not taken for a new message.
        self.assertEqual(rig.log_count(r"received message in-[0-9a-f]+ from"), before + 1)


if __name__ == "__main__":
    ct.lab.main(network=False)
