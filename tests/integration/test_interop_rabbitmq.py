#!/usr/bin/python3
"""The fleet scenario against RabbitMQ's MQTT plugin (Debian 12: 3.10, MQTT 3.1.1 only): a
private node from the Debian package (its own config, node name, cookie, epmd, data and
logs in the run directory, MQTT on a free loopback port, no AMQP listener), with the
per-device rule of docs/fleet.md as topic permissions. The agent runs with protocol=3.1.1.

Asserted as RabbitMQ 3.10 does it (docs/fleet.md):
- an agent left at protocol=5 never comes online: the broker closes the connection on the
  MQTT 5 CONNECT, and the agent keeps retrying with backoff;
- dev2's publish into dev1's subtree is not delivered, and the broker closes dev2's
  connection (3.1.1 has no way to refuse a publish);
- a retained message is delivered to a subscription on its exact topic only: the
  backend's `cellagent/+/status` gets no retained status (presence must be read per
  device, or kept by the backend from the live messages);
- a client id is the broker's, not the user's: dev2 connecting with dev1's client id
  throws dev1 off, and with it dev1's persistent session (the agent reconnects into a new
  session and subscribes again).
RabbitMQ 3.13 and later (Debian 13: 4.0) speak MQTT 5: there the scenario runs under both
protocols, and the rest holds as above."""
# ctest: labels=integration;interop timeout=240
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402
from cellagent_test import interop  # noqa: E402

BASE = interop.BASE


def test():
    ct.need("erl", "epmd", "mosquitto_sub", "mosquitto_pub")
    if not os.access("/usr/lib/rabbitmq/bin/rabbitmq-server", os.X_OK):
        ct.skip("rabbitmq-server is not installed (scripts/setup installs it)")
    version = interop.package_version("rabbitmq-server")
    t0 = time.monotonic()
    d = ct.run_dir()
    epmd = interop.Epmd(d)
    rmq = interop.RabbitMQ(d, epmd).start()
    ct.on_failure(lambda: print(rmq.log_text()[-4000:]))
    print(f"RabbitMQ {'.'.join(map(str, version))} started in {time.monotonic() - t0:.1f} s")
    if version >= (3, 13):  # MQTT 5 since 3.13 (Debian 13 has 4.0): the scenario under both
        for protocol in ("5", "3.1.1"):
            check(interop.Scenario(os.path.join(d, protocol), rmq, protocol).run(), rmq)
        rmq.stop()
        print(f"RabbitMQ, MQTT 5 and 3.1.1: passed in {time.monotonic() - t0:.1f} s")
        return

    # MQTT 5: refused; the agent does not come online, it backs off and retries.
    sc5 = interop.Scenario(os.path.join(d, "5"), rmq, "5")
    a = sc5.agent()
    refused = r"connection to 127\.0\.0\.1:%d failed: The connection was lost" % rmq.port
    ct.wait_until(lambda: len(re.findall(refused, a.log_text())) >= 2, ct.scaled(20),
                  "two refused connection attempts under MQTT 5")
    a.wait_log(r"reconnecting to 127\.0\.0\.1:%d in [0-9.]+ s" % rmq.port)
    assert "connected to" not in a.log_text(), "connected with MQTT 5"
    assert sc5.retained(f"{BASE}/status", user="ops", timeout=1) is None
    rc, _ = a.stop()
    assert rc == 0, rc

    check(interop.Scenario(os.path.join(d, "3.1.1"), rmq, "3.1.1").run(), rmq)
    rmq.stop()
    print(f"RabbitMQ, MQTT 3.1.1: passed in {time.monotonic() - t0:.1f} s")


def check(sc, rmq):
    """What RabbitMQ does where brokers differ, after a scenario."""
    # dev2's refused publish: the broker closed the connection before any PUBACK.
    assert "received PUBACK" not in sc.evil.stdout and sc.evil.returncode != 0, sc.evil
    assert "not authorized" in rmq.log_text() or "access_refused" in rmq.log_text()
    # Retained: on the exact topic, not through a wildcard.
    assert interop.offline(sc.retained(f"{BASE}/status", user="backend"))
    assert sc.retained("cellagent/+/status", user="backend", timeout=2) is None, \
        "a wildcard subscription got a retained message: update docs/fleet.md"
    assert sc.takeover, "dev2 could not take dev1's client id: update docs/fleet.md"
    # ... and the takeover ended dev1's session: the agent's next connection found none.
    assert re.search(r'disconnected from .*\n(.*\n)*?.*connected to .* \(MQTT %s, session new\)'
                     % re.escape(sc.protocol), sc.first_agent.log_text()), \
        "the session survived the takeover"


if __name__ == "__main__":
    ct.main(test)
