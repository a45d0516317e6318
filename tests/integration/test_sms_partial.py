#!/usr/bin/python3
# ctest: labels=integration;lab timeout=240
"""A multipart SMS whose other parts never come cannot keep the modem cycling (lab: real
ModemManager, emulated modem, real mosquitto).

Part 1 of a 2-part message arrives alone. ModemManager keeps it "receiving". The agent
re-reads the modem storage once (receive-timeout: a part whose notice was dropped would be
found), then, partial-after seconds after it first saw the message, publishes it on sms/in
with "incomplete":true (sender and SMSC time: ModemManager exports no text for an
incomplete message) and deletes it from the modem. The modem is disabled at most once for
it. Short keys stand in for the hours of the defaults.
"""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402
import cellagent_test.lab  # noqa: E402
import cellagent_test.sms  # noqa: E402
import cellagent_test.smspdu  # noqa: E402

SENDER = "+254711000901"
TS = "2024-05-01T10:20:30+03:00"
TS_UTC = "2024-05-01T07:20:30Z"
RECEIVE_TIMEOUT = 5
PARTIAL_AFTER = 15
# Disabling the modem powers its radio down (CFUN 0 or 4).
RADIO_OFF = re.compile(r"^AT\+CFUN=[04]\b", re.I)

rig = None


def setUpModule():
    global rig
    rig = ct.sms.SmsRig(sms={"resync-delay": 0, "receive-timeout": RECEIVE_TIMEOUT,
                         "partial-after": PARTIAL_AFTER})
    rig.start_agent()


def tearDownModule():
    rig.stop()


def radio_off():
    return [c for c in rig.lab.modem.commands() if RADIO_OFF.search(c["cmd"])]


class Partial(unittest.TestCase):

    def test_one_part_of_two(self):
        text = "Only the first half of this arrives. " + "z" * 150   # 2 parts (GSM 7-bit)
        pdus = ct.smspdu.encode_deliver_parts(SENDER, text, "+254722500029", TS, "auto", ref=77)
        self.assertEqual(len(pdus), 2)
        off_before = len(radio_off())
        resyncs_before = len(rig.events("sms-resync"))
        rig.lab.modem.call("deliver_pdu", pdu=pdus[0][0], length=pdus[0][1])
        rig.agent.wait_log(r"message \S+ is still being received", timeout=20)

        msg = rig.wait_incoming(lambda j: j.get("from") == SENDER,
                                timeout=PARTIAL_AFTER + RECEIVE_TIMEOUT + 30)[0]
        self.assertIs(msg.get("incomplete"), True, msg)
        self.assertEqual(msg["text"], "")
        self.assertEqual(msg["timestamp"], TS_UTC)
        self.assertEqual(msg["smsc"], "+254722500029")
        self.assertTrue(msg["id"].startswith("in-"))
        # Removed from the modem.
        ct.wait_until(lambda: rig.stored() == [], 20, "the modem storage to be empty")
        # One resync for it (the stuck one), so the modem was disabled at most once.
        resyncs = rig.events("sms-resync")[resyncs_before:]
        self.assertLessEqual(len(resyncs), 1, resyncs)
        self.assertTrue(all(e["reason"] == "stuck" for e in resyncs), resyncs)
        self.assertLessEqual(len(radio_off()) - off_before, 1, radio_off()[off_before:])
        self.assertEqual(len(rig.incoming(lambda j: j.get("from") == SENDER)), 1)

        # The missing part arriving late is a new incomplete message with the same id:
        # not published again, deleted at once, no resync for it.
        stored = rig.lab.modem.call("deliver_pdu", pdu=pdus[1][0], length=pdus[1][1])
        self.assertTrue(stored["stored"], stored)
        ct.wait_until(lambda: rig.stored() == [], 20, "the late part deleted")
        self.assertEqual(len(rig.incoming(lambda j: j.get("from") == SENDER)), 1)
        self.assertLessEqual(len(radio_off()) - off_before, 1)


if __name__ == "__main__":
    ct.lab.main(network=False)
