#!/usr/bin/python3
# ctest: name=lab-sms labels=lab timeout=120
"""Lab self-test: SMS both ways between the real ModemManager and the emulator.

Outgoing (mmcli creates and sends): the emulator's dump shows the decoded
text for GSM 7-bit, extension characters, UCS-2 emoji, multipart, the
delivery-report request, and a refused send. Incoming (the emulator
delivers): ModemManager shows exact sender, text and SMSC timestamp for
single, multipart and UCS-2 messages, and a burst.
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402
import cellagent_test.lab  # noqa: E402

lab = None


def setUpModule():
    global lab
    lab = ct.lab.Lab(personality="simtech", enable=True).start()


def tearDownModule():
    lab.stop()


class OutgoingTest(unittest.TestCase):

    def send_and_find(self, number, text, **kw):
        """Send with mmcli; return (ModemManager's SMS info, the emulator's message)."""
        path = lab.mm.send_sms(number, text, **kw)
        msg = lab.modem.wait_sent(lambda m: m["to"] == number and m["text"] == text, timeout=10)[0]
        return lab.mm.sms_info(path), msg

    def test_gsm7(self):
        info, msg = self.send_and_find("+254700000101", "Hello from the lab")
        self.assertEqual(info["sms.properties.state"], "sent")
        self.assertEqual((msg["alphabet"], msg["parts"], msg["delivery_report"]), ("GSM7", 1, False))
        self.assertEqual(msg["results"], ["OK"])

    def test_extension_characters(self):
        info, msg = self.send_and_find("0700000102", "Price: 5€ [a] {b} ~|^\\ end")
        self.assertEqual(msg["alphabet"], "GSM7")
        self.assertEqual(msg["to"], "0700000102")

    def test_ucs2_emoji(self):
        info, msg = self.send_and_find("+254700000103", "Jambo 😀 你好 ☕")
        self.assertEqual(msg["alphabet"], "UCS2")

    def test_multipart(self):
        text = "".join("part-%03d " % i for i in range(40))      # 360 chars -> 3 parts
        info, msg = self.send_and_find("+254700000104", text)
        self.assertEqual(msg["parts"], 3)
        self.assertEqual(len(set(msg["references"])), 3)
        self.assertTrue(msg["complete"])

    def test_delivery_report(self):
        info, msg = self.send_and_find("+254700000105", "Report please", delivery_report=True)
        self.assertTrue(msg["delivery_report"])
        self.assertEqual(info["sms.properties.delivery-report"], "requested")
        ref = info["sms.properties.message-reference"]
        self.assertEqual(ref, str(msg["references"][0]))
        # ModemManager 1.20 exposes the report as its own status-report SMS object
        report = ct.wait_until(lambda: next(
            (i for i in map(lab.mm.sms_info, lab.mm.sms_list())
             if i.get("sms.properties.pdu-type") == "status-report"
             and i.get("sms.properties.message-reference") == ref), None), 10, "the status report")
        self.assertEqual(report["sms.properties.delivery-state"], "completed-received")
        self.assertEqual(report["sms.content.number"], "+254700000105")

    def test_refused_send(self):
        lab.modem.fail_next_send(error=38)
        with self.assertRaises(ct.lab.LabError):
            lab.mm.send_sms("+254700000106", "This one fails")
        msg = lab.modem.wait_sent(lambda m: m["to"] == "+254700000106")[0]
        self.assertEqual(msg["results"], ["+CMS ERROR: 38"])


class IncomingTest(unittest.TestCase):

    def deliver(self, text, sender, **kw):
        lab.modem.deliver_sms(text, sender=sender, timestamp="2024-05-01T10:20:30+03:00", **kw)
        return lab.mm.wait_received(lambda s: s.get("sms.content.number") == sender, timeout=15)

    def test_single(self):
        info = self.deliver("Habari! {ok} 5€", "+254711000201")
        self.assertEqual(info["sms.content.text"], "Habari! {ok} 5€")
        self.assertTrue(info["sms.properties.timestamp"].startswith("2024-05-01T10:20:30+03"))
        self.assertEqual(info["sms.properties.smsc"], "+254722500029")

    def test_multipart(self):
        text = "Long message " + "x" * 300 + " end"
        info = self.deliver(text, "+254711000202")
        self.assertEqual(info["sms.content.text"], text)

    def test_ucs2(self):
        text = " ".join(["Karibu 😀 欢迎"] * 10)      # UCS-2, two parts
        info = self.deliver(text, "+254711000203")
        self.assertEqual(info["sms.content.text"], text)

    def test_slow_read_paced(self):
        """A host slower to read a part than the parts' spacing still gets every part.

        ModemManager 1.20 drops a +CMTI that arrives while it reads the previous part; the
        emulator answers +CMGR after 1 s here (a loaded CI host), twice the spacing. The
        emulator paces deliver_sms on the host's reads, so the second notice is not lost.
        """
        lab.modem.set(read_delay=1.0)
        try:
            text = " ".join(["Polepole 😀 慢"] * 10)     # UCS-2, two parts
            info = self.deliver(text, "+254711000204")
            self.assertEqual(info["sms.content.text"], text)
        finally:
            lab.modem.set(read_delay=0.0)
        self.assertEqual([e for e in lab.modem.dump()["events"] if e["type"] == "sms-pace-timeout"], [])

    def test_burst(self):
        msgs = [{"text": "burst %d" % i, "sender": "+25471100030%d" % i} for i in range(3)]
        lab.modem.deliver_burst(msgs, spacing=0.5)
        for m in msgs:
            info = lab.mm.wait_received(lambda s, m=m: s.get("sms.content.number") == m["sender"])
            self.assertEqual(info["sms.content.text"], m["text"])


if __name__ == "__main__":
    ct.lab.main(network=False)
