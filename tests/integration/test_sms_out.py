#!/usr/bin/python3
"""sms/out against the real agent, the real ModemManager (lab) and a real mosquitto.

Round trips (the emulator's dump has exactly the number and text; results queued then
sent with the modem's reference and the part count): GSM 7-bit, extension characters,
UCS-2 with emoji, multipart messages (split exactly as ModemManager splits them), the
validity period; max-parts enforced. Every invalid request is
rejected with the field and the reason, nothing is sent and the agent stays up. A
repeated id is not sent again and gets the latest result. A delivery report turns into
`delivered`. A +CMS ERROR is retried, then `failed` with ModemManager's error. A burst of
100 requests is sent once each, in order. The rate limit holds a send back.
"""
# ctest: labels=integration;lab timeout=300
import os
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402
import cellagent_test.lab  # noqa: E402
import cellagent_test.sms  # noqa: E402
from cellagent_test.sms import new_id, valid_request  # noqa: E402

rig = None


def setUpModule():
    global rig
    rig = ct.sms.SmsRig(sms={"max-parts": 3, "retries": 2, "rate-limit": 1000})
    rig.start_agent()


def tearDownModule():
    rig.stop()


class RoundTrip(unittest.TestCase):

    def round_trip(self, text, to, parts, alphabet, **extra):
        rid = new_id("rt")
        rig.request(valid_request(rid, to=to, text=text, **extra))
        queued = rig.wait_result(rid, "queued")[0]
        sent = rig.wait_result(rid, "sent")[0]
        msgs = ct.wait_until(lambda: rig.sent_to(to), 10, "the emulator's copy")
        self.assertEqual(len(msgs), 1, msgs)
        msg = msgs[0]
        self.assertEqual(msg["text"], text)
        self.assertEqual(msg["alphabet"], alphabet)
        self.assertEqual(msg["parts"], parts)
        self.assertTrue(msg["complete"])
        self.assertEqual(queued["parts"], parts)
        self.assertEqual(sent["parts"], parts)
        # ModemManager reports the last part's reference.
        self.assertEqual(sent["reference"], msg["references"][-1])
        self.assertTrue(sent["ts"].endswith("Z"))
        statuses = [r["status"] for r in rig.results(rid)]
        self.assertEqual(statuses, ["queued", "sent"])
        return msg

    def test_gsm7(self):
        self.round_trip("Hello @ home: 100% ok? £5 ¥ è é Ø Å Δ _ ¡ ¿ ä ö ü §\nline two",
                        "+254700000101", 1, "GSM7")

    def test_extension_characters(self):
        # 76 euro signs are 152 septets: with the rest it still fits one SMS.
        text = "€" * 70 + "[{}]~|^\\"
        self.round_trip(text, "0700000102", 1, "GSM7")

    def test_ucs2_emoji(self):
        self.round_trip("Habari 😀 你好 ☕ — karibu", "+254700000103", 1, "UCS2")

    def test_multipart(self):
        text = "".join("part-%03d " % i for i in range(40))  # 360 septets: 3 parts
        self.round_trip(text, "+254700000104", 3, "GSM7")

    def test_multipart_ucs2_at_max_parts(self):
        text = "😀" * 99  # 198 UTF-16 units; a pair is never split: 33 per part
        self.round_trip(text, "+254700000105", 3, "UCS2")

    def test_split_like_modemmanager(self):
        # 306 septets would be 2 parts of 153, but an escape pair never straddles two parts:
        # ModemManager (and so the network) needs 3, and the agent counts 3.
        self.round_trip("a" * 152 + "{" + "a" * 152, "+254700000107", 3, "GSM7")
        # 134 UTF-16 units would be 2 parts of 67, but a surrogate pair is never split: 33
        # emoji per part, 3 parts.
        self.round_trip("😀" * 67, "+254700000108", 3, "UCS2")

    def test_validity(self):
        msg = self.round_trip("valid for a day", "+254700000109", 1, "GSM7", validity=1440)
        self.assertEqual(msg["validity"], 167)  # TP-VP relative: 24 hours (3GPP TS 23.040)

    def test_max_parts_enforced(self):
        rid = new_id("max")
        text = "x" * (3 * 153 + 1)  # 4 parts, max-parts=3
        rig.request(valid_request(rid, to="+254700000106", text=text))
        rej = rig.wait_result(rid, "rejected")[0]
        self.assertIn("text: needs 4 SMS segments", rej["error"])
        self.assertIn("max-parts 3", rej["error"])
        self.assertEqual(rig.sent_to("+254700000106"), [])


class Invalid(unittest.TestCase):

    CASES = [
        # (payload, id in the answer, start of the error)
        ("not json at all", None, "payload: not valid JSON"),
        ('["an", "array"]', None, "payload: must be a JSON object"),
        ('{"to":"+254700000201","text":"x"}', None, "id: missing"),
        ('{"id":42,"to":"+254700000201","text":"x"}', None, "id: must be a string, not a number"),
        ('{"id":"a/b","to":"+254700000201","text":"x"}', None, "id: must be 1-64 characters"),
        ('{"id":"' + "x" * 65 + '","to":"+254700000201","text":"x"}', None, "id: must be 1-64"),
        ('{"id":"inv-1","text":"x"}', "inv-1", "to: missing"),
        ('{"id":"inv-2","to":254700000201,"text":"x"}', "inv-2", "to: must be a string"),
        ('{"id":"inv-3","to":"+2547000abc","text":"x"}', "inv-3", "to: must be + and 3-15 digits"),
        ('{"id":"inv-4","to":"+25","text":"x"}', "inv-4", "to: must be + and 3-15 digits"),
        # Toll fraud: short codes (premium services) only when listed in allowed-destinations.
        ('{"id":"inv-4s","to":"12345","text":"x"}', "inv-4s", "to: numbers of fewer than 7 digits"),
        ('{"id":"inv-5","to":"+254700000201"}', "inv-5", "text: missing"),
        ('{"id":"inv-6","to":"+254700000201","text":7}', "inv-6", "text: must be a string"),
        ('{"id":"inv-7","to":"+254700000201","text":""}', "inv-7", "text: must not be empty"),
        ('{"id":"inv-8","to":"+254700000201","text":"bell\\u0007"}', "inv-8",
         "text: control character U+0007"),
        ('{"id":"inv-9","to":"+254700000201","text":"\\u001b[31mred"}', "inv-9",
         "text: control character U+001B"),
        ('{"id":"inv-10","to":"+254700000201","text":"nul\\u0000"}', "inv-10",
         "payload: a string contains a NUL character"),
        ('{"id":"inv-11","to":"+254700000201","text":"x","delivery_report":"yes"}', "inv-11",
         "delivery_report: must be a boolean"),
        ('{"id":"inv-12","to":"+254700000201","text":"x","validity":1}', "inv-12",
         "validity: must be a whole number of minutes"),
        ('{"id":"inv-13","to":"+254700000201","text":"x","colour":"red"}', "inv-13",
         "colour: unknown field"),
    ]

    def test_every_invalid_request_is_rejected(self):
        before = len(rig.lab.modem.dump()["sent"])
        for payload, rid, why in self.CASES:
            rig.request(payload)
        # One MiB (a little under, so the packet fits the agent's MQTT maximum packet size).
        big = '{"id":"inv-big","to":"+254700000201","text":"' + "a" * (1024 * 1024 - 1024) + '"}'
        rig.request(big)

        def rejected_with(rid, why):
            return lambda m: (m["json"] or {}).get("status") == "rejected" and \
                (m["json"] or {}).get("id") == rid and \
                (m["json"] or {}).get("error", "").startswith(why)
        for payload, rid, why in self.CASES:
            got = rig.sub.wait_for(ct.sms.BASE + "/sms/out/result", rejected_with(rid, why), 15)
            self.assertIn("ts", got[0]["json"])
        got = rig.sub.wait_for(ct.sms.BASE + "/sms/out/result",
                               rejected_with(None, "payload: %d bytes, more than the limit" % len(big)), 15)[0]["json"]
        self.assertIsNone(got["id"])
        # Nothing reached the modem, nothing else was answered, and the agent is fine.
        self.assertTrue(rig.agent.alive())
        self.assertEqual(len(rig.lab.modem.dump()["sent"]), before)
        self.assertEqual(rig.sent_to("+254700000201"), [])
        rid = new_id("after-invalid")
        rig.request(valid_request(rid, to="+254700000202", text="still working"))
        rig.wait_result(rid, "sent")

    def test_rejected_id_can_be_sent_again_fixed(self):
        rid = new_id("fixme")
        rig.request({"id": rid, "to": "+2547x", "text": "x"})
        rig.wait_result(rid, "rejected")
        rig.request(valid_request(rid, to="+254700000203", text="fixed"))
        rig.wait_result(rid, "sent")


class Dedupe(unittest.TestCase):

    def test_repeated_id_not_sent_twice(self):
        rid = new_id("dup")
        rig.request(valid_request(rid, to="+254700000301", text="only once"))
        rig.wait_result(rid, "sent")
        rig.request(valid_request(rid, to="+254700000301", text="only once"))
        rig.request(valid_request(rid, to="+254700000301", text="even with other text"))
        # Each repeat is answered with the latest result, "sent" with its reference.
        sent = rig.wait_result(rid, "sent", count=3)
        self.assertEqual(len({r["reference"] for r in sent}), 1)
        self.assertEqual(len(rig.sent_to("+254700000301")), 1)
        self.assertEqual([r["status"] for r in rig.results(rid)], ["queued", "sent", "sent", "sent"])


class DeliveryReport(unittest.TestCase):

    def test_delivered(self):
        rid = new_id("dr")
        rig.request(valid_request(rid, to="+254700000401", text="report please",
                                  delivery_report=True))
        sent = rig.wait_result(rid, "sent")[0]
        done = rig.wait_result(rid, "delivered", timeout=15)[0]
        self.assertEqual(done["reference"], sent["reference"])
        msg = rig.sent_to("+254700000401")[0]
        self.assertTrue(msg["delivery_report"])
        # The status report is not a received message.
        self.assertEqual(rig.incoming(lambda j: j.get("from") == "+254700000401"), [])

    def test_delivered_multipart(self):
        rid = new_id("drm")
        text = "".join("chunk-%03d " % i for i in range(30))  # 300 septets: 2 parts
        rig.request(valid_request(rid, to="+254700000402", text=text, delivery_report=True))
        rig.wait_result(rid, "delivered", timeout=20)
        self.assertEqual(rig.sent_to("+254700000402")[0]["parts"], 2)

    def test_failed_delivery(self):
        rig.lab.modem.set(report_status=0x41)  # permanent error: incompatible destination
        try:
            rid = new_id("drf")
            rig.request(valid_request(rid, to="+254700000403", text="never arrives",
                                      delivery_report=True))
            failed = rig.wait_result(rid, "failed", timeout=15)[0]
            self.assertIn("delivery failed", failed["error"])
        finally:
            rig.lab.modem.set(report_status=0)


class Failures(unittest.TestCase):

    def test_cms_error_retried_then_failed(self):
        # retries=2: three attempts, all refused (+CMS ERROR: 332, network timeout).
        rig.lab.modem.fail_next_send(error=332, count=3)
        rid = new_id("cms")
        rig.request(valid_request(rid, to="+254700000501", text="refused"))
        failed = rig.wait_result(rid, "failed", timeout=60)[0]
        self.assertIn("org.freedesktop.ModemManager1.Error.Message.NetworkTimeout", failed["error"])
        attempts = [m for m in rig.lab.modem.dump()["sent"] if m["number"] == "+254700000501"]
        self.assertEqual([a["result"] for a in attempts], ["+CMS ERROR: 332"] * 3)
        self.assertEqual([r["status"] for r in rig.results(rid)], ["queued", "failed"])

    def test_cms_error_then_success(self):
        rig.lab.modem.fail_next_send(error=38, count=1)
        rid = new_id("cms-ok")
        rig.request(valid_request(rid, to="+254700000502", text="second time lucky"))
        rig.wait_result(rid, "sent", timeout=30)
        results = [m["result"] for m in rig.lab.modem.dump()["sent"] if m["number"] == "+254700000502"]
        self.assertEqual(results, ["+CMS ERROR: 38", "OK"])


class Burst(unittest.TestCase):

    def test_100_requests_in_order(self):
        ids = [new_id("burst") for _ in range(100)]
        payload = "\n".join('{"id":"%s","to":"+254700000600","text":"burst %03d"}' % (rid, i)
                            for i, rid in enumerate(ids))
        # One connection, 100 messages in order (mosquitto_pub -l).
        subprocess.run(rig.broker.wrapper + ["mosquitto_pub", "-h", rig.broker.host, "-p",
                                             str(rig.broker.port), "-q", "1", "-t",
                                             ct.sms.BASE + "/sms/out", "-l"],
                       input=payload.encode(), check=True, timeout=30)
        rig.wait_result(ids[-1], "sent", timeout=120)
        for rid in ids:
            self.assertEqual([r["status"] for r in rig.results(rid)], ["queued", "sent"], rid)
        texts = [m["text"] for m in rig.sent_to("+254700000600")]
        self.assertEqual(texts, ["burst %03d" % i for i in range(100)])


class RateLimit(unittest.TestCase):

    def test_rate_limit_holds_sends(self):
        # The limit counts segments, as operators bill them, and survives a restart. Restart
        # with a limit of (segments sent so far + 3): a 3-part message still goes, then even
        # a 1-part one waits.
        rig.stop_agent()
        parts = {r["id"]: r.get("parts", 1) for r in rig.results(status="sent")}
        limit = sum(parts.values()) + 3
        rig.start_agent(**{"rate-limit": limit})
        first, second = new_id("rate"), new_id("rate")
        rig.request(valid_request(first, to="+254700000701", text="within the limit " * 20))
        rig.request(valid_request(second, to="+254700000702", text="over the limit"))
        self.assertEqual(rig.wait_result(first, "sent")[-1]["parts"], 3)
        rig.wait_result(second, "queued")
        rig.agent.wait_log(r"rate limit of %d SMS segments per hour reached" % limit)
        self.assertEqual(rig.sent_to("+254700000702"), [])
        self.assertEqual(rig.results(second, "sent"), [])
        # Raising the limit (config reload) lets it go.
        rig.sms_settings["rate-limit"] = 100000
        rig.agent.settings["sms"]["rate-limit"] = 100000
        ct.write_config(rig.agent.config, rig.agent.settings)
        rig.agent.proc.send_signal(signal.SIGHUP)
        rig.wait_result(second, "sent", timeout=30)


if __name__ == "__main__":
    ct.lab.main(network=False)
