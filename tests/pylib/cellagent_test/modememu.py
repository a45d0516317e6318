"""The lab's emulated LTE modem: AT ports on ptys, a JSON control socket.

One process, one event loop (selectors): the pty masters of the AT ports,
the control socket and its clients, and a timer heap. The AT dialogue is
the one ModemManager 1.20.4 needs (docs/lab.md) for two
personalities: "simtech" (SIMCOM A7670E, simtech plugin) and "ecm"
(Fibocom L610 in ECM mode, fibocom plugin, net port usb0).
Not here: the fake sysfs, the mounts and the daemons (see lab.py).
"""

import datetime
import heapq
import itertools
import json
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import termios
import time
import tty

from cellagent_test import smspdu

PERSONALITIES = {
    "simtech": {
        "vid": "1e0e", "pid": "9011", "manufacturer": "SIMCOM INCORPORATED",
        "model": "A7670E-LASE", "revision": "A011B07A7670M7_F",
        "usb_manufacturer": "SimTech, Incorporated", "usb_product": "SimTech SIM7600",
    },
    "ecm": {
        "vid": "1782", "pid": "4d11", "manufacturer": "Fibocom",
        "model": "L610", "revision": "16000.1000.00.96.20.08",
        "usb_manufacturer": "Fibocom", "usb_product": "L610",
    },
}

DEFAULTS = {
    "imei": "861234567890124",
    "iccid": "8925402123456789012",
    "imsi": "639021234567890",
    "operator_code": "63902",
    "operator_name": "Safaricom",
    "spn": "Safaricom",
    "smsc": "+254722500029",
    "pin": "1234",
    "puk": "12345678",
    "sim": "ready",            # ready | absent | pin | puk
    "pin_retries": 3,
    "puk_retries": 10,
    "stat": 1,                 # 3GPP registration status
    "lac": "1A2B",
    "tac": "1A2B",
    "cell": "01A2B3C4",
    "act": 7,                  # 27.007 access technology (7 = E-UTRAN)
    "csq": 22,
    "ber": 99,
    "rsrp": -95,               # dBm
    "rsrq": -10,               # dB
    "sinr": 12,                # dB
    "storage_capacity": 50,
    "report_delay": 0.5,       # seconds before a requested status report
    "read_delay": 0.0,         # seconds before the answer to +CMGR (a slow or loaded host)
    "report_status": 0,        # TP-ST, 0 = received by the recipient
    "apn": "",                 # ECM: the only APN the network grants a session for ("": any)
    "clock_offset": 0,         # seconds added to the UTC time AT+CCLK? answers (network time)
}

PACE_MAX_S = 5.0               # longest a paced part waits for the host to read the previous one
ACT_NAMES = {"gsm": 0, "umts": 2, "edge": 3, "hsdpa": 4, "hsupa": 5, "hspa": 6, "lte": 7}
# 27.007 AcT -> SIMCom +CNSMOD system mode
CNSMOD_OF_ACT = {0: 1, 2: 4, 3: 3, 4: 5, 5: 6, 6: 7, 7: 8}
STAT_NAMES = {"idle": 0, "unregistered": 0, "home": 1, "searching": 2, "denied": 3,
              "unknown": 4, "roaming": 5}
# Queries the real A7670E answers ERROR too (seen in the seed's log): not "unknown".
# Voice/time-zone settings ModemManager switches on; accepted and ignored.
ACCEPTED_SETTINGS = {"+CTZU=", "+CLIP=", "+CRC=", "+CCWA=", "+CTZR="}
KNOWN_ERRORS = {"*CNTI=", "+CEMODE?", "+CUSD=?", "+CLCC=?", "+CPCMREG=?", "+IFC=?", "+CPOL?"}
SMS_STAT = {0: "REC UNREAD", 1: "REC READ", 2: "STO UNSENT", 3: "STO SENT"}


class AtError(Exception):
    """An AT command failed; the argument is the final result line."""

    def __init__(self, final="ERROR"):
        super().__init__(final)
        self.final = final


def cme(n):
    """A +CME ERROR for n."""
    return AtError("+CME ERROR: %d" % n)


def cms(n):
    """A +CMS ERROR for n."""
    return AtError("+CMS ERROR: %d" % n)


def split_args(s):
    """Split an AT argument string on commas outside quotes; strip quotes."""
    out, cur, quoted = [], [], False
    for ch in s:
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            out.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    out.append("".join(cur).strip())
    return [a[1:-1] if len(a) >= 2 and a[0] == a[-1] == '"' else a for a in out]


def split_commands(body):
    """Split the text after AT into sub-commands (';' outside quotes, basic runs)."""
    parts, cur, quoted = [], [], False
    for ch in body:
        if ch == '"':
            quoted = not quoted
        if ch == ";" and not quoted:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur))
    out = []
    for p in parts:
        p = p.strip()
        if not p:
            continue
        if p[0] in "+*%^$#":
            out.append(p)
        else:
            # basic commands may run together: E0V1&C1, or lead into +CMD
            m = re.match(r"^((?:&?[A-Z](?:\d+)?)*)(.*)$", p, re.I)
            basic, rest = m.group(1), m.group(2)
            out.extend(re.findall(r"&?[A-Z]\d*", basic, re.I))
            if rest:
                out.append(rest)
    return out


def now_iso():
    """The current time, ISO 8601 UTC with milliseconds."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


class Port:
    """One AT port: a pty pair whose slave the emulator keeps open."""

    def __init__(self, name):
        self.name = name
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        attrs = termios.tcgetattr(self.slave)
        attrs[3] &= ~termios.ECHO
        termios.tcsetattr(self.slave, termios.TCSANOW, attrs)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        self.inbuf = b""
        self.outbuf = b""
        self.echo = True
        self.prompt = None       # pending +CMGS/+CMGW: {"cmd":..., "len":...}
        self.busy = False        # a deferred final result is outstanding

    def close(self):
        """Close both ends (the modem disappears from the USB bus)."""
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


class Storage:
    """One SMS memory (SM or ME) with a capacity; 0-based indices."""

    def __init__(self, name, capacity):
        self.name = name
        self.capacity = capacity
        self.slots = {}

    def free_index(self):
        """The lowest free index, or None when full."""
        for i in range(self.capacity):
            if i not in self.slots:
                return i
        return None

    def store(self, stat, pdu, length):
        """Store a PDU; return its index or None when full."""
        idx = self.free_index()
        if idx is not None:
            self.slots[idx] = {"stat": stat, "pdu": pdu, "len": length}
        return idx


class Modem:
    """Modem state and the AT command handlers (no I/O of its own)."""

    def __init__(self, emu, personality, overrides):
        self.emu = emu
        self.personality = personality
        self.p = dict(PERSONALITIES[personality])
        self.s = dict(DEFAULTS)
        self.s.update(overrides or {})
        self.p.update({k: v for k, v in (overrides or {}).items() if k in self.p})
        cap = int(self.s["storage_capacity"])
        self.mem = {"SM": Storage("SM", cap), "ME": Storage("ME", cap)}
        self.reset_runtime()
        self.sent = []           # every SMS-SUBMIT transmitted, decoded
        self.events = []         # notable things (SMS dropped, session dropped ...)
        self.mr = 0
        self.send_faults = []    # pending {"error": n} / {"delay": s}
        self.last_stored = None  # (storage, index) of the last SMS part received
        self.session = False     # ECM data session (GTRNDIS) up
        self.session_cid = 1

    def reset_runtime(self):
        """Settings a modem forgets on power cycle."""
        self.cfun = 1
        self.cmgf = 0
        self.cscs = "IRA"
        self.cops_format = 0
        self.reg_mode = {"+CREG": 0, "+CGREG": 0, "+CEREG": 0}
        self.autocsq = False
        self.cnsmod_report = False
        self.cnmi = [0, 0, 0, 0, 0]
        self.cgerep = 0
        self.cpms = ["SM", "ME", "ME"]
        self.pdp = {1: {"type": "IP", "apn": "internet"}}
        self.urc_port = None

    # ------------------------------------------------------------ helpers

    def registered(self):
        """True when home or roaming and the radio is on."""
        return self.cfun == 1 and self.s["sim"] == "ready" and self.s["stat"] in (1, 5)

    def stat(self):
        """Registration status as reported (0 when the radio is off or no SIM)."""
        if self.cfun != 1 or self.s["sim"] != "ready":
            return 0
        return self.s["stat"]

    def require_sim(self):
        """Raise the +CME error a real modem gives without a usable SIM."""
        if self.s["sim"] == "absent":
            raise cme(10)
        if self.s["sim"] == "pin":
            raise cme(11)
        if self.s["sim"] == "puk":
            raise cme(12)

    def reg_line(self, name, with_mode):
        """The +CREG/+CGREG/+CEREG response or URC line."""
        mode = self.reg_mode[name]
        fields = [str(self.stat())]
        if mode >= 2 and self.stat() in (1, 5):
            area = self.s["tac"] if name == "+CEREG" else self.s["lac"]
            fields += ['"%s"' % area, '"%s"' % self.s["cell"], str(self.s["act"])]
        if with_mode:
            fields.insert(0, str(mode))
        return "%s: %s" % (name, ",".join(fields))

    def emit_registration(self):
        """Unsolicited registration reports for every enabled +C*REG."""
        for name, mode in self.reg_mode.items():
            if mode:
                self.emu.urc(self.reg_line(name, False))
        if self.cnsmod_report:
            self.emu.urc("+CNSMOD: %d" % (CNSMOD_OF_ACT.get(self.s["act"], 0) if self.registered() else 0))

    def cesq_values(self):
        """(rsrq index, rsrp index) for +CESQ from dB values."""
        rsrq = max(0, min(34, int(round((self.s["rsrq"] + 20) * 2))))
        rsrp = max(0, min(97, int(self.s["rsrp"]) + 141))
        return rsrq, rsrp

    def iccid_bcd(self):
        """ICCID as the SIM stores it: nibble-swapped BCD, F-padded."""
        digits = self.s["iccid"]
        if len(digits) % 2:
            digits += "F"
        return "".join(digits[i + 1] + digits[i] for i in range(0, len(digits), 2))

    # ------------------------------------------------------------ dispatch

    def execute(self, port, cmd):
        """Run one sub-command; return info lines or raise AtError."""
        up = cmd.upper()
        if up[0] not in "+*%^$#":
            return self.basic(port, up)
        m = re.match(r"^([+*%^$#][A-Z0-9&]+)(=\?|\?|=)?(.*)$", cmd, re.I)
        if not m:
            raise AtError()
        name, op, args = m.group(1).upper(), m.group(2) or "", m.group(3)
        kind = {"": "exec", "?": "read", "=?": "test", "=": "set"}[op]
        if name + op in ACCEPTED_SETTINGS:
            return []
        if name + op in KNOWN_ERRORS:
            self.emu.log("known-unsupported on %s: %s -> ERROR" % (port.name, cmd))
            raise AtError()
        handler = getattr(self, "at_" + re.sub(r"[^a-z0-9]", "_", name[1:].lower()), None)
        if handler is None or (self.personality != "ecm" and name == "+GTRNDIS"):
            self.emu.unknown(port, cmd)
            raise AtError()
        return handler(port, kind, args)

    def basic(self, port, cmd):
        """Basic commands: E, V, X, &C, &D, Q, I, Z, &F, &W, D, H."""
        if cmd in ("E0", "E1", "E"):
            port.echo = cmd == "E1"
            return []
        if cmd in ("V1", "X4", "X0", "&C1", "&D2", "&D0", "Q0", "&F", "&F0", "&W", "H", "H0", "L0", "M0"):
            return []
        if cmd == "Z":
            return []
        if cmd in ("I", "I0"):
            return ["Manufacturer: " + self.p["manufacturer"], "Model: " + self.p["model"],
                    "Revision: " + self.p["revision"], "IMEI: " + self.s["imei"],
                    "+GCAP: +CGSM,+FCLASS,+DS"]
        if cmd.startswith("D"):
            raise AtError("NO CARRIER")
        self.emu.unknown(port, cmd)
        raise AtError()

    # ------------------------------------------------------------ identity

    def at_gcap(self, port, kind, args):
        return ["+GCAP: +CGSM,+FCLASS,+DS"]

    def at_cgmi(self, port, kind, args):
        return [self.p["manufacturer"]] if kind == "exec" else []

    at_gmi = at_cgmi

    def at_cgmm(self, port, kind, args):
        return [self.p["model"]] if kind == "exec" else []

    at_gmm = at_cgmm

    def at_cgmr(self, port, kind, args):
        return [self.p["revision"]] if kind == "exec" else []

    at_gmr = at_cgmr

    def at_cgsn(self, port, kind, args):
        return [self.s["imei"]] if kind == "exec" else []

    at_gsn = at_cgsn

    def at_ws46(self, port, kind, args):
        if kind == "test":
            return ["+WS46: (12,22,25,28,29,30,31)"]
        if kind == "read":
            return ["+WS46: 30"]
        return []

    def at_cscs(self, port, kind, args):
        if kind == "test":
            return ['+CSCS: ("IRA","GSM","UCS2")']
        if kind == "read":
            return ['+CSCS: "%s"' % self.cscs]
        if kind == "set":
            cs = split_args(args)[0].upper()
            if cs not in ("IRA", "GSM", "UCS2"):
                raise cme(4)
            self.cscs = cs
        return []

    def at_cmee(self, port, kind, args):
        return ["+CMEE: 1"] if kind == "read" else (["+CMEE: (0-2)"] if kind == "test" else [])

    def at_cfun(self, port, kind, args):
        if kind == "read":
            return ["+CFUN: %d" % self.cfun]
        if kind == "test":
            return ["+CFUN: (0,1,4,15),(0-1)"]
        if kind == "set":
            a = split_args(args)
            fun = int(a[0] or 1)
            if fun not in (0, 1, 4, 15):
                raise cme(4)
            # AT+CFUN=1,1 (3GPP) and AT+CFUN=15 (ModemManager 1.20's reset for the
            # fibocom plugin, Fibocom's full reset) restart the modem.
            if fun == 15 or (len(a) > 1 and a[1] == "1"):
                self.emu.event("reset", cmd="AT+CFUN=%s" % args)
                self.reset_runtime()
                fun = 1
            self.cfun = fun
            self.emu.after(0.05, self.emit_registration)
        return []

    def at_creset(self, port, kind, args):
        # SIMCom's module reset, what ModemManager 1.24's simtech plugin sends for
        # Modem.Reset (1.20 sends AT+CFUN=15). Like AT+CFUN=1,1 here: the radio
        # restarts and forgets its runtime settings; the ports stay.
        if kind != "exec":
            raise AtError()
        self.emu.event("reset", cmd="AT+CRESET")
        self.reset_runtime()
        self.emu.after(0.05, self.emit_registration)
        return []

    def at_cnmp(self, port, kind, args):
        if kind == "read":
            return ["+CNMP: 2"]
        if kind == "test":
            return ["+CNMP: (2,13,14,38,48,51,54,71)"]
        return []

    def at_cnsmod(self, port, kind, args):
        if kind == "read":
            mode = CNSMOD_OF_ACT.get(self.s["act"], 0) if self.registered() else 0
            return ["+CNSMOD: %d,%d" % (int(self.cnsmod_report), mode)]
        if kind == "set":
            self.cnsmod_report = split_args(args)[0] == "1"
        if kind == "test":
            return ["+CNSMOD: (0-1)"]
        return []

    def at_autocsq(self, port, kind, args):
        if kind == "set":
            self.autocsq = split_args(args)[0] == "1"
        if kind == "read":
            return ["+AUTOCSQ: %d,1" % int(self.autocsq)]
        if kind == "test":
            return ["+AUTOCSQ: (0-1),(0-1)"]
        return []

    def at_cgdcont(self, port, kind, args):
        if kind == "test":
            return ['+CGDCONT: (1-24),"IP",,,(0-2),(0-4),(0-1),(0-1)',
                    '+CGDCONT: (1-24),"IPV6",,,(0-2),(0-4),(0-1),(0-1)',
                    '+CGDCONT: (1-24),"IPV4V6",,,(0-2),(0-4),(0-1),(0-1)']
        if kind == "read":
            return ['+CGDCONT: %d,"%s","%s","0.0.0.0",0,0' % (cid, c["type"], c["apn"])
                    for cid, c in sorted(self.pdp.items())]
        if kind == "set":
            a = split_args(args)
            cid = int(a[0])
            if len(a) == 1:
                self.pdp.pop(cid, None)
            else:
                self.pdp[cid] = {"type": a[1] or "IP", "apn": a[2] if len(a) > 2 else ""}
        return []

    def at_cgact(self, port, kind, args):
        if kind == "read":
            return ["+CGACT: %d,%d" % (cid, int(self.session and cid == self.session_cid))
                    for cid in sorted(self.pdp)]
        if kind == "test":
            return ["+CGACT: (0,1)"]
        return []

    def at_cgatt(self, port, kind, args):
        if kind == "read":
            return ["+CGATT: %d" % int(self.registered())]
        if kind == "test":
            return ["+CGATT: (0,1)"]
        return []

    def at_cgerep(self, port, kind, args):
        if self.personality != "ecm":
            raise AtError()          # the real A7670E answers ERROR too
        if kind == "test":
            return ["+CGEREP: (0-2),(0-1)"]
        if kind == "read":
            return ["+CGEREP: %d,0" % self.cgerep]
        if kind == "set":
            self.cgerep = int(split_args(args)[0] or 0)
        return []

    # ------------------------------------------------------------ SIM

    def at_cpin(self, port, kind, args):
        sim = self.s["sim"]
        if kind == "read":
            if sim == "absent":
                raise cme(10)
            return ["+CPIN: " + {"ready": "READY", "pin": "SIM PIN", "puk": "SIM PUK"}[sim]]
        if kind == "set":
            a = split_args(args)
            if sim == "pin":
                if a[0] == self.s["pin"]:
                    self.s["sim"] = "ready"
                    self.s["pin_retries"] = 3
                    self.emu.event("sim-unlocked")
                    return []
                self.s["pin_retries"] -= 1
                if self.s["pin_retries"] <= 0:
                    self.s["sim"] = "puk"
                raise cme(16)
            if sim == "puk":
                if a[0] == self.s["puk"] and len(a) > 1:
                    self.s.update(sim="ready", pin=a[1], pin_retries=3, puk_retries=10)
                    return []
                self.s["puk_retries"] -= 1
                raise cme(16)
            if sim == "absent":
                raise cme(10)
            raise cme(3)
        if kind == "test":
            return []
        raise AtError()

    def at_csim(self, port, kind, args):
        if kind != "set":
            raise AtError()
        if self.s["sim"] == "absent":
            raise cme(10)
        apdu = split_args(args)[1].upper()
        retries = {"0020000100": self.s["pin_retries"], "002C000100": self.s["puk_retries"],
                   "0020008100": 3, "002C008100": 10}
        if apdu in retries:
            return ['+CSIM: 4,"63C%X"' % max(0, min(15, retries[apdu]))]
        return ['+CSIM: 4,"6D00"']

    def at_clck(self, port, kind, args):
        if kind == "test":
            return ['+CLCK: ("SC","FD","PN","PU","PP","PC","PF")']
        if kind == "set":
            self.require_sim()
            a = split_args(args)
            if len(a) > 1 and a[1] == "2":
                return ["+CLCK: 0"]
        return []

    def at_cpinr(self, port, kind, args):
        self.require_sim()
        return ["+CPINR: SIM PIN,%d,3" % self.s["pin_retries"],
                "+CPINR: SIM PUK,%d,10" % self.s["puk_retries"]]

    def at_crsm(self, port, kind, args):
        if kind != "set":
            raise AtError()
        if self.s["sim"] == "absent":
            raise cme(10)
        if self.s["sim"] != "ready":
            raise cme(11 if self.s["sim"] == "pin" else 12)
        a = split_args(args)
        fid = a[1] if len(a) > 1 else ""
        if a[0] == "176" and fid == "12258":          # EF_ICCID
            return ['+CRSM: 144,0,"%s"' % self.iccid_bcd()]
        if a[0] == "176" and fid == "28589":          # EF_AD, MNC length
            return ['+CRSM: 144,0,"000000%02X"' % (len(self.s["operator_code"]) - 3)]
        if a[0] == "176" and fid == "28486":          # EF_SPN
            name = self.s["spn"].encode("ascii", "replace")[:16]
            return ['+CRSM: 144,0,"01%s"' % (name + b"\xff" * (16 - len(name))).hex().upper()]
        return ['+CRSM: 106,130,""']

    def at_cimi(self, port, kind, args):
        self.require_sim()
        return [self.s["imsi"]] if kind == "exec" else []

    def at_ccid(self, port, kind, args):
        self.require_sim()
        return ["+CCID: " + self.s["iccid"]]

    at_iccid = at_ccid
    at_ciccid = at_ccid

    def at_cnum(self, port, kind, args):
        self.require_sim()
        return []

    # ------------------------------------------------------------ network

    def _reg(self, name, kind, args):
        if kind == "test":
            return ["%s: (0-2)" % name]
        if kind == "read":
            return [self.reg_line(name, True)]
        if kind == "set":
            self.reg_mode[name] = int(split_args(args)[0] or 0)
        return []

    def at_creg(self, port, kind, args):
        return self._reg("+CREG", kind, args)

    def at_cgreg(self, port, kind, args):
        return self._reg("+CGREG", kind, args)

    def at_cereg(self, port, kind, args):
        return self._reg("+CEREG", kind, args)

    def at_cops(self, port, kind, args):
        if kind == "test":
            self.require_sim()
            return ['+COPS: (2,"%s","%s","%s",%d),,(0-4),(0-2)' % (
                self.s["operator_name"], self.s["operator_name"][:8], self.s["operator_code"],
                self.s["act"])]
        if kind == "read":
            if not self.registered():
                return ["+COPS: 0"]
            oper = self.s["operator_code"] if self.cops_format == 2 else self.s["operator_name"]
            return ['+COPS: 0,%d,"%s",%d' % (self.cops_format, oper, self.s["act"])]
        if kind == "set":
            a = split_args(args)
            if a[0] == "3" and len(a) > 1:
                self.cops_format = int(a[1])
        return []

    def at_csq(self, port, kind, args):
        if kind == "test":
            return ["+CSQ: (0-31,99),(0-7,99)"]
        if not self.registered() and self.cfun != 1:
            return ["+CSQ: 99,99"]
        return ["+CSQ: %d,%d" % (self.s["csq"], self.s["ber"])]

    def at_cesq(self, port, kind, args):
        if kind == "test":
            return ["+CESQ: (0-63,99),(0-7,99),(0-96,255),(0-49,255),(0-34,255),(0-97,255)"]
        if self.cfun != 1:
            return ["+CESQ: 99,99,255,255,255,255"]
        rsrq, rsrp = self.cesq_values()
        if self.s["act"] == 7:
            return ["+CESQ: 99,99,255,255,%d,%d" % (rsrq, rsrp)]
        return ["+CESQ: %d,99,255,255,255,255" % min(63, self.s["csq"] * 2)]

    def at_cpsi(self, port, kind, args):
        if kind != "read":
            return []
        if not self.registered():
            return ["+CPSI: NO SERVICE,Online"]
        code = self.s["operator_code"]
        return ["+CPSI: LTE,Online,%s-%s,0x%s,%d,300,EUTRAN-BAND3,1300,5,5,%d,%d,%d,%d" % (
            code[:3], code[3:], self.s["tac"], int(self.s["cell"], 16), int(self.s["rsrq"] * 10),
            int(self.s["rsrp"] * 10), int(self.s["rsrp"]) + 20, self.s["sinr"])]

    def at_cclk(self, port, kind, args):
        if kind != "read":
            return []
        t = datetime.datetime.now(datetime.timezone.utc) + \
            datetime.timedelta(seconds=float(self.s["clock_offset"]))
        return [t.strftime('+CCLK: "%y/%m/%d,%H:%M:%S+00"')]

    # ------------------------------------------------------------ messaging

    def at_cmgf(self, port, kind, args):
        if kind == "test":
            return ["+CMGF: (0-1)"]
        if kind == "read":
            return ["+CMGF: %d" % self.cmgf]
        if kind == "set":
            self.cmgf = int(split_args(args)[0] or 0)
            if self.cmgf != 0:
                self.cmgf = 0
                raise cms(303)
        return []

    def at_csca(self, port, kind, args):
        if kind == "read":
            self.require_sim()
            return ['+CSCA: "%s",%d' % (self.s["smsc"], 145 if self.s["smsc"].startswith("+") else 129)]
        if kind == "set":
            self.s["smsc"] = split_args(args)[0]
        return []

    def at_csms(self, port, kind, args):
        if kind == "read":
            return ["+CSMS: 0,1,1,1"]
        if kind == "test":
            return ["+CSMS: (0-1)"]
        return ["+CSMS: 1,1,1"]

    def at_cnmi(self, port, kind, args):
        if kind == "test":
            return ["+CNMI: (0-2),(0-3),(0,2),(0-2),(0,1)"]
        if kind == "read":
            return ["+CNMI: " + ",".join(str(v) for v in self.cnmi)]
        if kind == "set":
            vals = [int(v or 0) for v in split_args(args)]
            self.cnmi = (vals + [0] * 5)[:5]
            self.urc_port = port.name
        return []

    def at_cpms(self, port, kind, args):
        if kind == "test":
            return ['+CPMS: ("SM","ME"),("SM","ME"),("SM","ME")']
        if kind == "read":
            fields = []
            for m in self.cpms:
                st = self.mem[m]
                fields.append('"%s",%d,%d' % (m, len(st.slots), st.capacity))
            return ["+CPMS: " + ",".join(fields)]
        if kind == "set":
            self.require_sim()
            a = [x.upper() for x in split_args(args) if x]
            if any(m not in self.mem for m in a):
                raise cms(302)
            for i, m in enumerate(a[:3]):
                self.cpms[i] = m
            fields = []
            for m in self.cpms:
                st = self.mem[m]
                fields.append("%d,%d" % (len(st.slots), st.capacity))
            return ["+CPMS: " + ",".join(fields)]
        return []

    def _stat_filter(self, value):
        stat = int(value) if value not in ("", None) else 4
        return stat

    def at_cmgl(self, port, kind, args):
        if kind == "test":
            return ["+CMGL: (0-4)"]
        self.require_sim()
        want = self._stat_filter(split_args(args)[0] if args else 4)
        st = self.mem[self.cpms[0]]
        lines = []
        for idx in sorted(st.slots):
            slot = st.slots[idx]
            if want != 4 and slot["stat"] != want:
                continue
            lines += ["+CMGL: %d,%d,,%d" % (idx, slot["stat"], slot["len"]), slot["pdu"]]
            if slot["stat"] == 0:
                slot["stat"] = 1
            slot["answered"] = True
        return lines

    def at_cmgr(self, port, kind, args):
        if kind != "set":
            raise AtError()
        self.require_sim()
        idx = int(split_args(args)[0])
        st = self.mem[self.cpms[0]]
        slot = st.slots.get(idx)
        if slot is None:
            raise cms(321)
        lines = ["+CMGR: %d,,%d" % (slot["stat"], slot["len"]), slot["pdu"]]

        def answered():
            if slot["stat"] == 0:
                slot["stat"] = 1
            slot["answered"] = True
        delay = float(self.s["read_delay"])
        if delay > 0:
            self.emu.defer(port, delay, lines, then=answered)
            return None
        answered()
        return lines

    def at_cmgd(self, port, kind, args):
        if kind == "test":
            st = self.mem[self.cpms[0]]
            return ["+CMGD: (%s),(0-4)" % ",".join(str(i) for i in sorted(st.slots))]
        if kind != "set":
            raise AtError()
        self.require_sim()
        a = split_args(args)
        idx, flag = int(a[0]), int(a[1]) if len(a) > 1 and a[1] else 0
        st = self.mem[self.cpms[0]]
        if flag == 0:
            if idx not in st.slots:
                raise cms(321)
            del st.slots[idx]
        else:
            keep = {1: (0, 2, 3), 2: (0, 2), 3: (0,), 4: ()}.get(flag, ())
            for i in list(st.slots):
                if st.slots[i]["stat"] not in keep:
                    del st.slots[i]
        self.emu.event("sms-deleted", mem=st.name, index=idx, flag=flag)
        return []

    def at_cmgs(self, port, kind, args):
        if kind == "test":
            return []
        if kind != "set":
            raise AtError()
        self.require_sim()
        port.prompt = {"cmd": "CMGS", "len": int(split_args(args)[0])}
        return None

    def at_cmgw(self, port, kind, args):
        if kind == "test":
            return []
        self.require_sim()
        a = split_args(args) if args else ["0"]
        port.prompt = {"cmd": "CMGW", "len": int(a[0] or 0), "stat": int(a[1]) if len(a) > 1 and a[1] else 2}
        return None

    def at_cmss(self, port, kind, args):
        if kind != "set":
            raise AtError()
        self.require_sim()
        idx = int(split_args(args)[0])
        slot = self.mem[self.cpms[1]].slots.get(idx)
        if slot is None:
            raise cms(321)
        return self.transmit(port, slot["pdu"], "CMSS", slot)

    def prompt_done(self, port, prompt, hexpdu):
        """The PDU after a '> ' prompt arrived (Ctrl-Z); return info lines."""
        if prompt["cmd"] == "CMGW":
            try:
                smspdu.decode_submit(hexpdu)
            except smspdu.PduError:
                raise cms(304)
            st = self.mem[self.cpms[1]]
            idx = st.store(prompt["stat"], hexpdu, prompt["len"])
            if idx is None:
                raise cms(322)
            return ["+CMGW: %d" % idx]
        return self.transmit(port, hexpdu, "CMGS")

    def transmit(self, port, hexpdu, via, slot=None):
        """Send one SMS-SUBMIT: record it, apply faults, schedule a status report."""
        try:
            sub = smspdu.decode_submit(hexpdu)
        except smspdu.PduError as exc:
            self.emu.event("bad-pdu", pdu=hexpdu, error=str(exc))
            raise cms(304)
        if not self.registered():
            self.record_sent(sub, hexpdu, port, None, "+CMS ERROR: 331")
            raise cms(331)
        fault = self.send_faults.pop(0) if self.send_faults else {}
        if fault.get("error") is not None:
            self.record_sent(sub, hexpdu, port, None, "+CMS ERROR: %d" % fault["error"])
            raise cms(int(fault["error"]))
        self.mr = (self.mr + 1) % 256
        mr = self.mr
        self.record_sent(sub, hexpdu, port, mr, "OK")
        if slot is not None:
            slot["stat"] = 3
        if sub["srr"]:
            self.emu.after(float(self.s["report_delay"]) + float(fault.get("delay") or 0),
                           lambda: self.status_report(mr, sub["number"]))
        line = "+%s: %d" % (via, mr)
        if fault.get("delay"):
            self.emu.defer(port, float(fault["delay"]), [line])
            return None
        return [line]

    def record_sent(self, sub, hexpdu, port, mr, result):
        """Append a transmitted (or refused) SMS-SUBMIT to the dump."""
        entry = dict(sub)
        entry.update(ts=now_iso(), port=port.name, reference=mr, result=result, pdu=hexpdu)
        self.sent.append(entry)
        self.emu.log("SMS %s to %s: %r (%s)" % (result, sub["number"], sub["text"], sub["concat"]))

    def status_report(self, mr, number):
        """Deliver an SMS-STATUS-REPORT for message reference mr."""
        pdu, length = smspdu.encode_status_report(mr, number, status=int(self.s["report_status"]),
                                                  smsc=self.s["smsc"])
        self.emu.event("status-report", reference=mr, number=number)
        ds = self.cnmi[3]
        if ds == 1:
            self.emu.urc("+CDS: %d" % length, pdu)
        elif ds == 2:
            st = self.mem[self.cpms[2]]
            idx = st.store(0, pdu, length)
            if idx is not None:
                self.emu.urc('+CDSI: "%s",%d' % (st.name, idx))

    def receive_pdu(self, pdu, length):
        """An SMS-DELIVER arrives from the network: store + +CMTI, or +CMT."""
        if self.cfun != 1 or self.s["sim"] != "ready":
            self.emu.event("sms-dropped", reason="not ready")
            return False
        self.last_stored = None
        if self.cnmi[1] == 2:
            self.emu.urc("+CMT: ,%d" % length, pdu)
            return True
        st = self.mem[self.cpms[2]]
        idx = st.store(0, pdu, length)
        if idx is None:
            self.emu.event("sms-dropped", reason="storage full", mem=st.name)
            return False
        self.last_stored = (st, idx)
        if self.cnmi[1] in (1, 3):
            self.emu.urc('+CMTI: "%s",%d' % (st.name, idx))
        self.emu.event("sms-stored", mem=st.name, index=idx)
        return True

    # ------------------------------------------------------------ ECM data (fibocom)

    def at_xact(self, port, kind, args):
        raise AtError()              # must fail, or the modem is taken for an Intel XMM

    def at_gtrndis(self, port, kind, args):
        if kind == "test":
            return ["+GTRNDIS: (0-1),(1-24)"]
        if kind == "read":
            if self.session:
                return ["+GTRNDIS: 1,%d" % self.session_cid]
            return ["+GTRNDIS: 0"]
        if kind == "set":
            a = split_args(args)
            cid = int(a[1]) if len(a) > 1 and a[1] else 1
            if a[0] == "1":
                if not self.registered():
                    raise cme(30)
                apn = self.pdp.get(cid, {}).get("apn", "")
                if self.s["apn"] and apn.lower() != self.s["apn"].lower():
                    self.emu.event("session-rejected", cid=cid, apn=apn)
                    raise cme(33)        # requested service option not subscribed
                self.session, self.session_cid = True, cid
                self.emu.event("session-up", cid=cid, apn=apn)
                self.emu.net_link(True)
            else:
                self.session = False
                self.emu.event("session-down", cid=cid, by="host")
                self.emu.net_link(False)
        return []

    def drop_session(self, notify):
        """The network drops the data session; notify sends +CGEV: NW PDN DEACT."""
        was = self.session
        self.session = False
        self.emu.net_link(False)
        self.emu.event("session-down", cid=self.session_cid, by="network", notified=notify)
        if notify and self.cgerep:
            self.emu.urc("+CGEV: NW PDN DEACT %d" % self.session_cid)
        return was


class Emulator:
    """Event loop: AT ports, control socket, timers; the Modem does the talking."""

    def __init__(self, personality, nports, ctl_path, state_path, log_path, overrides=None,
                 op_netns=None, op_ifname=None):
        self.sel = selectors.DefaultSelector()
        self.timers = []
        self.seq = itertools.count()
        self.logf = open(log_path, "a", buffering=1) if log_path else sys.stderr
        self.state_path = state_path
        self.nports = nports
        self.op_netns, self.op_ifname = op_netns, op_ifname
        self.blackholed = False
        self.commands = []
        self.unknowns = []
        self.modem = Modem(self, personality, overrides)
        self.ports = []
        self.plugged = False
        self.ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if os.path.exists(ctl_path):
            os.unlink(ctl_path)
        self.ctl.bind(ctl_path)
        self.ctl.listen(8)
        self.ctl.setblocking(False)
        self.ctl_path = ctl_path
        self.sel.register(self.ctl, selectors.EVENT_READ, ("ctl-listen", None))
        self.running = True
        self.plug()

    # ------------------------------------------------------------ plumbing

    def log(self, msg):
        """One timestamped line to the emulator's log."""
        self.logf.write("%s %s\n" % (now_iso(), msg))

    def event(self, kind, **fields):
        """Record a notable event in the dump."""
        fields.update(ts=now_iso(), type=kind)
        self.modem.events.append(fields)
        self.log("event %s" % json.dumps(fields))

    def unknown(self, port, cmd):
        """Log an AT command the emulator does not know (answered ERROR)."""
        self.unknowns.append({"ts": now_iso(), "port": port.name, "cmd": cmd})
        self.log("UNKNOWN AT command on %s: %s" % (port.name, cmd))

    def after(self, delay, fn):
        """Run fn after delay seconds."""
        heapq.heappush(self.timers, (time.monotonic() + delay, next(self.seq), fn))

    def write_state(self):
        """Publish pid and port -> pty paths for the fixtures (atomic)."""
        state = {"pid": os.getpid(), "plugged": self.plugged,
                 "personality": self.modem.personality,
                 "ports": {p.name: p.path for p in self.ports}}
        tmp = self.state_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(state, f)
        os.replace(tmp, self.state_path)

    def plug(self):
        """Create the AT ports (new ptys)."""
        self.ports = [Port("ttyUSB%d" % i) for i in range(self.nports)]
        for p in self.ports:
            self.sel.register(p.master, selectors.EVENT_READ, ("port", p))
            self.log("port %s on %s" % (p.name, p.path))
        self.plugged = True
        self.modem.reset_runtime()
        self.write_state()

    def unplug(self):
        """Close every port: the device leaves the bus."""
        for p in self.ports:
            try:
                self.sel.unregister(p.master)
            except (KeyError, ValueError):
                pass
            p.close()
        self.ports = []
        self.plugged = False
        if self.modem.session:
            self.modem.session = False
            self.net_link(False)
        self.write_state()
        self.event("unplugged")

    def port_by_name(self, name):
        """The plugged port called name, or None."""
        for p in self.ports:
            if p.name == name:
                return p
        return None

    def send(self, port, data):
        """Queue bytes for a port."""
        if port not in self.ports:
            return
        port.outbuf += data
        self.flush(port)

    def flush(self, port):
        """Write what the pty accepts; watch for writability for the rest."""
        try:
            while port.outbuf:
                n = os.write(port.master, port.outbuf)
                port.outbuf = port.outbuf[n:]
        except BlockingIOError:
            pass
        except OSError as exc:
            self.log("write error on %s: %s" % (port.name, exc))
            port.outbuf = b""
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if port.outbuf else 0)
        try:
            self.sel.modify(port.master, events, ("port", port))
        except (KeyError, ValueError):
            pass

    def reply(self, port, lines, final="OK"):
        """Send info lines and a final result, verbose format."""
        out = "\r\n" + "\r\n".join(lines) + "\r\n" if lines else ""
        if final is not None:
            out += "\r\n%s\r\n" % final
        self.log("-> %s: %r" % (port.name, out))
        self.send(port, out.encode("utf-8", "replace"))

    def urc(self, *lines):
        """Send an unsolicited result (one or more lines) on the URC port."""
        port = self.port_by_name(self.modem.urc_port) or (self.ports[0] if self.ports else None)
        if port is None:
            self.log("URC lost (unplugged): %r" % (lines,))
            return
        text = "\r\n" + "\r\n".join(lines) + "\r\n"
        self.log("-> %s (urc): %r" % (port.name, text))
        self.send(port, text.encode())

    def defer(self, port, delay, lines, final="OK", then=None):
        """Send a final result later (a slow network); the port stays busy."""
        port.busy = True

        def done():
            port.busy = False
            self.reply(port, lines, final)
            if then is not None:
                then()
        self.after(delay, done)

    def net_link(self, up):
        """Raise or lower the operator side of the ECM net port."""
        if not self.op_netns:
            return
        self.run_ip("link", "set", "dev", self.op_ifname, "up" if up else "down")

    def run_ip(self, *args):
        """ip -n <operator netns> ...; logged."""
        cmd = ["ip", "-n", self.op_netns] + list(args)
        res = subprocess.run(cmd, capture_output=True, text=True)
        self.log("%s -> %d %s" % (" ".join(cmd), res.returncode, res.stderr.strip()))
        return res.returncode == 0

    def set_blackhole(self, on):
        """Silently drop everything the operator forwards upstream."""
        if not self.op_netns:
            raise ValueError("no operator namespace")
        if on:
            rules = ("table inet labop {\n chain filter_forward {\n"
                     "  type filter hook forward priority 0; policy drop;\n }\n}\n")
        else:
            rules = "delete table inet labop"
        res = subprocess.run(["ip", "netns", "exec", self.op_netns, "nft", "-f", "-"],
                             input=rules, capture_output=True, text=True)
        self.log("nft (%s) -> %d %s" % (rules, res.returncode, res.stderr.strip()))
        if res.returncode and on:
            raise ValueError("nft failed: " + res.stderr.strip())
        self.blackholed = on

    # ------------------------------------------------------------ AT input

    def on_port_read(self, port):
        """Read from a pty master and handle complete command lines."""
        try:
            data = os.read(port.master, 4096)
        except BlockingIOError:
            return
        except OSError as exc:
            self.log("read error on %s: %s" % (port.name, exc))
            return
        port.inbuf += data
        while port.inbuf:
            if port.prompt is not None:
                if not self.handle_prompt(port):
                    return
                continue
            m = re.search(rb"[\r\n]", port.inbuf)
            if not m:
                return
            line, port.inbuf = port.inbuf[:m.start()], port.inbuf[m.end():]
            line = line.decode("utf-8", "replace").strip()
            if line:
                self.handle_line(port, line)

    def handle_prompt(self, port):
        """Collect a PDU after '> ' until Ctrl-Z (send) or ESC (cancel)."""
        buf = port.inbuf
        z, esc = buf.find(b"\x1a"), buf.find(b"\x1b")
        if z < 0 and esc < 0:
            return False
        prompt, port.prompt = port.prompt, None
        if esc >= 0 and (z < 0 or esc < z):
            port.inbuf = buf[esc + 1:]
            self.log("<- %s: prompt cancelled" % port.name)
            self.reply(port, [])
            return True
        pdu = buf[:z].decode("ascii", "replace").strip()
        port.inbuf = buf[z + 1:]
        self.log("<- %s: PDU %s" % (port.name, pdu))
        if self.commands:
            self.commands[-1]["pdu"] = pdu
        try:
            lines = self.modem.prompt_done(port, prompt, pdu)
        except AtError as err:
            self.reply(port, [], err.final)
            return True
        if lines is not None:
            self.reply(port, lines)
        return True

    def handle_line(self, port, line):
        """Handle one command line (may hold several ';' sub-commands)."""
        self.log("<- %s: %r" % (port.name, line))
        self.commands.append({"ts": now_iso(), "port": port.name, "cmd": line})
        if port.echo:
            self.send(port, (line + "\r").encode())
        if line.upper() == "A/":
            return self.reply(port, [])
        if not line.upper().startswith("AT"):
            return self.reply(port, [], "ERROR")
        info = []
        try:
            for cmd in split_commands(line[2:]):
                res = self.modem.execute(port, cmd)
                if res is None:          # prompt or deferred result
                    if port.prompt is not None:
                        self.log("-> %s: prompt" % port.name)
                        self.send(port, b"\r\n> ")
                    return None
                info += res
        except AtError as err:
            return self.reply(port, info, err.final)
        except (ValueError, IndexError, KeyError) as exc:
            self.log("bad arguments in %r: %s" % (line, exc))
            return self.reply(port, info, "+CME ERROR: 50")
        return self.reply(port, info)

    # ------------------------------------------------------------ control

    def on_ctl_accept(self):
        conn, _ = self.ctl.accept()
        conn.setblocking(False)
        self.sel.register(conn, selectors.EVENT_READ, ("ctl", {"sock": conn, "buf": b""}))

    def on_ctl_read(self, client):
        try:
            data = client["sock"].recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.sel.unregister(client["sock"])
            client["sock"].close()
            return
        client["buf"] += data
        while b"\n" in client["buf"]:
            line, client["buf"] = client["buf"].split(b"\n", 1)
            if line.strip():
                self.handle_ctl(client, line)

    def ctl_reply(self, client, obj):
        try:
            client["sock"].setblocking(True)
            client["sock"].sendall((json.dumps(obj) + "\n").encode())
            client["sock"].setblocking(False)
        except OSError:
            pass

    def handle_ctl(self, client, line):
        """Run one control request {"cmd": ..., ...}; reply {"ok": ...}."""
        try:
            req = json.loads(line)
            cmd = req.pop("cmd")
            handler = getattr(self, "ctl_" + cmd.replace("-", "_"), None)
            if handler is None:
                raise ValueError("unknown control command %r" % cmd)
            self.log("control: %s %s" % (cmd, json.dumps(req)))
            res = handler(client=client, **req)
            if res is not None:
                res.setdefault("ok", True)
                self.ctl_reply(client, res)
        except Exception as exc:     # any bad request is reported, never fatal
            self.log("control error: %r" % exc)
            self.ctl_reply(client, {"ok": False, "error": "%s: %s" % (type(exc).__name__, exc)})

    def ctl_ping(self, client):
        return {"pid": os.getpid()}

    def ctl_status(self, client):
        m = self.modem
        return {"plugged": self.plugged, "ports": {p.name: p.path for p in self.ports},
                "personality": m.personality, "identity": m.p, "settings": m.s, "cfun": m.cfun,
                "registered": m.registered(), "session": m.session, "blackholed": self.blackholed,
                "storage": {k: {"used": len(v.slots), "capacity": v.capacity,
                                "indices": sorted(v.slots)} for k, v in m.mem.items()},
                "cpms": m.cpms, "cnmi": m.cnmi, "pending_faults": m.send_faults}

    def ctl_set_signal(self, client, **kw):
        m = self.modem
        for key in ("csq", "ber", "rsrp", "rsrq", "sinr"):
            if key in kw and kw[key] is not None:
                m.s[key] = kw[key]
        if "rssi" in kw and kw["rssi"] is not None:           # dBm -> CSQ
            m.s["csq"] = max(0, min(31, (int(kw["rssi"]) + 113) // 2))
        if m.autocsq:
            self.urc("+CSQ: %d,%d" % (m.s["csq"], m.s["ber"]))
        return {"signal": {k: m.s[k] for k in ("csq", "ber", "rsrp", "rsrq", "sinr")}}

    def ctl_set_registration(self, client, stat=None, lac=None, tac=None, cell=None, act=None):
        m = self.modem
        if stat is not None:
            m.s["stat"] = STAT_NAMES[stat] if isinstance(stat, str) else int(stat)
        if act is not None:
            m.s["act"] = ACT_NAMES[act] if isinstance(act, str) else int(act)
        for key, val in (("lac", lac), ("tac", tac), ("cell", cell)):
            if val is not None:
                m.s[key] = val
        m.emit_registration()
        return {"stat": m.s["stat"], "act": m.s["act"]}

    def ctl_set_operator(self, client, code=None, name=None):
        if code is not None:
            self.modem.s["operator_code"] = code
        if name is not None:
            self.modem.s["operator_name"] = name
        return {}

    def ctl_set_sim(self, client, state, pin=None, pin_retries=None):
        if state not in ("ready", "absent", "pin", "puk"):
            raise ValueError("state must be ready, absent, pin or puk")
        m = self.modem
        m.s["sim"] = state
        if pin is not None:
            m.s["pin"] = pin
        if pin_retries is not None:
            m.s["pin_retries"] = int(pin_retries)
        return {"sim": state}

    def ctl_set(self, client, **kw):
        """Set raw settings (identity, smsc, report_delay ...)."""
        for k, v in kw.items():
            if k in self.modem.p:
                self.modem.p[k] = v
            elif k in self.modem.s:
                self.modem.s[k] = v
            else:
                raise ValueError("unknown setting %r" % k)
        return {}

    def ctl_fail_next_send(self, client, error=500, count=1):
        self.modem.send_faults += [{"error": int(error)}] * int(count)
        return {"pending": len(self.modem.send_faults)}

    def ctl_delay_next_send(self, client, seconds, count=1):
        self.modem.send_faults += [{"delay": float(seconds)}] * int(count)
        return {"pending": len(self.modem.send_faults)}

    def ctl_set_storage(self, client, capacity=None, mem=None, full=None):
        mems = [mem.upper()] if mem else list(self.modem.mem)
        for name in mems:
            st = self.modem.mem[name]
            if capacity is not None:
                st.capacity = int(capacity)
            if full:
                filler = smspdu.encode_deliver("+254700000000", "filler", timestamp=None)
                while st.free_index() is not None:
                    st.store(1, filler[0], filler[1])
        return {"storage": {k: [len(v.slots), v.capacity] for k, v in self.modem.mem.items()}}

    def ctl_clear_storage(self, client, mem=None):
        for name in ([mem.upper()] if mem else list(self.modem.mem)):
            self.modem.mem[name].slots.clear()
        return {}

    def ctl_deliver_sms(self, client, text, sender="+254711000001", smsc=None, timestamp=None,
                        encoding="auto", spacing=0.5, ref=None, wait=False, **kw):
        """Deliver one SMS (split into parts as needed), parts spacing seconds apart."""
        sender = kw.get("from", sender)
        pdus = smspdu.encode_deliver_parts(sender, text, smsc or self.modem.s["smsc"], timestamp,
                                           encoding, ref)
        self.schedule_pdus(client if wait else None, pdus, float(spacing), pace=float(spacing) > 0)
        self.event("sms-incoming", sender=sender, text=text, parts=len(pdus))
        return None if wait else {"parts": len(pdus)}

    def ctl_deliver_burst(self, client, messages, spacing=0.5, wait=False):
        """Deliver several SMS, every part spacing seconds after the previous one."""
        pdus = []
        for msg in messages:
            msg = dict(msg)
            sender = msg.pop("from", msg.pop("sender", "+254711000001"))
            pdus += smspdu.encode_deliver_parts(sender, msg["text"], msg.get("smsc") or self.modem.s["smsc"],
                                                msg.get("timestamp"), msg.get("encoding", "auto"),
                                                msg.get("ref"))
            self.event("sms-incoming", sender=sender, text=msg["text"])
        self.schedule_pdus(client if wait else None, pdus, float(spacing))
        return None if wait else {"parts": len(pdus)}

    def ctl_deliver_pdu(self, client, pdu, length=None):
        """Deliver a raw SMS-DELIVER PDU (hex with SMSC) as is."""
        if length is None:
            length = len(pdu) // 2 - 1 - int(pdu[:2], 16)
        return {"stored": self.modem.receive_pdu(pdu.upper(), int(length))}

    def schedule_pdus(self, client, pdus, spacing, pace=False):
        """Deliver pdus spacing seconds apart.

        pace: the next part waits until the host has read the previous one (+CMGR or
        +CMGL answered, or the part deleted), then spacing; at most PACE_MAX_S, then it goes
        anyway (event sms-pace-timeout). ModemManager 1.20 drops a +CMTI that arrives while
        it is still reading the previous part, so without pacing a loaded host turns a
        multipart SMS into one stuck in 'receiving'. deliver_burst does not pace: it is
        the burst that drops notices on purpose.
        """
        results = []

        def deliver(i):
            pdu, length = pdus[i]
            results.append(self.modem.receive_pdu(pdu, length))
            if client is not None and len(results) == len(pdus):
                self.ctl_reply(client, {"ok": True, "parts": len(pdus), "stored": results})
            if i + 1 == len(pdus):
                return
            stored = self.modem.last_stored if pace and results[-1] else None
            if stored is None:
                self.after(spacing, lambda: deliver(i + 1))
                return
            st, idx = stored
            slot, deadline = st.slots[idx], time.monotonic() + PACE_MAX_S

            def wait_read():
                if slot.get("answered") or st.slots.get(idx) is not slot:
                    self.after(spacing, lambda: deliver(i + 1))
                elif time.monotonic() >= deadline:
                    self.event("sms-pace-timeout", part=i + 1, parts=len(pdus))
                    deliver(i + 1)
                else:
                    self.after(0.02, wait_read)
            wait_read()
        if pdus:
            deliver(0)

    def ctl_urc(self, client, lines):
        """Send arbitrary unsolicited lines."""
        self.urc(*([lines] if isinstance(lines, str) else lines))
        return {}

    def ctl_unplug(self, client):
        self.unplug()
        return {}

    def ctl_replug(self, client):
        if self.plugged:
            self.unplug()
        self.plug()
        self.event("replugged", ports={p.name: p.path for p in self.ports})
        return {"ports": {p.name: p.path for p in self.ports}}

    def ctl_drop_session(self, client, notify=True):
        return {"was_up": self.modem.drop_session(bool(notify))}

    def ctl_operator_link(self, client, up):
        ok = self.run_ip("link", "set", "dev", self.op_ifname, "up" if up else "down") \
            if self.op_netns else False
        self.event("operator-link", up=bool(up))
        return {"ok": ok}

    def ctl_blackhole(self, client, on=True):
        self.set_blackhole(bool(on))
        self.event("blackhole", on=bool(on))
        return {}

    def ctl_dump(self, client, since=0):
        m = self.modem
        return {"sent": m.sent, "messages": assemble(m.sent), "commands": self.commands[since:],
                "unknown": self.unknowns, "events": m.events}

    def ctl_clear_dump(self, client):
        self.modem.sent.clear()
        self.commands.clear()
        self.modem.events.clear()
        return {}

    def ctl_quit(self, client):
        self.running = False
        return {}

    # ------------------------------------------------------------ loop

    def run(self):
        """Serve until SIGTERM/SIGINT or a quit request."""
        signal.signal(signal.SIGTERM, lambda *a: setattr(self, "running", False))
        signal.signal(signal.SIGINT, lambda *a: setattr(self, "running", False))
        while self.running:
            timeout = None
            if self.timers:
                timeout = max(0.0, self.timers[0][0] - time.monotonic())
            for key, events in self.sel.select(timeout if timeout is not None else 1.0):
                kind, obj = key.data
                if kind == "ctl-listen":
                    self.on_ctl_accept()
                elif kind == "ctl":
                    self.on_ctl_read(obj)
                elif kind == "port" and obj in self.ports:
                    if events & selectors.EVENT_READ:
                        self.on_port_read(obj)
                    if events & selectors.EVENT_WRITE and obj in self.ports:
                        self.flush(obj)
            while self.timers and self.timers[0][0] <= time.monotonic():
                _, _, fn = heapq.heappop(self.timers)
                fn()
        self.log("exiting")
        for p in self.ports:
            p.close()
        try:
            os.unlink(self.ctl_path)
        except OSError:
            pass


def assemble(sent):
    """Group transmitted parts into messages (concatenated parts joined).

    Each message: to, text, parts, references (TP-MR per part), delivery_report,
    alphabet, complete, results.
    """
    messages, open_multi = [], {}
    for part in sent:
        c = part["concat"]
        if not c:
            messages.append({"to": part["number"], "text": part["text"], "parts": 1,
                             "references": [part["reference"]], "delivery_report": part["srr"],
                             "alphabet": part["alphabet"], "complete": True,
                             "results": [part["result"]], "validity": part["validity"]})
            continue
        key = (part["number"], c["ref"], c["total"])
        msg = open_multi.get(key)
        if msg is None or c["seq"] in msg["_seqs"]:
            msg = {"to": part["number"], "parts": c["total"], "references": [], "_seqs": {},
                   "delivery_report": part["srr"], "alphabet": part["alphabet"], "results": [],
                   "concat_ref": c["ref"], "validity": part["validity"]}
            open_multi[key] = msg
            messages.append(msg)
        msg["_seqs"][c["seq"]] = part
        msg["references"].append(part["reference"])
        msg["results"].append(part["result"])
        msg["delivery_report"] = msg["delivery_report"] or part["srr"]
    for msg in messages:
        seqs = msg.pop("_seqs", None)
        if seqs is not None:
            msg["text"] = "".join(seqs[i]["text"] for i in sorted(seqs))
            msg["complete"] = sorted(seqs) == list(range(1, msg["parts"] + 1))
    return messages
