#!/usr/bin/python3
"""The fleet scenario against ejabberd's mod_mqtt (Debian 12: 23.01), under MQTT 5 and
3.1.1: a private node from the Debian package (its own config, node name, cookie, epmd,
spool and logs in the run directory, MQTT on a free loopback port), with the per-device ACL
of docs/fleet.md. Status with Last Will, telemetry, sms/out and its result (no modem:
queued), a command round trip, a reconnect into the persistent session, and dev2 refused
in dev1's subtree: under MQTT 5 ejabberd answers the refused publish with PUBACK 144
(Topic Name invalid), under 3.1.1 with a plain PUBACK (the message is dropped). ejabberd keys
a session by user name and client id, so dev2 using dev1's client id does not throw dev1
off (what mosquitto needs use_username_as_clientid for)."""
# ctest: labels=integration;interop timeout=180
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402
from cellagent_test import interop  # noqa: E402


def test():
    ct.need("erl", "epmd", "mosquitto_sub", "mosquitto_pub")
    try:
        interop.erl_libs()
    except ct.CommandError as e:
        ct.skip(str(e))
    for protocol in ("5", "3.1.1"):
        t0 = time.monotonic()
        d = ct.run_dir(f"test_interop_ejabberd-{protocol}")
        epmd = interop.Epmd(d)
        ej = interop.Ejabberd(d, epmd).start()
        ct.on_failure(lambda ej=ej: print(ej.log_text()[-4000:]))
        ej.register()
        sc = interop.Scenario(d, ej, protocol).run()
        if protocol == "5":
            assert "received PUBACK (Mid: 1, RC:144)" in sc.evil.stdout, sc.evil.stdout
        else:
            assert "received PUBACK (Mid: 1, RC:0)" in sc.evil.stdout, sc.evil.stdout
        assert not sc.takeover, "dev2 took dev1's connection over with dev1's client id"
        ej.stop()
        print(f"ejabberd, MQTT {protocol}: passed in {time.monotonic() - t0:.1f} s")


if __name__ == "__main__":
    ct.main(test)
