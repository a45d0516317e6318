"""Helpers for the command tests (stdlib only; extends harness.py).

- CommandClient: asks <base>/cmd/<name> over a real broker and collects the answers on
  <base>/cmd/+/result and the events on <base>/events.
- totp(): RFC 6238 codes (HMAC-SHA1, 30 s, 6 digits) from a base32 secret, independent of
  the agent's C implementation.
- write_secret(): a fresh random secret file (base32, mode 0600).
"""
import base64
import hashlib
import hmac
import json
import os
import struct
import time

import harness


class CommandClient:
    def __init__(self, port, base):
        self.port = port
        self.base = base
        self.sub = harness.Subscriber(port, [f"{base}/cmd/+/result", f"{base}/events"])

    def ask(self, name, request_id, args=None, timeout=15):
        """Publish a request and return the parsed answer with that id."""
        req = {"id": request_id}
        if args is not None:
            req["args"] = args
        harness.publish(self.port, f"{self.base}/cmd/{name}", json.dumps(req))
        return self.sub.wait_for(
            f"{self.base}/cmd/{name}/result",
            lambda m: m["json"] is not None and m["json"].get("id") == request_id,
            timeout)[-1]["json"]

    def events(self, pred=None):
        return [m["json"] for m in self.sub.matching(f"{self.base}/events")
                if m["json"] is not None and (pred is None or pred(m["json"]))]

    def wait_event(self, pred, timeout=15, count=1):
        harness.wait_until(lambda: len(self.events(pred)) >= count, timeout, "an event")
        return self.events(pred)[count - 1]


def totp(secret_b32, t=None, step_offset=0):
    key = base64.b32decode(secret_b32.replace(" ", "").upper() + "=" * (-len(secret_b32) % 8))
    counter = int((time.time() if t is None else t) // 30) + step_offset
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    off = digest[19] & 0x0F
    value = struct.unpack(">I", digest[off:off + 4])[0] & 0x7FFFFFFF
    return "%06d" % (value % 1000000)


def write_secret(path, nbytes=20):
    secret = base64.b32encode(os.urandom(nbytes)).decode()
    with open(path, "w") as f:
        f.write(secret + "\n")
    os.chmod(path, 0o600)
    return secret
