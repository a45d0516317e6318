#!/usr/bin/python3
# ctest: labels=integration;lab timeout=420
"""A data outage must not fill the modem's SMS storage (lab: real ModemManager, emulated
modem with a small storage, real mosquitto that the test stops).

With the broker down, 40 SMS arrive. Each one leaves the modem as soon as the agent has it
on disk, so the storage never holds more than a few (the emulator drops what arrives at a
full storage, as a network holds it back), none is lost, and an authenticated command SMS
sent after them still reaches the agent and is executed (its reply SMS is transmitted).
When the broker returns, all 40 are published on sms/in, once each.
"""
import os
import sys
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402
import cellagent_test.lab  # noqa: E402
import cellagent_test.sms  # noqa: E402
import cellagent_test.commands  # noqa: E402

CAPACITY = 8          # the modem's storage, in messages
A_FEW = 4             # what it may hold at any moment
COUNT = 40
OPERATOR = "+254700000001"

rig = codes = None


class StorageWatch:
    """Polls the emulator's storage use in the background; remembers the most it held."""

    def __init__(self, lab):
        self.lab, self.most = lab, 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.wait(0.05):
            try:
                used = self.lab.modem.status()["storage"]["ME"]["used"]
            except Exception:  # noqa: BLE001 (the lab is going away)
                return
            self.most = max(self.most, used)

    def stop(self):
        self._stop.set()
        self._t.join(5)
        return self.most


def setUpModule():
    global rig, codes
    rig = ct.sms.SmsRig(sms={"resync-delay": 3}, emu_settings={"storage_capacity": CAPACITY})
    secret_file = os.path.join(rig.lab.run_dir, "sms-secret")
    codes = ct.commands.CodeBook(ct.commands.write_secret(secret_file))
    # The rig's agent, with SMS commands on.
    settings = {"mqtt": {"host": rig.broker.host, "port": rig.broker.port},
                "agent": {"state-dir": rig.state_dir},
                "sms": dict(rig.sms_settings),
                "sms-commands": {"enabled": True, "secret-file": secret_file,
                                 "allowed-senders": OPERATOR}}
    rig.agent = ct.Agent(rig.dir, settings, env=rig.lab.env,
                              wrapper=os.environ.get("CA_AGENT_WRAPPER", "").split()).start()
    rig.agent.wait_log(r"using the Messaging interface", timeout=60)
    rig.agent.wait_log(r"SMS commands enabled for 1 sender", timeout=20)


def tearDownModule():
    rig.stop()


def dropped():
    return [e for e in rig.lab.modem.dump()["events"] if e.get("type") == "sms-dropped"]


class BrokerDown(unittest.TestCase):

    def test_forty_sms_and_a_command(self):
        senders = ["+2547110008%02d" % i for i in range(COUNT)]
        rig.broker.stop()
        watch = StorageWatch(rig.lab)
        try:
            # Forty SMS, one a second (a busy hour compressed): some notices are dropped by
            # ModemManager while it reads or deletes the previous one; the resync after
            # receptions finds those (no cellular uplink here to spare).
            rig.lab.modem.deliver_burst([{"text": "while offline %d" % i, "sender": s}
                                         for i, s in enumerate(senders)], spacing=1.0)
            rig.wait_log_count(r"received message in-[0-9a-f]+ from", COUNT, timeout=90)
            ct.wait_until(lambda: rig.stored() == [], 30, "the modem storage to be empty")
            # The command SMS after them still gets in, and is executed.
            before = len(rig.sent_to(OPERATOR))
            rig.lab.modem.deliver_sms("%s status" % codes.next(), sender=OPERATOR)
            reply = rig.lab.modem.wait_sent(lambda m: m["to"] == OPERATOR, timeout=60,
                                            count=before + 1)[-1]
            self.assertTrue(reply["text"].startswith("dev1: "), reply)
            ct.wait_until(lambda: rig.stored() == [], 30, "the modem storage to be empty")
        finally:
            most = watch.stop()
        print("most messages held by the modem at once: %d" % most)
        self.assertLessEqual(most, A_FEW)
        self.assertEqual(dropped(), [])

        rig.broker.start()
        for i, s in enumerate(senders):
            got = rig.wait_incoming(lambda j, s=s: j.get("from") == s, timeout=90)
            self.assertEqual(got[0]["text"], "while offline %d" % i)
        for s in senders:
            self.assertEqual(len(rig.incoming(lambda j, s=s: j.get("from") == s)), 1, s)
        # The command never reaches sms/in.
        self.assertEqual(rig.incoming(lambda j: j.get("from") == OPERATOR), [])


if __name__ == "__main__":
    ct.lab.main(network=False)
