"""Scenario helpers for the command tests.

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

from cellagent_test.core import wait_until
from cellagent_test.mqtt import Subscriber, publish


class CommandClient:
    def __init__(self, port, base):
        self.port = port
        self.base = base
        self.sub = Subscriber(port, [f"{base}/cmd/+/result", f"{base}/events"])

    def ask(self, name, request_id, args=None, timeout=15):
        """Publish a request and return the parsed answer with that id."""
        req = {"id": request_id}
        if args is not None:
            req["args"] = args
        publish(self.port, f"{self.base}/cmd/{name}", json.dumps(req))
        return self.sub.wait_for(
            f"{self.base}/cmd/{name}/result",
            lambda m: m["json"] is not None and m["json"].get("id") == request_id,
            timeout)[-1]["json"]

    def events(self, pred=None):
        return [m["json"] for m in self.sub.matching(f"{self.base}/events")
                if m["json"] is not None and (pred is None or pred(m["json"]))]

    def wait_event(self, pred, timeout=15, count=1):
        wait_until(lambda: len(self.events(pred)) >= count, timeout, "an event")
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


class CodeBook:
    """TOTP codes for a test, as an operator's app would show them, never reusing a step.

    The agent accepts the steps now-1 .. now+1 (its clock) and only steps later than the
    last one it accepted. next() returns a code of the earliest unused step that will still
    be valid `margin` seconds from now (the SMS's way through the modem), waiting for the
    next 30 s step when none is left; valid() returns such a code without using it up (for
    messages that must be refused before their code is looked at)."""

    def __init__(self, secret_b32, margin=10):
        self.secret = secret_b32
        self.margin = margin
        self.last = -1

    def _window(self):
        now = time.time()
        lo = int((now + self.margin) // 30) - 1   # still acceptable when the SMS arrives
        hi = int(now // 30) + 1                    # acceptable right now
        return lo, hi

    def _code(self, step):
        return totp(self.secret, t=step * 30)

    def next(self, timeout=100):
        deadline = time.monotonic() + timeout
        while True:
            lo, hi = self._window()
            step = max(self.last + 1, lo)
            if step <= hi:
                self.last = step
                return self._code(step)
            if time.monotonic() > deadline:
                raise AssertionError("no TOTP step left within %d s" % timeout)
            wait_until(lambda: self._window()[1] >= max(self.last + 1, self._window()[0]),
                       35, "the next TOTP step")

    def valid(self):
        lo, hi = self._window()
        return self._code(max(self.last + 1, lo) if max(self.last + 1, lo) <= hi else hi)

    def wrong(self):
        """A code that matches no step the agent could accept now (or soon); a different
        one on every call (identical SMS would be one message to the SMS bridge)."""
        now = int(time.time() // 30)
        near = {self._code(s) for s in range(now - 3, now + 4)}
        while True:
            self._wrong = getattr(self, "_wrong", 0) + 1
            c = "%06d" % ((self._wrong * 7919 + 123457) % 1000000)
            if c not in near:
                return c
