#!/usr/bin/python3
# ctest: labels=integration;lab timeout=420
"""Economy mode follows NetworkManager's Metered property of the uplink in use, over a real
data path: the emulated Fibocom L610 in ECM mode through the real ModemManager 1.20 and
NetworkManager 1.42 (cellular is the only uplink), the broker in the lab's "internet", so
the agent's MQTT connection crosses usb0.

1. [economy] mode=auto: NetworkManager guesses the modem device metered (guess-yes), so
   economy is on: the "economy" event, the status document, the keepalive the broker sees
   (economy's), and health rounds passed on MQTT traffic (passive health).
2. The connection's connection.metered=no (applied to the active connection by Reapply):
   the device's Metered property turns "no" and economy ends within one probe round
   ([health] interval), the normal keepalive again.
3. connection.metered=yes: economy is on again within one probe round.
4. In economy nothing is lost: a command round trip, an SMS each way, an important
   telemetry change published at once.
5. mode=off (reload): no economy on a metered uplink; mode=on: economy with "yes" or not.
"""
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402
import cellagent_test.lab  # noqa: E402
import cellagent_test.modem  # noqa: E402
import cellagent_test.uplink  # noqa: E402

INTERVAL = 5      # [health] interval: one probe round
KEEPALIVE = 10    # [mqtt] keepalive
ECO_KEEPALIVE = 20
ECO_PROBE = 30    # > ECO_KEEPALIVE + 1: a PINGRESP inside every economy round

lab = broker = sub = agent = None


def setUpModule():
    global lab, broker, sub, agent
    lab = ct.lab.Lab(personality="ecm", connectivity=False).start()
    ct.uplink.enable_ping_sockets(lab)
    broker = ct.uplink.inet_broker(lab)
    sub = broker.subscribe("cellagent/#")
    settings = {
        "agent": {"device-id": "dev1"},
        "mqtt": {"host": broker.host, "port": broker.port, "keepalive": KEEPALIVE},
        "health": dict(ct.uplink.FAST, interval=INTERVAL,
                       probes="icmp:%s;dns:%s" % (ct.lab.INTERNET_PROBE, ct.lab.INTERNET_DNS)),
        "economy": {"mode": "auto", "keepalive": ECO_KEEPALIVE, "probe-interval": ECO_PROBE},
    }
    agent = ct.uplink.start_agent(lab, settings, name="agent")
    ct.on_failure(agent.dump_log)
    ct.on_failure(lambda: print(broker.log_text()[-3000:]))


def tearDownModule():
    ct.uplink.stop_agent(agent)
    lab.stop()


def economy():
    rc, doc = agent.status_json()
    return doc.get("economy") if rc == 0 else None


def device_metered():
    """What the agent reads: the modem device's Metered property."""
    return lab.nm.nmcli("-g", "GENERAL.METERED", "device", "show", "ttyUSB0").strip()


def set_metered(value):
    """connection.metered on the profile, applied to the active connection (Reapply)."""
    lab.nm.nmcli("connection", "modify", "cellular", "connection.metered", value)
    lab.nm.nmcli("device", "reapply", "ttyUSB0")


def keepalives():
    """Keepalive of every connection of dev1 the broker logged, in order."""
    return [int(k) for k in re.findall(r"as dev1 \(p\d, c\d, k(\d+)", broker.log_text())]


def economy_events(since=0):
    return ct.modem.events(sub, since=since, type="economy")


class Economy(unittest.TestCase):

    def test_1_metered_guess(self):
        ct.wait_until(lambda: (economy() or {}).get("active") is True, ct.scaled(60),
                      "economy on (the modem guessed metered)")
        self.assertEqual(device_metered(), "yes (guessed)")
        e = economy()
        self.assertEqual(e["mode"], "auto")
        self.assertEqual(e["uplink"], "cellular")
        self.assertEqual(e["metered"], "guess-yes")
        ct.wait_until(lambda: economy()["keepalive"] == ECO_KEEPALIVE, ct.scaled(10),
                      "economy's keepalive in the status")
        ev = ct.wait_until(lambda: economy_events(), ct.scaled(10), "the economy event")[-1]
        self.assertIs(ev["active"], True)
        self.assertEqual(ev["metered"], "guess-yes")
        ct.wait_until(lambda: keepalives() and keepalives()[-1] == ECO_KEEPALIVE, ct.scaled(20),
                      "a connection with economy's keepalive")
        link = ct.uplink.link(sub)
        self.assertEqual(link["uplinks"]["cellular"]["metered"], "guess-yes")
        # Passive health: economy rounds pass on MQTT traffic, without probes.
        n0 = economy()["passive_rounds"]
        ct.wait_until(lambda: economy()["passive_rounds"] >= n0 + 2, ct.scaled(3 * ECO_PROBE + 10),
                      "health rounds passed on MQTT traffic")
        self.assertEqual(ct.uplink.link(sub)["uplinks"]["cellular"]["state"], "up")

    def test_2_unmetered_leaves_within_one_round(self):
        ct.wait_until(lambda: (economy() or {}).get("active") is True, ct.scaled(60), "economy on")
        mark = len(sub.messages)
        t0 = time.monotonic()
        set_metered("no")
        ct.wait_until(lambda: (economy() or {}).get("active") is False, ct.scaled(2 * INTERVAL),
                      "economy off after connection.metered=no")
        took = time.monotonic() - t0
        self.assertLessEqual(took, ct.scaled(INTERVAL), "economy left later than one probe round")
        self.assertEqual(device_metered(), "no")
        ev = ct.wait_until(lambda: economy_events(mark), ct.scaled(10), "the economy event")[-1]
        self.assertIs(ev["active"], False)
        self.assertEqual(ev["metered"], "no")
        ct.wait_until(lambda: keepalives()[-1] == KEEPALIVE, ct.scaled(20),
                      "a connection with the normal keepalive")
        ct.wait_until(lambda: economy()["keepalive"] == KEEPALIVE, ct.scaled(10),
                      "the normal keepalive in the status")
        # Normal health rounds again: no more passive ones.
        n0 = economy()["passive_rounds"]
        time.sleep(3 * INTERVAL)
        self.assertEqual(economy()["passive_rounds"], n0)

    def test_3_metered_enters_within_one_round(self):
        ct.wait_until(lambda: (economy() or {}).get("active") is False, ct.scaled(30), "economy off")
        mark = len(sub.messages)
        t0 = time.monotonic()
        set_metered("yes")
        ct.wait_until(lambda: (economy() or {}).get("active") is True, ct.scaled(2 * INTERVAL),
                      "economy on after connection.metered=yes")
        self.assertLessEqual(time.monotonic() - t0, ct.scaled(INTERVAL))
        self.assertEqual(device_metered(), "yes")
        ev = ct.wait_until(lambda: economy_events(mark), ct.scaled(10), "the economy event")[-1]
        self.assertIs(ev["active"], True)
        self.assertEqual(ev["metered"], "yes")
        ct.wait_until(lambda: keepalives()[-1] == ECO_KEEPALIVE, ct.scaled(20),
                      "economy's keepalive again")

    def test_4_no_loss_of_function(self):
        """In economy: a command round trip, an SMS each way, and an important telemetry
        change at once (not held back by economy's min-spacing)."""
        ct.wait_until(lambda: (economy() or {}).get("active") is True, ct.scaled(30), "economy on")
        r = ct.modem.command(broker, sub, "ping")
        self.assertTrue(r["ok"], r)
        broker.publish(ct.modem.BASE + "/sms/out", {"id": "eco-1", "to": "+254700000009",
                                                     "text": "economy out"})
        sub.wait_for(ct.modem.BASE + "/sms/out/result",
                     lambda m: m["json"] and m["json"].get("id") == "eco-1"
                     and m["json"].get("status") == "sent", timeout=ct.scaled(60))
        lab.modem.wait_sent(lambda m: m.get("text") == "economy out", timeout=30)
        lab.modem.deliver_sms("economy in", sender="+254711000002")
        sub.wait_for(ct.modem.BASE + "/sms/in",
                     lambda m: m["json"] and m["json"].get("text") == "economy in",
                     timeout=ct.scaled(60))
        mark = len(sub.messages)
        lab.modem.set_registration(stat="roaming")
        try:
            ct.modem.wait_telemetry(sub, lambda t: t["network"]["registration"] == "roaming",
                                    timeout=ct.scaled(30), since=mark)
        finally:
            lab.modem.set_registration(stat="home")
        # MQTT 5 topic aliases (mosquitto allows 10): established once per connection,
        # then used alone, and the broker took them (the connection stayed up).
        def since_economy():
            log = agent.log_text()
            return log[log.rfind("economy mode on"):]
        ct.wait_until(lambda: re.search(r'publish on "cellagent/dev1/\w+" by topic alias \d+',
                                        since_economy()), ct.scaled(15),
                      "a publish by topic alias alone")
        self.assertRegex(since_economy(), r'topic alias \d+ for "cellagent/dev1/(events|telemetry)"')
        self.assertNotIn("disconnected from", since_economy())
        self.assertEqual(broker.log_text().count("Protocol error"), 0)

    def test_5_modes(self):
        ct.wait_until(lambda: (economy() or {}).get("active") is True, ct.scaled(30), "economy on")
        ct.modem.reload_agent(agent, economy={"mode": "off"})
        ct.wait_until(lambda: (economy() or {}).get("active") is False, ct.scaled(10),
                      "mode=off: no economy on a metered uplink")
        self.assertEqual(economy()["reason"], "[economy] mode=off")
        set_metered("no")
        ct.modem.reload_agent(agent, economy={"mode": "on"})
        ct.wait_until(lambda: (economy() or {}).get("active") is True, ct.scaled(10),
                      "mode=on: economy on an unmetered uplink")
        self.assertEqual(economy()["metered"], "no")


if __name__ == "__main__":
    ct.lab.main()
