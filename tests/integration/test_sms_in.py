#!/usr/bin/python3
"""sms/in against the real agent, the real ModemManager (lab) and a real mosquitto.

Single, multipart and UCS-2 messages arrive on sms/in with the exact text, sender, SMSC
timestamp (UTC) and SMSC, and are deleted from the modem after the broker acknowledged
them. A burst of 20 with no spacing (ModemManager 1.20 drops most of the +CMTI notices)
is published completely, none twice, after the resync that follows receptions. A
multipart message whose later parts' notices were dropped (stuck "receiving") is
recovered by the resync after receive-timeout. cmd/sms-resync re-reads the storage.
keep-on-modem keeps messages on the modem without publishing them again after a
restart, and the storage-warn threshold raises sms-storage-full.
"""
# ctest: labels=integration;lab timeout=300
import os
import re
import signal
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402
import cellagent_test.lab  # noqa: E402
import cellagent_test.mqtt  # noqa: E402
import cellagent_test.sms  # noqa: E402

rig = None
TS = "2024-05-01T10:20:30+03:00"
TS_UTC = "2024-05-01T07:20:30Z"
SPOOL_STATE = r"request\(s\) waiting, (\d+) received message\(s\) not yet published"


def setUpModule():
    global rig
    # No resync after receptions by default (it disables the modem for a moment, which
    # would race with the next test's delivery); the burst test turns it on.
    rig = ct.sms.SmsRig(sms={"resync-delay": 0, "receive-timeout": 6})
    rig.start_agent()


def tearDownModule():
    rig.stop()


def from_(sender):
    return lambda j: j.get("from") == sender


class Incoming(unittest.TestCase):

    def receive(self, text, sender, **kw):
        rig.lab.modem.deliver_sms(text, sender=sender, timestamp=TS, **kw)
        msg = rig.wait_incoming(from_(sender), timeout=30)[0]
        self.assertEqual(msg["text"], text)
        self.assertEqual(msg["from"], sender)
        self.assertEqual(msg["timestamp"], TS_UTC)
        self.assertEqual(msg["smsc"], "+254722500029")
        self.assertTrue(msg["id"].startswith("in-"))
        self.assertTrue(msg["received_at"].endswith("Z"))
        # Deleted from the modem once the broker had it.
        ct.wait_until(lambda: rig.stored() == [], 10, "the modem storage to be empty")
        self.assertEqual(len(rig.incoming(from_(sender))), 1)
        return msg

    def test_single(self):
        self.receive("Habari! {ok} 5€ @home", "+254711000201")

    def test_multipart(self):
        self.receive("Long message " + "x" * 300 + " end", "+254711000202")

    def test_ucs2(self):
        self.receive(" ".join(["Karibu 😀 欢迎"] * 10), "+254711000203")

    def test_alphanumeric_sender(self):
        msg = self.receive("Your code is 1234", "Safaricom")
        self.assertEqual(msg["from"], "Safaricom")

    def test_same_message_twice_same_id(self):
        # Sender, SMSC timestamp and text make the id: the same message delivered again
        # (a network retransmission) is recognised and not published twice.
        first = self.receive("duplicate?", "+254711000204")
        rig.lab.modem.deliver_sms("duplicate?", sender="+254711000204", timestamp=TS)
        rig.agent.wait_log(r"received message %s \(\S+\) was published before" % first["id"])
        ct.wait_until(lambda: rig.stored() == [], 10, "the modem storage to be empty")
        self.assertEqual(len(rig.incoming(from_("+254711000204"))), 1)


class Burst(unittest.TestCase):

    def test_burst_of_20(self):
        senders = ["+2547110003%02d" % i for i in range(20)]
        msgs = [{"text": "burst message %d" % i, "sender": s} for i, s in enumerate(senders)]
        rig.stop_agent()
        rig.start_agent(**{"resync-delay": 2})
        self.addCleanup(lambda: (rig.stop_agent(), rig.start_agent(**{"resync-delay": 0})))
        resyncs = len(rig.events("sms-resync"))
        # No spacing: ModemManager reads the first and drops the notices that arrive
        # meanwhile; the resync after receptions finds the rest in storage.
        rig.lab.modem.deliver_burst(msgs, spacing=0)
        for i, s in enumerate(senders):
            got = rig.wait_incoming(from_(s), timeout=60)
            self.assertEqual(got[0]["text"], "burst message %d" % i)
        ct.wait_until(lambda: rig.stored() == [], 20, "the modem storage to be empty")
        for s in senders:
            self.assertEqual(len(rig.incoming(from_(s))), 1, s)
        ids = [j["id"] for j in rig.incoming(lambda j: j.get("from") in senders)]
        self.assertEqual(len(set(ids)), 20)
        ev = ct.wait_until(lambda: rig.events("sms-resync")[resyncs:], 10, "the resync event")
        self.assertEqual(ev[0]["reason"], "after-receive")
        # ModemManager really had dropped notices (else this test proves nothing).
        self.assertGreater(ev[0]["messages"], 0)


class Stuck(unittest.TestCase):

    def test_multipart_with_dropped_notices(self):
        text = "Stuck parts " + "y" * 400  # 3 parts
        resyncs = len(rig.events("sms-resync"))
        rig.lab.modem.deliver_sms(text, sender="+254711000401", timestamp=TS, spacing=0)
        msg = rig.wait_incoming(from_("+254711000401"), timeout=60)[0]
        self.assertEqual(msg["text"], text)
        stuck = ct.wait_until(lambda: [e for e in rig.events("sms-resync")[resyncs:]
                                       if e.get("reason") == "stuck"], 10, "the resync event")
        self.assertTrue(stuck[0]["ok"], stuck)
        ct.wait_until(lambda: rig.stored() == [], 10, "the modem storage to be empty")


class Resync(unittest.TestCase):

    def test_cmd_sms_resync(self):
        rig.broker.publish(ct.sms.BASE + "/cmd/sms-resync", {"id": "resync-1"})
        res = rig.sub.wait_for(ct.sms.BASE + "/cmd/sms-resync/result",
                               lambda m: (m["json"] or {}).get("id") == "resync-1", 30)[0]["json"]
        self.assertTrue(res["ok"], res)
        self.assertIn("messages", res["result"])
        self.assertIn("pending", res["result"])
        # The modem is back and usable.
        rig.lab.mm.wait_state(["registered", "connected"], timeout=30)


class StopInFlight(unittest.TestCase):

    def test_ack_during_shutdown_is_remembered(self):
        """The broker's PUBACK for sms/in that arrives while the agent stops marks the SMS
        published: the next start deletes it from the modem and does not publish it again."""
        rig.stop_agent()
        proxy = ct.mqtt.HoldProxy(rig.broker.port)
        try:
            rig.start_agent(mqtt_port=proxy.port)
            sender = "+254711000601"
            proxy.hold()
            rig.lab.modem.deliver_sms("in flight at stop", sender=sender, timestamp=TS)
            # The broker has it (the subscriber too); its PUBACK waits in the proxy.
            rig.wait_incoming(from_(sender), timeout=30)
            stopping = rig.log_count(r"publishing offline and disconnecting")
            rig.agent.proc.send_signal(signal.SIGTERM)
            rig.wait_log_count(r"publishing offline and disconnecting", stopping + 1, timeout=10)
            proxy.release()
            self.assertEqual(rig.agent.proc.wait(ct.scaled(15)), 0)
        finally:
            proxy.close()
            rig.stop_agent()
        self.assertEqual(rig.stored(), [])      # spooled, then deleted from the modem
        # Nothing left to publish at the next start (before the fix: 1, published again).
        starts = rig.log_count(SPOOL_STATE)
        rig.start_agent()
        rig.wait_log_count(SPOOL_STATE, starts + 1)
        self.assertEqual(re.findall(SPOOL_STATE, rig.agent.log_text())[-1], "0")
        self.assertEqual(len(rig.incoming(from_(sender))), 1)


class KeepOnModem(unittest.TestCase):
    """Runs last (alphabetical order is not relied on: it restores the settings)."""

    def test_keep_on_modem_and_storage_warning(self):
        rig.stop_agent()
        rig.start_agent(**{"keep-on-modem": True, "storage-warn": 3, "resync-delay": 0})
        try:
            senders = ["+2547110005%02d" % i for i in range(3)]
            for i, s in enumerate(senders):
                rig.lab.modem.deliver_sms("kept %d" % i, sender=s, timestamp=TS)
                rig.wait_incoming(from_(s), timeout=30)
            self.assertEqual(len(rig.stored()), 3)
            # Three held on the modem: the warning is raised at the next listing.
            rig.stop_agent()
            rig.start_agent()
            ev = ct.wait_until(lambda: rig.events("sms-storage-full"), 30,
                               "sms-storage-full")[0]
            self.assertEqual(ev["stored"], 3)
            self.assertEqual(ev["threshold"], 3)
            # Listed again after the restart, but not published again.
            rig.agent.wait_log(r"was published before")
            for s in senders:
                self.assertEqual(len(rig.incoming(from_(s))), 1, s)
            # Without keep-on-modem the handled messages are cleaned up, still not republished.
            rig.stop_agent()
            rig.start_agent(**{"keep-on-modem": False})
            ct.wait_until(lambda: rig.stored() == [], 20, "the modem storage to be empty")
            for s in senders:
                self.assertEqual(len(rig.incoming(from_(s))), 1, s)
        finally:
            rig.stop_agent()
            rig.start_agent(**{"keep-on-modem": False, "storage-warn": 20})


if __name__ == "__main__":
    ct.lab.main(network=False)
