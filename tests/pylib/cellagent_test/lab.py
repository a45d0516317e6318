"""The cellular test lab: real ModemManager and NetworkManager, emulated hardware.

A Lab owns one run directory and everything started for it: a private
system bus, the polkit mock, the modem emulator, ModemManager (own mount
namespace, fake sysfs, tmpfs /dev), and optionally network namespaces with
NetworkManager, ISP uplinks, an "internet" with probe targets and, for the
ECM modem, an "operator". See docs/lab.md.

    lab = Lab(personality="simtech", uplinks=2).start()
    lab.modem.deliver_sms("Hello", sender="+254700000001")
    lab.mm.wait_modem()
    lab.run_in_dut(["ip", "route"])
    lab.stop()

Teardown kills what the lab started, by pid, and deletes its namespaces,
also when the test process dies (a detached reaper watches it).
Lab.start_broker() is cellagent_test.mqtt.Broker(lab=...); agents in the lab are
cellagent_test.agent.Agent.in_lab(). main() runs a lab test file's unittest classes.
"""

import atexit
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from cellagent_test import core, modememu
from cellagent_test.core import (PY, SKIP, CommandError, proc_starttime, run,  # noqa: F401
                                 wait_until)
from cellagent_test.mqtt import Broker

# The lab's programs: the modem emulator, the probe server, the lab and labctl CLIs.
LAB_DIR = os.path.realpath(os.path.join(core.PYLIB_DIR, "..", "lab"))
MM_BUS_NAME = "org.freedesktop.ModemManager1"
NM_BUS_NAME = "org.freedesktop.NetworkManager"
POLKIT_BUS_NAME = "org.freedesktop.PolicyKit1"

# Addresses, all inside the lab's own namespaces (198.51.100.0/24 is TEST-NET-2).
INTERNET_PROBE = "198.51.100.10"     # ICMP, HTTP :80 (/check answers OK), TCP
INTERNET_DNS = "198.51.100.53"       # dnsmasq: probe.lab -> INTERNET_PROBE
INTERNET_BROKER = "198.51.100.20"    # where an "internet" MQTT broker listens
OPERATOR_INDEX = 100                 # the ECM operator uses the 10.201.100.0/24 subnet


class LabSkip(Exception):
    """A prerequisite is missing: the test is skipped (exit code 77)."""


# A lab component failed to start, a command failed or a control request failed.
LabError = CommandError


# ==================================================================== helpers

def check_prerequisites(network=False):
    """Raise LabSkip unless root and the needed kernel features and tools exist."""
    if os.geteuid() != 0:
        raise LabSkip("the lab needs root (namespaces, mounts)")
    tools = ["dbus-daemon", "dbus-send", "ModemManager", "mmcli", "unshare", "nsenter", "mount"]
    if network:
        tools += ["NetworkManager", "nmcli", "nm-online", "ip", "dnsmasq", "nft"]
    missing = [t for t in tools if not shutil.which(t)]
    if missing:
        raise LabSkip("missing tools: " + " ".join(missing))
    if run([PY, "-c", "import dbusmock"], check=False).returncode:
        raise LabSkip("python3-dbusmock is missing for " + PY)
    if run(["unshare", "-m", "true"], check=False).returncode:
        raise LabSkip("no mount namespaces")
    if network:
        probe = run(["unshare", "-n", "sh", "-c",
                     "ip link add name a type veth peer name b && "
                     "nft add table inet labprobe"], check=False)
        if probe.returncode:
            raise LabSkip("no network namespaces, veth or nftables: " + probe.stderr.strip())


# ==================================================================== processes

class Proc(core.Proc):
    """A process the lab started (its own session), logging to logs/NAME.log, recorded
    for teardown."""

    def __init__(self, lab, name, argv, log=None, env=None):
        super().__init__(name, argv, log or lab.log_path(name), env=env, owner=lab)


class RecordedProc:
    """A process recorded by another lab process (see Lab.attach)."""

    def __init__(self, rec):
        self.name, self.pid, self.start = rec["name"], rec["pid"], rec["start"]

    def alive(self):
        return _alive_recorded(self.record())

    def send_signal(self, sig):
        if self.alive():
            os.kill(self.pid, sig)

    def stop(self, sig=signal.SIGTERM, timeout=5.0):
        self.send_signal(sig)
        try:
            wait_until(lambda: not self.alive(), timeout, self.name + " to exit")
        except AssertionError:
            self.send_signal(signal.SIGKILL)

    def record(self):
        return {"name": self.name, "pid": self.pid, "start": self.start}


def teardown_recorded(run_dir, grace=3.0):
    """Kill recorded processes (pid + start time checked) and delete namespaces.

    Used by Lab.stop(), `lab down` and the reaper; safe to call twice.
    """
    path = os.path.join(run_dir, "lab-state.json")
    try:
        with open(path) as f:
            state = json.load(f)
    except (OSError, ValueError):
        return
    procs = [p for p in state.get("procs", []) if proc_starttime(p["pid"]) == p["start"]]
    for p in procs:
        try:
            os.kill(p["pid"], signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive_recorded(p) for p in procs):
        time.sleep(0.05)
    for p in procs:
        if _alive_recorded(p):
            try:
                os.kill(p["pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass
    for ns in state.get("netns", []):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    if state.get("netns"):
        _release_netns_dir()
    state["stopped"] = True
    _write_json(path, state)


def _release_netns_dir():
    """Undo the self bind mount `ip netns add` puts on /run/netns, once it is empty.

    A plain umount fails (EBUSY) while any namespace is still mounted below,
    so a lab running in parallel keeps it.
    """
    try:
        if os.listdir("/run/netns"):
            return
        with open("/proc/self/mountinfo") as f:
            mounted = any(line.split()[4] == "/run/netns" for line in f)
    except OSError:
        return
    if mounted:
        subprocess.run(["umount", "/run/netns"], capture_output=True)


def _alive_recorded(p):
    """True if a recorded process still runs (zombies count as gone)."""
    if proc_starttime(p["pid"]) != p["start"]:
        return False
    try:
        with open("/proc/%d/stat" % p["pid"]) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


def _reaper_main(run_dir):
    """Detached guardian: when the lab's process dies (stdin EOF), tear down."""
    if os.fork():
        os._exit(0)
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while sys.stdin.buffer.read(4096):
        pass
    try:
        with open(os.path.join(run_dir, "lab-state.json")) as f:
            if json.load(f).get("stopped"):
                return
    except (OSError, ValueError):
        return
    teardown_recorded(run_dir)


# ==================================================================== D-Bus

class Bus:
    """A private system bus (dbus-daemon, allow-all policy, socket in the run dir)."""

    CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_type="method_return"/>
    <allow send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="signal"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
"""

    def __init__(self, lab):
        self.lab = lab
        self.socket = os.path.join(lab.run_dir, "bus.sock")
        if len(self.socket) > 100:
            raise LabError("run dir path too long for a Unix socket: " + lab.run_dir)
        self.address = "unix:path=" + self.socket
        self.proc = None

    def start(self):
        conf = os.path.join(self.lab.run_dir, "bus.conf")
        with open(conf, "w") as f:
            f.write(self.CONFIG % self.socket)
        self.proc = Proc(self.lab, "dbus", ["dbus-daemon", "--config-file=" + conf, "--nofork"])
        wait_until(lambda: self._connectable() or not self.proc.alive(), 10, "the private bus")
        if not self.proc.alive():
            raise LabError("dbus-daemon exited; see " + self.proc.log)
        return self

    def _connectable(self):
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(self.socket)
            return True
        except OSError:
            return False

    def has_owner(self, name):
        """True if a bus name has an owner."""
        res = run(["dbus-send", "--system", "--print-reply", "--dest=org.freedesktop.DBus",
                   "/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner",
                   "string:" + name], check=False, env=self.lab.env)
        return "boolean true" in res.stdout

    def wait_name(self, name, timeout=15, proc=None):
        """Wait until name is owned (fail early if proc dies)."""
        def ready():
            if proc is not None and not proc.alive():
                raise LabError("%s exited before owning %s; see %s" % (proc.name, name, proc.log))
            return self.has_owner(name)
        wait_until(ready, timeout, "%s on the bus" % name, 0.1)


class Polkit:
    """python3-dbusmock's polkitd template, allowing everything."""

    def __init__(self, lab):
        self.lab = lab

    def start(self):
        proc = Proc(self.lab, "polkit", [PY, "-m", "dbusmock", "--system", "--template", "polkitd"],
                    env=self.lab.env)
        self.lab.bus.wait_name(POLKIT_BUS_NAME, 20, proc)
        run(["dbus-send", "--system", "--print-reply", "--dest=" + POLKIT_BUS_NAME,
             "/org/freedesktop/PolicyKit1/Authority", "org.freedesktop.DBus.Mock.AllowUnknown",
             "boolean:true"], env=self.lab.env)
        return self


# ==================================================================== emulator

class EmuClient:
    """Client of the emulator's control socket (one JSON line each way per call)."""

    def __init__(self, path):
        self.path = path

    def call(self, cmd, timeout=60, **args):
        """Send {"cmd": cmd, **args}; return the reply; raise LabError if not ok."""
        req = dict(args, cmd=cmd)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(self.path)
            s.sendall((json.dumps(req) + "\n").encode())
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(1 << 20)
                if not chunk:
                    raise LabError("emulator closed the control connection")
                buf += chunk
        reply = json.loads(buf)
        if not reply.get("ok"):
            raise LabError("emulator %s: %s" % (cmd, reply.get("error", reply)))
        return reply

    # -- state
    def status(self):
        """Ports, identity, settings, storage, registration, session."""
        return self.call("status")

    def set_signal(self, csq=None, rsrp=None, rsrq=None, sinr=None, ber=None, rssi=None):
        """Change signal; simtech reports it unsolicited (+CSQ) once AUTOCSQ is on."""
        return self.call("set_signal", csq=csq, rsrp=rsrp, rsrq=rsrq, sinr=sinr, ber=ber, rssi=rssi)

    def set_registration(self, stat=None, lac=None, tac=None, cell=None, act=None):
        """stat: home|roaming|searching|denied|idle|unknown or 0-5; act: lte|umts|gsm or 27.007 AcT."""
        return self.call("set_registration", stat=stat, lac=lac, tac=tac, cell=cell, act=act)

    def set_operator(self, code=None, name=None):
        return self.call("set_operator", code=code, name=name)

    def set_sim(self, state, pin=None, pin_retries=None):
        """state: ready | absent | pin | puk (seen by ModemManager on its next probe)."""
        return self.call("set_sim", state=state, pin=pin, pin_retries=pin_retries)

    def set(self, **settings):
        """Raw settings: imei, iccid, imsi, smsc, report_delay, report_status, ..."""
        return self.call("set", **settings)

    # -- SMS
    def deliver_sms(self, text, sender="+254711000001", smsc=None, timestamp=None,
                    encoding="auto", spacing=0.5, wait=True):
        """An SMS arrives from the network (split into parts as needed).

        timestamp: ISO 8601 (SMSC time stamp); encoding: auto|gsm7|ucs2;
        spacing: seconds between parts; above 0, each part after the first also waits until
        the host has read the previous one (ModemManager 1.20 drops a notice that arrives
        while it reads), so a loaded host loses none; 0 sends them at once (notices dropped);
        wait: return once every part is stored.
        """
        return self.call("deliver_sms", text=text, sender=sender, smsc=smsc, timestamp=timestamp,
                         encoding=encoding, spacing=spacing, wait=wait)

    def deliver_burst(self, messages, spacing=0.5, wait=True):
        """Several SMS ({"text", "sender", ...} dicts), every part spacing s apart."""
        return self.call("deliver_burst", messages=messages, spacing=spacing, wait=wait)

    def fail_next_send(self, error=500, count=1):
        """The next count sends answer +CMS ERROR: error."""
        return self.call("fail_next_send", error=error, count=count)

    def delay_next_send(self, seconds, count=1):
        """The next count sends take seconds before +CMGS."""
        return self.call("delay_next_send", seconds=seconds, count=count)

    def set_storage(self, capacity=None, mem=None, full=False):
        """Change the SMS storage capacity, or fill it (full=True)."""
        return self.call("set_storage", capacity=capacity, mem=mem, full=full)

    def clear_storage(self, mem=None):
        return self.call("clear_storage", mem=mem)

    def urc(self, *lines):
        """Send raw unsolicited lines on the URC port."""
        return self.call("urc", lines=list(lines))

    # -- hardware and data session
    def unplug(self):
        return self.call("unplug")

    def replug(self):
        """New ptys for the ports; returns {"ports": {name: pty}}."""
        return self.call("replug")

    def drop_session(self, notify=True):
        """The network drops the ECM data session (+CGEV: NW PDN DEACT if notify)."""
        return self.call("drop_session", notify=notify)

    def operator_link(self, up):
        """Operator side of the ECM net port up or down (carrier)."""
        return self.call("operator_link", up=up)

    def blackhole(self, on=True):
        """Operator silently drops everything upstream."""
        return self.call("blackhole", on=on)

    # -- dumps
    def dump(self):
        """{"sent": parts, "messages": assembled SMS, "commands": AT log, "unknown", "events"}."""
        return self.call("dump")

    def clear_dump(self):
        return self.call("clear_dump")

    def sent_messages(self):
        """Transmitted SMS, assembled: to, text, parts, references, delivery_report, ..."""
        return self.dump()["messages"]

    def commands(self):
        """Every AT command line received: {"ts", "port", "cmd"}."""
        return self.dump()["commands"]

    def wait_sent(self, pred=lambda m: True, timeout=30, count=1):
        """Wait until count complete transmitted messages match pred; return them."""
        def found():
            msgs = [m for m in self.sent_messages() if m["complete"] and pred(m)]
            return msgs if len(msgs) >= count else None
        return wait_until(found, timeout, "%d transmitted SMS" % count, 0.1)

    def wait_command(self, regex, timeout=30):
        """Wait until an AT command matching regex was received; return it."""
        rx = re.compile(regex, re.I)

        def found():
            return next((c for c in self.commands() if rx.search(c["cmd"])), None)
        return wait_until(found, timeout, "AT command /%s/" % regex, 0.1)


class Emulator:
    """The modem emulator process (tests/lab/modem-emu) and its control client."""

    def __init__(self, lab, personality="simtech", ports=1, settings=None,
                 op_netns=None, op_ifname=None):
        self.lab = lab
        self.personality = personality
        self.nports = ports
        self.settings = settings or {}
        self.dir = os.path.join(lab.run_dir, "emu")
        os.makedirs(self.dir, exist_ok=True)
        self.ctl = os.path.join(self.dir, "ctl.sock")
        self.state_file = os.path.join(self.dir, "state.json")
        self.op = (op_netns, op_ifname)
        self.client = EmuClient(self.ctl)
        self.proc = None

    def start(self):
        argv = [PY, os.path.join(LAB_DIR, "modem-emu"), "--personality", self.personality,
                "--ports", str(self.nports), "--ctl", self.ctl, "--state", self.state_file,
                "--log", self.lab.log_path("emulator")]
        for k, v in self.settings.items():
            argv += ["--set", "%s=%s" % (k, v)]
        if self.op[0]:
            argv += ["--op-netns", self.op[0], "--op-ifname", self.op[1]]
        self.proc = Proc(self.lab, "emulator", argv, log=self.lab.log_path("emulator-stderr"))
        wait_until(lambda: not self.proc.alive() or (os.path.exists(self.state_file)
                                                     and os.path.exists(self.ctl)),
                   10, "the modem emulator")
        if not self.proc.alive():
            raise LabError("modem emulator exited; see " + self.proc.log)
        return self

    def ports(self):
        """{port name: pty path} as the emulator last published them."""
        with open(self.state_file) as f:
            return json.load(f)["ports"]

    @property
    def identity(self):
        """Personality identity merged with settings (manufacturer, model, imei ...)."""
        info = dict(modememu.PERSONALITIES[self.personality])
        info.update(modememu.DEFAULTS)
        info.update(self.settings)
        return info


# ==================================================================== fake sysfs

class FakeSysfs:
    """A fabricated USB device tree ModemManager's no-udev backend accepts (docs/lab.md)."""

    def __init__(self, lab, personality, nports, net_mac=None):
        self.root = os.path.join(lab.run_dir, "sysfs")
        self.personality = personality
        self.nports = nports
        self.net_mac = net_mac
        self.tty_class = os.path.join(self.root, "class", "tty")
        self.net_class = os.path.join(self.root, "class", "net")

    @staticmethod
    def _write(path, value):
        with open(path, "w") as f:
            f.write(value + "\n")

    def _dev_dir(self, path, subsystem, driver, attrs):
        os.makedirs(path, exist_ok=True)
        os.symlink(os.path.join(self.root, "bus", subsystem), os.path.join(path, "subsystem"))
        if driver:
            os.symlink(os.path.join(self.root, "drivers", driver), os.path.join(path, "driver"))
        for k, v in attrs.items():
            self._write(os.path.join(path, k), v)

    def build(self):
        """(Re)create the tree; returns self."""
        shutil.rmtree(self.root, ignore_errors=True)
        p = modememu.PERSONALITIES[self.personality]
        for d in ("bus/usb", "bus/usb-serial", "bus/tty", "bus/net", "drivers/usb",
                  "drivers/option", "drivers/option1", "drivers/cdc_ether", "class/tty", "class/net"):
            os.makedirs(os.path.join(self.root, d))
        usb = os.path.join(self.root, "devices", "usb1", "1-1")
        self._dev_dir(usb, "usb", "usb", {
            "idVendor": p["vid"], "idProduct": p["pid"], "bcdDevice": "0318",
            "manufacturer": p["usb_manufacturer"], "product": p["usb_product"],
            "busnum": "1", "devnum": "2", "serial": "lab0"})
        # The AT ports sit on the interfaces the real device has them on, because
        # ModemManager's port-type rules (applied without udev too) go by interface
        # number: the A7670E's AT port is interface 4, its modem (PPP) port 5, while its
        # interface 2 is the Qualcomm diag port, which ModemManager 1.24 ignores
        # for 1e0e:9011 (1.20 has no rule and probes every port). The L610's AT port is
        # interface 2. docs/debian-versions.md has the details.
        first_tty_iface = 2 if self.personality == "ecm" else 4
        if self.personality == "ecm":
            iface = os.path.join(usb, "1-1:1.0")
            self._dev_dir(iface, "usb", "cdc_ether", {
                "bInterfaceClass": "02", "bInterfaceSubClass": "06", "bInterfaceProtocol": "00",
                "bInterfaceNumber": "00"})
            net = os.path.join(iface, "net", "usb0")
            os.makedirs(net)
            os.symlink(os.path.join(self.root, "bus", "net"), os.path.join(net, "subsystem"))
            os.symlink(iface, os.path.join(net, "device"))
            self._write(os.path.join(net, "address"), self.net_mac or "02:00:00:00:01:00")
            self._write(os.path.join(net, "type"), "1")
            self._write(os.path.join(net, "uevent"), "INTERFACE=usb0")
            os.symlink(net, os.path.join(self.net_class, "usb0"))
            self._dev_dir(os.path.join(usb, "1-1:1.1"), "usb", "cdc_ether", {
                "bInterfaceClass": "0a", "bInterfaceSubClass": "00", "bInterfaceProtocol": "00",
                "bInterfaceNumber": "01"})
        for k in range(self.nports):
            num = first_tty_iface + k
            iface = os.path.join(usb, "1-1:1.%d" % num)
            sub = "00" if self.personality == "ecm" else "ff"
            self._dev_dir(iface, "usb", "option", {
                "bInterfaceClass": "ff", "bInterfaceSubClass": sub, "bInterfaceProtocol": sub,
                "bInterfaceNumber": "%02d" % num})
            serial = os.path.join(iface, "ttyUSB%d" % k)
            self._dev_dir(serial, "usb-serial", "option1", {"port_number": "0"})
            ttyd = os.path.join(serial, "tty", "ttyUSB%d" % k)
            self._dev_dir(ttyd, "tty", None, {"dev": "188:%d" % k,
                                              "uevent": "MAJOR=188\nMINOR=%d\nDEVNAME=ttyUSB%d" % (k, k)})
            os.symlink(ttyd, os.path.join(self.tty_class, "ttyUSB%d" % k))
        return self

    def kernel_events(self, action="add"):
        """The kernel events announcing every port of the device."""
        events = ["action=%s,subsystem=tty,name=ttyUSB%d" % (action, k) for k in range(self.nports)]
        if self.personality == "ecm":
            events.append("action=%s,subsystem=net,name=usb0" % action)
        return events


# ==================================================================== ModemManager

class ModemManager:
    """ModemManager in its own mount namespace (fake sysfs, tmpfs /dev), no udev."""

    def __init__(self, lab, emulator, sysfs, netns=None):
        self.lab = lab
        self.emu = emulator
        self.sysfs = sysfs
        self.netns = netns
        self.dir = os.path.join(lab.run_dir, "mm")
        self.hostdev = os.path.join(self.dir, "hostdev")
        os.makedirs(self.hostdev, exist_ok=True)
        self.proc = None
        self.starts = 0

    def _script(self):
        """The shell run inside the new mount namespace before exec ModemManager."""
        lines = ["set -e", "mount --make-rprivate /",
                 "mount --bind %s /sys/class/tty" % self.sysfs.tty_class]
        if self.sysfs.personality == "ecm":
            lines.append("mount --bind %s /sys/class/net" % self.sysfs.net_class)
        lines += ["mount --rbind /dev %s" % self.hostdev,
                  "mount -t tmpfs -o size=256k,mode=0755 labdev /dev",
                  "for n in null zero full random urandom tty ptmx; do touch /dev/$n; "
                  "mount --bind %s/$n /dev/$n; done" % self.hostdev,
                  "mkdir /dev/pts", "mount --rbind %s/pts /dev/pts" % self.hostdev]
        for name, pty in sorted(self.emu.ports().items()):
            lines += ["touch /dev/%s" % name, "mount --bind %s /dev/%s" % (pty, name)]
        events = os.path.join(self.dir, "kernel-events")
        with open(events, "w") as f:
            f.write("\n".join(self.sysfs.kernel_events()) + "\n")
        lines.append("exec ModemManager --test-no-udev --debug --log-level=DEBUG "
                     "--no-auto-scan --initial-kernel-events=%s" % events)
        return "\n".join(lines) + "\n"

    def start(self, wait=True):
        """Start ModemManager; wait for its bus name (and the modem if wait)."""
        self.starts += 1
        script = os.path.join(self.dir, "start.sh")
        with open(script, "w") as f:
            f.write(self._script())
        argv = ["unshare", "-m", "--propagation", "private", "sh", script]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns] + argv
        self.proc = Proc(self.lab, "ModemManager", argv, log=self.lab.log_path("ModemManager"),
                         env=self.lab.env)
        self.lab.bus.wait_name(MM_BUS_NAME, 20, self.proc)
        if wait:
            self.wait_modem()
        return self

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Stop ModemManager with sig (SIGKILL after timeout)."""
        if self.proc:
            self.proc.stop(sig, timeout)
            wait_until(lambda: not self.lab.bus.has_owner(MM_BUS_NAME), 10,
                       "ModemManager to leave the bus")

    def restart(self, sig=signal.SIGTERM, wait=True):
        """Stop with sig (SIGTERM or SIGKILL) and start again; ports are re-announced."""
        self.stop(sig)
        return self.start(wait)

    def pause(self):
        """SIGSTOP: ModemManager stops answering (D-Bus calls time out)."""
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def mmcli(self, *args, check=True, timeout=60):
        """Run mmcli on the lab's bus; return stdout."""
        return run(["mmcli"] + list(args), check=check, env=self.lab.env, timeout=timeout).stdout

    def modems(self):
        """Object paths of the modems ModemManager exposes now."""
        out = self.mmcli("-L", "-K", check=False)
        return re.findall(r"(/org/freedesktop/ModemManager1/Modem/\d+)", out)

    def wait_modem(self, timeout=30, exclude=()):
        """Wait for a modem object (not one of exclude); return its path."""
        def found():
            return next((m for m in self.modems() if m not in exclude), None)
        return wait_until(found, timeout, "a modem object in ModemManager", 0.2)

    def info(self, modem="any"):
        """`mmcli -m MODEM -K` as a dict; keys like modem.generic.state; lists for value[N]."""
        return parse_keyvalues(self.mmcli("-m", modem, "-K"))

    def state(self, modem="any"):
        """modem.generic.state, or None when there is no modem."""
        res = run(["mmcli", "-m", modem, "-K"], check=False, env=self.lab.env)
        return parse_keyvalues(res.stdout).get("modem.generic.state") if res.returncode == 0 else None

    def wait_state(self, states, modem="any", timeout=30):
        """Wait until the modem state is one of states; return the state."""
        states = (states,) if isinstance(states, str) else tuple(states)
        return wait_until(lambda: (lambda s: s if s in states else None)(self.state(modem)),
                          timeout, "modem state in %s" % (states,), 0.1)

    def enable(self, modem="any", timeout=30):
        """Enable the modem and wait until it is registered (or connected)."""
        self.mmcli("-m", modem, "-e")
        return self.wait_state(("registered", "connected"), modem, timeout)

    def report(self, *events):
        """Announce kernel events (e.g. action=add,subsystem=tty,name=ttyUSB0)."""
        for ev in events:
            self.mmcli("--report-kernel-event=" + ev)

    # ---------------------------------------------------------------- SMS

    def send_sms(self, number, text, delivery_report=False, validity=None, modem="any",
                 timeout=60):
        """Create and send an SMS with mmcli; return its object path (sent or raises)."""
        quote = "'" if "'" not in text else '"'
        props = "number='%s',text=%s%s%s" % (number, quote, text, quote)
        if delivery_report:
            props += ",delivery-report-request=yes"
        if validity is not None:
            props += ",validity=%d" % validity
        out = self.mmcli("-m", modem, "--messaging-create-sms=" + props)
        path = re.search(r"(/org/freedesktop/ModemManager1/SMS/\d+)", out).group(1)
        self.mmcli("-s", path, "--send", timeout=timeout)
        return path

    def sms_list(self, modem="any"):
        """Object paths of the SMS ModemManager lists (Messaging.List)."""
        out = self.mmcli("-m", modem, "--messaging-list-sms", "-K", check=False)
        return re.findall(r"(/org/freedesktop/ModemManager1/SMS/\d+)", out)

    def sms_info(self, path):
        """`mmcli -s PATH -K` as a dict (sms.content.text, sms.properties.state ...)."""
        return parse_keyvalues(self.mmcli("-s", path, "-K"))

    def wait_received(self, pred=lambda sms: True, timeout=30, modem="any"):
        """Wait for a completely received SMS matching pred(info dict); return the dict."""
        def found():
            for path in self.sms_list(modem):
                info = self.sms_info(path)
                if (info.get("sms.properties.pdu-type") == "deliver"
                        and info.get("sms.properties.state") == "received" and pred(info)):
                    info["path"] = path
                    return info
            return None
        return wait_until(found, timeout, "a received SMS in ModemManager", 0.1)

    # ---------------------------------------------------------------- hot plug

    def unplug(self, remove_event=True):
        """The modem leaves the bus: the ports close; a remove event follows if asked."""
        self.emu.client.unplug()
        if remove_event:
            self.report(*self.sysfs.kernel_events("remove"))

    def replug(self):
        """The modem comes back: new ptys bound over /dev/ttyUSB*, then add events."""
        ports = self.emu.client.replug()["ports"]
        script = "; ".join("umount /dev/%s 2>/dev/null || true; mount --bind %s /dev/%s"
                           % (name, pty, name) for name, pty in sorted(ports.items()))
        run(["nsenter", "-t", str(self.proc.pid), "-m", "sh", "-c", script])
        self.report(*self.sysfs.kernel_events("add"))
        return ports


def unescape(value):
    """Undo g_strescape() as mmcli -K applies it (octal bytes, \\n, \\" ...)."""
    if "\\" not in value:
        return value
    out, i = bytearray(), 0
    simple = {"b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92, '"': 34}
    raw = value.encode("utf-8")
    while i < len(raw):
        c = raw[i]
        if c == 92 and i + 1 < len(raw):
            nxt = chr(raw[i + 1])
            if nxt in "01234567":
                j = i + 1
                while j < len(raw) and j < i + 4 and chr(raw[j]) in "01234567":
                    j += 1
                out.append(int(raw[i + 1:j], 8) & 0xFF)
                i = j
                continue
            if nxt in simple:
                out.append(simple[nxt])
                i += 2
                continue
        out.append(c)
        i += 1
    return out.decode("utf-8", errors="replace")


def parse_keyvalues(text):
    """Parse mmcli/nmcli `key : value` (-K) output; value[N] keys become lists."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip(), unescape(value.strip())
        m = re.match(r"^(.*)\.value\[(\d+)\]$", key)
        if m:
            out.setdefault(m.group(1), []).append(value)
        elif key.endswith(".length"):
            continue
        else:
            out[key] = None if value == "--" else value
    return out


# ==================================================================== network

class Network:
    """Namespaces: the device (DUT), ISP uplinks, an internet, an ECM operator.

    DUT ethN <-> ISPn lan (10.201.N.1/24) ; ISPn wan (10.202.N.2) <-> internet ispN (10.202.N.1)
    DUT usb0 <-> operator lan (10.201.100.1/24) ; operator wan <-> internet (10.202.100.x)
    internet lo: 198.51.100.10 probe (ICMP, HTTP :80), 198.51.100.53 DNS, 198.51.100.20 broker.
    Odd uplinks use DHCP (dnsmasq), even ones static addresses (10.201.N.2).
    """

    def __init__(self, lab, uplinks=2, ecm=False, dhcp=None):
        self.lab = lab
        self.n = uplinks
        self.ecm = ecm
        self.dhcp = dhcp if dhcp is not None else [i % 2 == 1 for i in range(1, uplinks + 1)]
        base = "lab" + lab.id
        self.dut = base + "-dut"
        self.inet = base + "-inet"
        self.op = base + "-op" if ecm else None
        self.isps = [base + "-isp%d" % i for i in range(1, uplinks + 1)]
        self.dnsmasq = {}          # uplink index -> Proc
        self.resolv_conf = os.path.join(lab.run_dir, "net", "resolv.conf")
        self.op_dnsmasq = None

    def all_namespaces(self):
        return [self.dut, self.inet] + self.isps + ([self.op] if self.op else [])

    def ip(self, ns, *args, check=True):
        """ip -n ns ..."""
        return run(["ip", "-n", ns] + [str(a) for a in args], check=check)

    def nsexec(self, ns, argv, check=True, input=None, timeout=60):
        """Run argv inside namespace ns."""
        return run(["ip", "netns", "exec", ns] + list(argv), check=check, input=input,
                   timeout=timeout, env=self.lab.env)

    def sysctl(self, ns, key, value):
        self.nsexec(ns, ["sysctl", "-qw", "%s=%s" % (key, value)])

    def uplink_subnet(self, i):
        """10.201.i for uplink i (1-based), 10.201.100 for the operator."""
        return "10.201.%d" % i

    def start(self):
        for ns in self.all_namespaces():
            run(["ip", "netns", "add", ns])
            self.lab.record_netns(ns)
            self.ip(ns, "link", "set", "lo", "up")
        self._internet()
        for i in range(1, self.n + 1):
            self._provider(self.isps[i - 1], i, "eth%d" % i, self.dhcp[i - 1], "isp%d" % i)
        if self.ecm:
            self._provider(self.op, OPERATOR_INDEX, "usb0", True, "op", carrier=False)
        return self

    def _internet(self):
        for addr in (INTERNET_PROBE, INTERNET_DNS, INTERNET_BROKER):
            self.ip(self.inet, "addr", "add", addr + "/32", "dev", "lo")
        self.sysctl(self.inet, "net.ipv4.ip_forward", 1)
        hosts = os.path.join(self.lab.run_dir, "net", "hosts")
        os.makedirs(os.path.dirname(hosts), exist_ok=True)
        with open(self.resolv_conf, "w") as f:
            f.write("nameserver %s\n" % INTERNET_DNS)
        with open(hosts, "w") as f:
            f.write("%s probe.lab\n%s broker.lab\n" % (INTERNET_PROBE, INTERNET_BROKER))
        Proc(self.lab, "dns", ["ip", "netns", "exec", self.inet, "dnsmasq", "--keep-in-foreground",
                               "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                               "--addn-hosts=" + hosts, "--listen-address=" + INTERNET_DNS,
                               "--bind-interfaces", "--user=root", "--pid-file=",
                               "--log-queries", "--log-facility=-"])
        Proc(self.lab, "http", ["ip", "netns", "exec", self.inet, PY,
                                os.path.join(LAB_DIR, "probe-server"), "--port", "80"])

    def _provider(self, ns, i, dut_if, dhcp, inet_if, carrier=True):
        """One ISP (or the operator): lan to the DUT, wan to the internet, forwarding."""
        sub, wan = "10.201.%d" % i, "10.202.%d" % i
        self.ip(self.dut, "link", "add", "name", dut_if, "type", "veth", "peer", "name", "lan",
                "netns", ns)
        self.ip(self.inet, "link", "add", "name", inet_if, "type", "veth", "peer", "name", "wan",
                "netns", ns)
        self.ip(ns, "addr", "add", sub + ".1/24", "dev", "lan")
        self.ip(ns, "addr", "add", wan + ".2/24", "dev", "wan")
        self.ip(self.inet, "addr", "add", wan + ".1/24", "dev", inet_if)
        self.ip(ns, "link", "set", "wan", "up")
        self.ip(self.inet, "link", "set", inet_if, "up")
        if carrier:
            self.ip(ns, "link", "set", "lan", "up")
        self.ip(ns, "route", "add", "default", "via", wan + ".1")
        self.ip(self.inet, "route", "add", sub + ".0/24", "via", wan + ".2")
        self.sysctl(ns, "net.ipv4.ip_forward", 1)
        if dhcp:
            proc = self._dnsmasq(ns, i)
            if ns == self.op:
                self.op_dnsmasq = proc
            else:
                self.dnsmasq[i] = proc

    def _dnsmasq(self, ns, i):
        sub = "10.201.%d" % i
        name = "dhcp-op" if ns == self.op else "dhcp-isp%d" % i
        return Proc(self.lab, name, [
            "ip", "netns", "exec", ns, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
            "--port=0", "--bind-dynamic", "--interface=lan", "--no-ping", "--user=root",
            "--pid-file=", "--dhcp-range=%s.100,%s.150,255.255.255.0,1h" % (sub, sub),
            "--dhcp-option=option:router,%s.1" % sub,
            "--dhcp-option=option:dns-server,%s" % INTERNET_DNS,
            "--dhcp-leasefile=" + os.path.join(self.lab.run_dir, "net", name + ".leases"),
            "--log-dhcp", "--log-facility=-"])

    # ---------------------------------------------------------------- faults

    def isp(self, i):
        """Namespace of uplink i (1-based)."""
        return self.isps[i - 1]

    def carrier(self, i, up):
        """Carrier on/off on uplink i (the ISP side of the veth goes down)."""
        self.ip(self.isp(i), "link", "set", "lan", "up" if up else "down")

    def _nft_forward(self, i, rules):
        ns = self.isp(i)
        self.nsexec(ns, ["nft", "delete table inet labfault"], check=False)
        if rules:
            self.nsexec(ns, ["nft", "-f", "-"], input=(
                "table inet labfault {\n chain filter_forward {\n"
                "  type filter hook forward priority 0;\n  %s\n }\n}\n" % "\n  ".join(rules)))

    def blackhole(self, i, on=True):
        """Uplink i silently drops everything it would forward (DHCP still works)."""
        self._nft_forward(i, ["drop"] if on else None)

    def reject(self, i, on=True):
        """Uplink i rejects forwarded traffic (TCP reset, ICMP unreachable)."""
        self._nft_forward(i, ["meta l4proto tcp reject with tcp reset",
                              "reject with icmpx admin-prohibited"] if on else None)

    def loss(self, i, percent):
        """Uplink i drops percent % of forwarded packets at random (0 clears)."""
        percent = int(percent)
        rule = "drop" if percent >= 100 else "numgen random mod 100 < %d drop" % percent
        self._nft_forward(i, [rule] if percent > 0 else None)

    def dhcp_server(self, i, on):
        """Stop or restart uplink i's DHCP server."""
        if not on:
            proc = self.dnsmasq.pop(i, None)
            if proc:
                proc.stop()
        elif i not in self.dnsmasq:
            self.dnsmasq[i] = self._dnsmasq(self.isp(i), i)

    def restore(self, i):
        """Undo every fault on uplink i."""
        self._nft_forward(i, None)
        self.carrier(i, True)
        if self.dhcp[i - 1]:
            self.dhcp_server(i, True)

    # ---------------------------------------------------------------- queries

    def route_dev(self, addr=INTERNET_PROBE):
        """The DUT's outgoing interface for addr (the kernel's route choice), or None."""
        res = self.ip(self.dut, "-j", "route", "get", addr, check=False)
        if res.returncode:
            return None
        return json.loads(res.stdout)[0].get("dev")

    def addresses(self, ifname, ns=None):
        """IPv4 addresses (with prefix) on ifname in ns (default DUT)."""
        res = self.ip(ns or self.dut, "-j", "addr", "show", "dev", ifname, check=False)
        if res.returncode:
            return []
        return ["%s/%s" % (a["local"], a["prefixlen"]) for link in json.loads(res.stdout)
                for a in link.get("addr_info", []) if a.get("family") == "inet"]

    def ping(self, addr, ns=None, count=1, timeout=2, iface=None):
        """True if addr answers ping from ns (default DUT)."""
        argv = ["ping", "-n", "-q", "-c", str(count), "-W", str(timeout)]
        if iface:
            argv += ["-I", iface]
        return self.nsexec(ns or self.dut, argv + [addr], check=False).returncode == 0


# ==================================================================== NetworkManager

class NetworkManager:
    """NetworkManager in the DUT namespace, own mount namespace, read-only /sys."""

    def __init__(self, lab, network, connectivity=True, gsm_profile=False, gsm_autoconnect=False):
        self.lab = lab
        self.net = network
        self.dir = os.path.join(lab.run_dir, "nm")
        self.conns = os.path.join(self.dir, "connections")
        self.empty = os.path.join(self.dir, "empty")
        os.makedirs(self.conns, exist_ok=True)
        os.makedirs(self.empty, exist_ok=True)
        self.connectivity = connectivity
        self.gsm_profile = gsm_profile
        self.gsm_autoconnect = gsm_autoconnect
        self.proc = None

    def _config(self):
        lines = ["[main]", "plugins=keyfile", "dhcp=internal", "dns=none", "rc-manager=unmanaged",
                 "systemd-resolved=false", "no-auto-default=*", "hostname-mode=none",
                 "auth-polkit=false", "", "[logging]", "level=DEBUG", ""]
        if self.net.ecm:
            lines += ["[keyfile]", "unmanaged-devices=interface-name:usb0", ""]
        if self.connectivity:
            lines += ["[connectivity]", "uri=http://%s/check" % INTERNET_PROBE, "response=OK",
                      "interval=5", ""]
        return "\n".join(lines)

    def write_profile(self, name, sections):
        """Seed a keyfile profile: sections = {"connection": {...}, "ipv4": {...}}."""
        path = os.path.join(self.conns, name + ".nmconnection")
        with open(path, "w") as f:
            for group, keys in sections.items():
                f.write("[%s]\n" % group)
                for k, v in keys.items():
                    f.write("%s=%s\n" % (k, str(v).lower() if isinstance(v, bool) else v))
                f.write("\n")
        os.chmod(path, 0o600)
        return path

    def _profiles(self):
        for i in range(1, self.net.n + 1):
            ipv4 = {"method": "auto", "route-metric": 100 * i}
            if not self.net.dhcp[i - 1]:
                ipv4 = {"method": "manual", "address1": "10.201.%d.2/24,10.201.%d.1" % (i, i),
                        "dns": INTERNET_DNS + ";", "route-metric": 100 * i}
            self.write_profile("uplink%d" % i, {
                "connection": {"id": "uplink%d" % i, "type": "ethernet", "interface-name": "eth%d" % i,
                               "autoconnect": True},
                "ethernet": {}, "ipv4": ipv4, "ipv6": {"method": "ignore"}})
        if self.gsm_profile:
            self.write_profile("cellular", {
                "connection": {"id": "cellular", "type": "gsm", "autoconnect": self.gsm_autoconnect},
                "gsm": {"apn": "internet"},
                "ipv4": {"method": "auto", "may-fail": False, "route-metric": 700},
                "ipv6": {"method": "ignore"}})

    def _script(self):
        return "\n".join([
            "set -e", "mount --make-rprivate /", "mount -o remount,bind,ro /sys",
            "mount -t tmpfs -o mode=0755 labrun /run", "mkdir -p /run/NetworkManager",
            "mount -t tmpfs -o mode=0755 labetc /etc/NetworkManager",
            "mkdir -p /etc/NetworkManager/system-connections",
            "for f in %s/*; do [ -e \"$f\" ] && install -m 0600 \"$f\" "
            "/etc/NetworkManager/system-connections/; done" % self.conns,
            "mount -t tmpfs -o mode=0700 labvar /var/lib/NetworkManager",
            "exec NetworkManager --no-daemon --debug --config=%s/NetworkManager.conf "
            "--config-dir=%s --system-config-dir=%s" % (self.dir, self.empty, self.empty)]) + "\n"

    def start(self, timeout=30):
        """Start NetworkManager and wait until its start-up is complete."""
        with open(os.path.join(self.dir, "NetworkManager.conf"), "w") as f:
            f.write(self._config())
        self._profiles()
        script = os.path.join(self.dir, "start.sh")
        with open(script, "w") as f:
            f.write(self._script())
        self.proc = Proc(self.lab, "NetworkManager",
                         ["ip", "netns", "exec", self.net.dut, "unshare", "-m", "-u",
                          "--propagation", "private", "sh", script], env=self.lab.env)
        self.lab.bus.wait_name(NM_BUS_NAME, 20, self.proc)
        run(["nm-online", "-s", "-q", "-t", str(timeout)], env=self.lab.env, timeout=timeout + 5)
        return self

    def stop(self, sig=signal.SIGTERM):
        if self.proc:
            self.proc.stop(sig)

    def restart(self):
        """Stop, flush the addresses NetworkManager leaves behind (docs/lab.md), start again."""
        self.stop()
        for i in range(1, self.net.n + 1):
            self.net.ip(self.net.dut, "addr", "flush", "dev", "eth%d" % i, check=False)
        return self.start()

    def nmcli(self, *args, check=True, timeout=60):
        """Run nmcli on the lab's bus; return stdout."""
        return run(["nmcli"] + list(args), check=check, env=self.lab.env, timeout=timeout).stdout

    def device_state(self, dev):
        """GENERAL.STATE of a device, e.g. '100 (connected)', or None."""
        out = self.nmcli("-g", "GENERAL.STATE", "device", "show", dev, check=False)
        return out.strip() or None

    def wait_connected(self, dev, timeout=30):
        """Wait until device dev is activated."""
        return wait_until(lambda: (self.device_state(dev) or "").startswith("100"), timeout,
                          "%s connected in NetworkManager" % dev, 0.1)

    def active_connections(self):
        """{name: device} of active connections."""
        out = self.nmcli("-t", "-f", "NAME,DEVICE", "connection", "show", "--active", check=False)
        return dict(line.rsplit(":", 1) for line in out.splitlines() if ":" in line)


# ==================================================================== the lab

class Lab:
    """One lab instance: a run directory, a bus, and the daemons and namespaces asked for.

    personality: "simtech" | "ecm" | None (no modem); at_ports: 1 or 2 AT ports;
    uplinks: number of ethernet uplinks (0 = no NetworkManager unless ECM);
    network: force NetworkManager on/off; emu_settings: emulator overrides (imei, sim ...);
    enable: enable the modem after it appears; gsm_autoconnect: for the ECM profile.
    """

    _instances = []

    def __init__(self, run_dir=None, personality="simtech", at_ports=1, uplinks=0, network=None,
                 emu_settings=None, enable=False, connectivity=True, gsm_autoconnect=False):
        self.run_dir = os.path.realpath(run_dir or tempfile.mkdtemp(prefix="calab-", dir="/tmp"))
        os.makedirs(os.path.join(self.run_dir, "logs"), exist_ok=True)
        self.id = hashlib.sha1(self.run_dir.encode()).hexdigest()[:6]
        self.personality = personality
        self.at_ports = at_ports
        self.uplinks = uplinks
        self.want_network = network if network is not None else (uplinks > 0 or personality == "ecm")
        self.emu_settings = emu_settings or {}
        self.enable_modem = enable
        self.connectivity = connectivity
        self.gsm_autoconnect = gsm_autoconnect
        self.env = dict(os.environ)
        self.procs = []
        self.netns = []
        self.bus = self.polkit = self.emu = self.mm = self.net = self.nm = None
        self.sysfs = None
        self.modem = None           # EmuClient of the emulator
        self._reaper = None
        self._lock = threading.Lock()
        self.started = self.stopped = self.attached = False
        Lab._instances.append(self)

    # ---------------------------------------------------------------- bookkeeping

    def log_path(self, name):
        return os.path.join(self.run_dir, "logs", name + ".log")

    def _save_state(self):
        if self.attached:
            return
        _write_json(os.path.join(self.run_dir, "lab-state.json"), {
            "procs": [p.record() for p in self.procs], "netns": self.netns,
            "stopped": self.stopped, "owner": os.getpid(),
            "config": {"personality": self.personality, "at_ports": self.at_ports,
                       "uplinks": self.uplinks, "network": self.want_network},
            "env": {"DBUS_SYSTEM_BUS_ADDRESS": self.bus.address if self.bus else None}})

    @classmethod
    def attach(cls, run_dir):
        """A handle on a lab another process runs (for CLIs): controls, no ownership.

        Works: lab.modem (emulator controls), lab.net faults and queries,
        lab.mm queries, unplug/replug, pause/resume, run_in_dut. stop() does nothing.
        """
        with open(os.path.join(run_dir, "lab-state.json")) as f:
            state = json.load(f)
        if state.get("stopped"):
            raise LabError("the lab in %s is stopped" % run_dir)
        cfg = state["config"]
        lab = cls(run_dir, cfg["personality"], cfg["at_ports"], cfg["uplinks"], cfg["network"])
        lab.attached = True
        lab.procs = [RecordedProc(r) for r in state["procs"]]
        lab.bus = Bus(lab)
        lab.env["DBUS_SYSTEM_BUS_ADDRESS"] = lab.bus.address
        ecm = lab.personality == "ecm"
        if lab.want_network:
            lab.net = Network(lab, lab.uplinks, ecm=ecm)
            lab.net.dnsmasq = {int(p.name[len("dhcp-isp"):]): p for p in lab.procs
                               if p.name.startswith("dhcp-isp")}
            lab.nm = NetworkManager(lab, lab.net)
            lab.nm.proc = lab.recorded("NetworkManager")
        if lab.personality:
            op = (lab.net.op, "lan") if ecm else (None, None)
            lab.emu = Emulator(lab, lab.personality, lab.at_ports, None, *op)
            lab.modem = lab.emu.client
            lab.sysfs = FakeSysfs(lab, lab.personality, lab.at_ports)
            lab.mm = ModemManager(lab, lab.emu, lab.sysfs, lab.net.dut if ecm else None)
            lab.mm.proc = lab.recorded("ModemManager")
        return lab

    def recorded(self, name):
        """The most recently recorded process called name (or None)."""
        return next((p for p in reversed(self.procs) if p.name == name), None)

    def register(self, proc):
        """Record a started process (for teardown and the reaper)."""
        with self._lock:
            self.procs.append(proc)
            self._save_state()

    def record_netns(self, ns):
        with self._lock:
            self.netns.append(ns)
            self._save_state()

    def _start_reaper(self):
        self._save_state()
        self._reaper = subprocess.Popen([PY, "-m", "cellagent_test.lab", "reap", self.run_dir],
                                        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL,
                                        env=dict(os.environ, PYTHONPATH=core.PYLIB_DIR))
        self._reaper.wait()       # the reaper forks and detaches at once

    # ---------------------------------------------------------------- life cycle

    def start(self):
        """Start everything asked for; on failure tear down and re-raise."""
        check_prerequisites(network=self.want_network)
        atexit.register(self.stop)
        self.started = True
        try:
            self._start_reaper()
            self.bus = Bus(self).start()
            self.env["DBUS_SYSTEM_BUS_ADDRESS"] = self.bus.address
            self._save_state()
            self.polkit = Polkit(self).start()
            ecm = self.personality == "ecm"
            if self.want_network:
                self.net = Network(self, self.uplinks, ecm=ecm).start()
                self.nm = NetworkManager(self, self.net, self.connectivity, gsm_profile=ecm,
                                         gsm_autoconnect=self.gsm_autoconnect).start()
            if self.personality:
                self._start_modem(ecm)
            self.write_env()
        except BaseException:
            self.print_logs()
            self.stop()
            raise
        return self

    def _start_modem(self, ecm):
        op = (self.net.op, "lan") if ecm else (None, None)
        self.emu = Emulator(self, self.personality, self.at_ports, self.emu_settings, *op).start()
        self.modem = self.emu.client
        mac = None
        if ecm:
            link = json.loads(self.net.ip(self.net.dut, "-j", "link", "show", "usb0").stdout)
            mac = link[0].get("address")
        self.sysfs = FakeSysfs(self, self.personality, self.at_ports, mac).build()
        self.mm = ModemManager(self, self.emu, self.sysfs, self.net.dut if ecm else None)
        self.mm.start(wait=True)
        if self.enable_modem:
            self.mm.enable()

    def stop(self):
        """Tear everything down (idempotent); the run directory stays."""
        if not self.started or self.stopped:
            return
        self.stopped = True
        teardown_recorded(self.run_dir)
        for p in self.procs:
            try:
                p.popen.wait(1)
            except subprocess.TimeoutExpired:
                pass
        if self._reaper is not None and self._reaper.stdin:
            self._reaper.stdin.close()

    def leftovers(self):
        """What of this lab survived stop(): live processes, namespaces, host mounts."""
        left = ["process %s (%d)" % (p.name, p.pid) for p in self.procs
                if _alive_recorded(p.record())]
        present = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
        left += ["netns " + ns for ns in self.netns if ns in present]
        with open("/proc/self/mounts") as f:
            left += ["mount " + line.split()[1] for line in f if self.run_dir in line]
        return left

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def write_env(self):
        """Write run_dir/env (shell syntax) for manual use and the demo."""
        values = {"DBUS_SYSTEM_BUS_ADDRESS": self.bus.address, "LAB_RUN_DIR": self.run_dir}
        if self.net:
            values.update(LAB_DUT_NETNS=self.net.dut, LAB_INET_NETNS=self.net.inet,
                          LAB_PROBE_ADDR=INTERNET_PROBE)
        if self.emu:
            values["LAB_EMU_CTL"] = self.emu.ctl
        with open(os.path.join(self.run_dir, "env"), "w") as f:
            for k, v in values.items():
                f.write("%s=%s\n" % (k, v))

    # ---------------------------------------------------------------- conveniences

    def dut_wrapper(self):
        """argv prefix that runs a command inside the device namespace (or nothing).

        The command sees a resolv.conf naming the lab's DNS (bind-mounted in a
        private mount namespace; the host's /etc is untouched) and keeps its pid
        (every step execs).
        """
        if not self.net:
            return []
        return ["ip", "netns", "exec", self.net.dut, "unshare", "-m", "--propagation", "private",
                "sh", "-c", 'mount --bind %s /etc/resolv.conf 2>/dev/null; exec "$@"'
                % self.net.resolv_conf, "dut"]

    def run_in_dut(self, argv, check=True, timeout=60):
        """Run argv in the device namespace with the lab's bus; CompletedProcess."""
        return run(self.dut_wrapper() + list(argv), check=check, env=self.env, timeout=timeout)

    def spawn(self, name, argv, in_dut=True, env=None):
        """Start a long-running process (killed at teardown); returns a Proc."""
        wrapper = self.dut_wrapper() if in_dut else []
        return Proc(self, name, wrapper + list(argv), env=dict(self.env, **(env or {})))

    def start_broker(self, port=None):
        """Start a mosquitto for the agent in the device namespace (mqtt.Broker)."""
        self.broker = Broker(lab=self, port=port).start()
        return self.broker

    def print_logs(self, lines=40):
        """Print the tail of every log in the run directory (for failed tests)."""
        logdir = os.path.join(self.run_dir, "logs")
        for name in sorted(os.listdir(logdir)) if os.path.isdir(logdir) else []:
            path = os.path.join(logdir, name)
            with open(path, errors="replace") as f:
                tail = f.readlines()[-lines:]
            if tail:
                print("---- %s (last %d lines) ----" % (path, len(tail)))
                sys.stdout.write("".join(tail))
        sys.stdout.flush()


# ==================================================================== test main

def main(argv=None, network=True):
    """Run the calling module's unittest tests: exit 0, 1, or 77 (skipped).

    Labs started by the tests print their log tails when a test fails; run
    directories are removed after a clean pass (kept for inspection otherwise).
    """
    import unittest
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(128 + signal.SIGTERM))
    try:
        check_prerequisites(network=network)
    except LabSkip as exc:
        print("SKIP: %s" % exc)
        sys.exit(SKIP)
    prog = unittest.main(module="__main__", argv=argv, exit=False, verbosity=2)
    result = prog.result
    ok = result.wasSuccessful()
    for lab in Lab._instances:
        lab.stop()
        left = lab.leftovers() if lab.started else []
        if left:
            print("FAIL: left behind after teardown: " + ", ".join(left))
            ok = False
        if not ok:
            lab.print_logs()
        else:
            shutil.rmtree(lab.run_dir, ignore_errors=True)
    if ok and result.testsRun and len(result.skipped) == result.testsRun:
        sys.exit(SKIP)
    sys.exit(0 if ok else 1)


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "reap":
    _reaper_main(sys.argv[2])
