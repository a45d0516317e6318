#!/usr/bin/python3
# ctest: name=lab-pdu labels=lab timeout=30
"""Lab self-test without daemons: the PDU codec and the emulator's AT dialogue.

Needs no root: runs the emulator on ptys and talks AT to it directly.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import tty
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402
import cellagent_test.lab  # noqa: E402
import cellagent_test.smspdu  # noqa: E402


class CodecTest(unittest.TestCase):

    def test_decode_known_submit(self):
        # 3GPP example: to +46708251358, "hellohello", relative validity
        sub = ct.smspdu.decode_submit("0011000B916407281553F80000AA0AE8329BFD4697D9EC37")
        self.assertEqual((sub["number"], sub["text"], sub["validity"]), ("+46708251358", "hellohello", 0xAA))
        self.assertFalse(sub["srr"])

    def test_deliver_round_trips(self):
        cases = {"Hello {world} €5 [x] ~|^\\": 1, "Jambo 😀 你好": 1, "A" * 160: 1, "A" * 161: 2,
                 "€" * 80: 1, "€" * 81: 2, "😀" * 35: 1, "😀" * 36: 2, "Habari ya asubuhi " * 20: 3}
        for text, nparts in cases.items():
            parts = ct.smspdu.encode_deliver_parts("+254700000001", text, timestamp="2024-05-01T10:20:30+03:00")
            self.assertEqual(len(parts), nparts, text)
            dec = [ct.smspdu.decode_deliver(p) for p, _ in parts]
            self.assertEqual("".join(d["text"] for d in dec), text)
            self.assertEqual(dec[0]["sender"], "+254700000001")
            self.assertEqual(dec[0]["timestamp"], "2024-05-01T10:20:30+03:00")
            if nparts > 1:
                self.assertEqual([d["concat"]["seq"] for d in dec], list(range(1, nparts + 1)))

    def test_multipart_references_differ(self):
        # ModemManager joins parts by reference alone: 255 messages in a row, 255 references.
        refs = [ct.smspdu.decode_deliver(ct.smspdu.encode_deliver_parts("+2547%08d" % i, "x" * 200)[0][0])
                ["concat"]["ref"] for i in range(255)]
        self.assertEqual(len(set(refs)), 255, sorted(refs))

    def test_timestamp_negative_zone(self):
        ts = ct.smspdu.parse_timestamp("2023-12-31T23:59:58-04:30")
        self.assertEqual(ct.smspdu.decode_timestamp(ct.smspdu.encode_timestamp(ts)), ts)

    def test_alphanumeric_sender(self):
        pdu, _ = ct.smspdu.encode_deliver("Safaricom", "Bundle low")
        self.assertEqual(ct.smspdu.decode_deliver(pdu)["sender"], "Safaricom")


class EmulatorDialogueTest(unittest.TestCase):
    """The emulator answers AT on its pty and records what it transmits."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="calab-pdu-")
        cls.ctl = os.path.join(cls.dir, "ctl.sock")
        state = os.path.join(cls.dir, "state.json")
        cls.proc = subprocess.Popen([ct.lab.PY, os.path.join(ct.lab.LAB_DIR, "modem-emu"), "--ctl", cls.ctl,
                                     "--state", state, "--log", os.path.join(cls.dir, "emu.log")])
        ct.wait_until(lambda: os.path.exists(cls.ctl) and os.path.exists(state), 10, "emulator")
        with open(state) as f:
            cls.fd = os.open(json.load(f)["ports"]["ttyUSB0"], os.O_RDWR | os.O_NOCTTY)
        tty.setraw(cls.fd)
        cls.client = ct.lab.EmuClient(cls.ctl)

    @classmethod
    def tearDownClass(cls):
        os.close(cls.fd)
        cls.proc.terminate()
        cls.proc.wait(5)
        subprocess.run(["rm", "-rf", cls.dir])

    def at(self, line, then=None):
        """Send a command (and a PDU after the prompt); return the reply text."""
        os.write(self.fd, (line + "\r").encode())
        buf = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            buf += os.read(self.fd, 4096)
            if then is not None and buf.endswith(b"> "):
                os.write(self.fd, then.encode() + b"\x1a")
                then = None
            elif buf.rstrip().endswith((b"OK", b"ERROR")) or b"ERROR:" in buf:
                return buf.decode()
        raise AssertionError("no final result for %s: %r" % (line, buf))

    def test_basic_dialogue(self):
        self.at("ATE0")
        self.assertIn('+CEREG: 2,1,"1A2B","01A2B3C4",7', self.at("AT+CEREG=2;+CEREG?"))
        self.assertIn('+COPS: 0,2,"63902",7', self.at("AT+COPS=3,2;+COPS?"))
        self.assertIn("ERROR", self.at("AT+NOSUCHTHING"))
        self.assertTrue(any(u["cmd"] == "+NOSUCHTHING" for u in self.client.dump()["unknown"]))

    def test_send_and_fault(self):
        self.at("ATE0")
        reply = self.at("AT+CMGS=23", "0011000B916407281553F80000AA0AE8329BFD4697D9EC37")
        self.assertRegex(reply, r"\+CMGS: \d+")
        self.client.fail_next_send(error=38)
        self.assertIn("+CMS ERROR: 38", self.at("AT+CMGS=23", "0011000B916407281553F80000AA0AE8329BFD4697D9EC37"))
        self.client.delay_next_send(0.4)
        t0 = time.monotonic()
        self.assertRegex(self.at("AT+CMGS=23", "0011000B916407281553F80000AA0AE8329BFD4697D9EC37"), r"\+CMGS: \d+")
        self.assertGreaterEqual(time.monotonic() - t0, 0.4)
        msgs = self.client.sent_messages()
        self.assertEqual(msgs[-3]["text"], "hellohello")
        self.assertEqual(msgs[-2]["results"], ["+CMS ERROR: 38"])

    def test_incoming_stored_and_listed(self):
        self.at("ATE0")
        self.at('AT+CPMS="ME","ME","ME"')
        self.at("AT+CNMI=2,1,2,1,0")
        self.client.clear_storage()
        self.client.deliver_sms("Jambo 😀", sender="+254700000009", spacing=0)
        listing = self.at("AT+CMGL=4")
        pdu = listing.split("+CMGL: 0,0,,")[1].split("\r\n")[1]
        self.assertEqual(ct.smspdu.decode_deliver(pdu)["text"], "Jambo 😀")
        self.client.set_storage(full=True)
        res = self.client.deliver_sms("lost", spacing=0)
        self.assertFalse(res["stored"][0])


if __name__ == "__main__":
    unittest.main(verbosity=2)
