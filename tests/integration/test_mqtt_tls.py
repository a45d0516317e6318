#!/usr/bin/python3
"""TLS and credentials, with certificates made by the test (openssl):
- CA + server certificate (localhost) + client certificate (CN=dev1, the broker takes it as
  the user name): online over TLS, under MQTT 5 and 3.1.1;
- a wrong CA: refused with a clear log line, retried with growing backoff, never online;
- the right CA but the wrong host name (127.0.0.1 vs a certificate for localhost): refused;
- password-file: accepted; a wrong password is refused by the broker and retried; the
  password never appears in the log."""
# ctest: labels=integration;mqtt timeout=180
import os
import re
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402


def online(s):
    return s.get("state") == "online"


def delays(text):
    return [float(x) for x in re.findall(r"reconnecting to \S+ in ([0-9.]+) s", text)]


def localhost_port():
    """A port free on every address localhost resolves to.

    The agents connect to "localhost" (the name the server certificate holds); on a
    standard Debian /etc/hosts that is ::1 before 127.0.0.1. mosquitto's `listener PORT
    localhost` binds every one of them, so this test does not depend on the agent's
    address racing (test_mqtt_addresses.py covers that).
    """
    addrs = {ai[4][:2] + (ai[0],) for ai in socket.getaddrinfo("localhost", 0, type=socket.SOCK_STREAM)}
    assert ("127.0.0.1", 0, socket.AF_INET) in addrs, f"localhost is not 127.0.0.1 here: {addrs}"
    for _ in range(20):
        port = ct.free_port()
        try:
            for host, _, family in addrs:
                with socket.socket(family, socket.SOCK_STREAM) as s:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind((host, port))
            return port
        except OSError:
            continue
    raise AssertionError("no port free on every localhost address")


def test():
    ct.need("mosquitto", "mosquitto_sub", "mosquitto_passwd", "openssl")
    d = ct.run_dir()
    env = {"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=" + os.path.join(d, "no-bus")}
    pki = ct.mqtt.make_pki(os.path.join(d, "pki"))
    tls_port = localhost_port()
    # Plain listener (first, from Broker) for the test's own clients; TLS for agents,
    # on every address of localhost (127.0.0.1 among them, for the wrong-host case).
    broker = ct.Broker(d, extra_conf=(
        "user root\n"
        f"listener {tls_port} localhost\n"
        f"cafile {pki['ca']}\ncertfile {pki['server_crt']}\nkeyfile {pki['server_key']}\n"
        "require_certificate true\nuse_identity_as_username true\n")).start()
    ct.on_failure(lambda: print(open(broker.log).read()[-3000:]))

    def tls_settings(device, ca, host="localhost", protocol="5", cert="dev1"):
        return {"agent": {"device-id": device},
                "mqtt": {"host": host, "port": tls_port, "tls": True, "ca-file": ca,
                         "cert-file": pki[f"{cert}_crt"], "key-file": pki[f"{cert}_key"],
                         "protocol": protocol}}

    # Good certificates, both protocol versions.
    for protocol, device in (("5", "dev1"), ("3.1.1", "dev1b")):
        a = ct.Agent(d, tls_settings(device, pki["ca"], protocol=protocol), env=env, name=f"tls-{device}", wrapper=ct.mqtt.WRAPPER)
        ct.on_failure(a.dump_log)
        a.start()
        ct.mqtt.wait_retained(broker.port, f"cellagent/{device}/status", online)
        a.wait_log(r"connected to localhost:%d as \"%s\" \(MQTT %s, TLS" % (tls_port, device, re.escape(protocol)))
        rc, _ = a.stop()
        assert rc == 0
        ct.mqtt.wait_retained(broker.port, f"cellagent/{device}/status", lambda s: s == {"state": "offline"})

    # Wrong CA: refused, clear reason, retried with backoff.
    bad = ct.Agent(d, tls_settings("dev2", pki["wrongca"]), env=env, name="wrong-ca", wrapper=ct.mqtt.WRAPPER)
    ct.on_failure(bad.dump_log)
    bad.start()
    bad.wait_log(r"connection to localhost:%d failed: .*certificate verify failed" % tls_port, 15)
    ct.wait_until(lambda: len(delays(bad.log_text())) >= 3, 30, "three retries")
    ds = delays(bad.log_text())
    assert ds[2] > ds[0], f"no backoff: {ds}"
    assert "connected to" not in bad.log_text()
    assert ct.mqtt.retained(broker.port, "cellagent/dev2/status", timeout=1) is None
    bad.stop()

    # Right CA, wrong name: hostname verification is on.
    wrong_host = ct.Agent(d, tls_settings("dev3", pki["ca"], host="127.0.0.1"), env=env, name="wrong-host", wrapper=ct.mqtt.WRAPPER)
    ct.on_failure(wrong_host.dump_log)
    wrong_host.start()
    wrong_host.wait_log(r"connection to 127\.0\.0\.1:%d failed: .*host name verification failed" % tls_port, 15)
    assert "connected to" not in wrong_host.log_text()
    wrong_host.stop()
    broker.stop()

    # Password authentication (no anonymous access).
    secret = "s3cret-Pa55word"
    pw = ct.mqtt.passwd_file(os.path.join(d, "passwd"), {"dev1": secret, "backend": "backendpw"})
    auth = ct.Broker(d, allow_anonymous=False, extra_conf=f"user root\npassword_file {pw}\n")
    auth.conf = os.path.join(d, "auth.conf")
    auth.log = os.path.join(d, "auth.log")
    auth.start()
    ct.on_failure(lambda: print(open(auth.log).read()[-3000:]))
    backend = ["-u", "backend", "-P", "backendpw"]
    good_pw = os.path.join(d, "dev1.pw")
    with open(good_pw, "w") as f:
        f.write(secret + "\nsecond line ignored\n")
    os.chmod(good_pw, 0o600)
    bad_pw = os.path.join(d, "bad.pw")
    with open(bad_pw, "w") as f:
        f.write("not-the-password\n")
    os.chmod(bad_pw, 0o600)
    for protocol in ("5", "3.1.1"):
        ok = ct.Agent(d, {"mqtt": {"host": "127.0.0.1", "port": auth.port, "username": "dev1",
                                   "password-file": good_pw, "protocol": protocol}}, env=env, name=f"pw-{protocol}",
                      wrapper=ct.mqtt.WRAPPER)
        ct.on_failure(ok.dump_log)
        ok.start()
        ct.mqtt.wait_retained(auth.port, "cellagent/dev1/status", online, extra_args=backend)
        ok.stop()
        assert secret not in ok.log_text()

        wrong = ct.Agent(d, {"mqtt": {"host": "127.0.0.1", "port": auth.port, "username": "dev1",
                                      "password-file": bad_pw, "protocol": protocol}}, env=env,
                         name=f"badpw-{protocol}", wrapper=ct.mqtt.WRAPPER)
        ct.on_failure(wrong.dump_log)
        wrong.start()
        wrong.wait_log(r"broker refused the connection: .*(authori[sz]ed|[Bb]ad user name or password)", 15)
        ct.wait_until(lambda: len(delays(wrong.log_text())) >= 2, 20, "a retry")
        wrong.stop()
        assert "not-the-password" not in wrong.log_text()

    # A password file others can read is refused (one rule for every secret file), with what
    # to fix, and the secret never used.
    os.chmod(good_pw, 0o644)
    loose = ct.Agent(d, {"mqtt": {"host": "127.0.0.1", "port": auth.port, "username": "dev1",
                                  "password-file": good_pw}}, env=env, name="loosepw",
                     wrapper=ct.mqtt.WRAPPER)
    ct.on_failure(loose.dump_log)
    loose.start()
    loose.wait_log(r"cannot read password-file .*accessible to group or others \(mode 0644\)", 15)
    assert "connected to" not in loose.log_text()
    loose.stop()
    auth.stop()


if __name__ == "__main__":
    ct.main(test)
