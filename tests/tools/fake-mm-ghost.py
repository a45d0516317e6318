#!/usr/bin/python3
"""A fake ModemManager for one case the real one cannot be made to produce on demand.

GDBusObjectManagerClient (under libmm-glib's MMManager) can keep an object that
ModemManager removed while the client was being set up: when the InterfacesRemoved signal
is handled before the GetManagedObjects reply, GLib logs "Processing InterfaceRemoved
signal ... but no object proxy exists" and the client holds the removed modem for good.
With the real ModemManager that needs a replug in the few milliseconds of the agent's
start (seen once in CI). This fake produces the same end state every time: its
GetManagedObjects lists Modem/0, but nothing answers at that path. On SIGUSR1 it adds
Modem/1, which answers. Run on a private system bus (DBUS_SYSTEM_BUS_ADDRESS).
"""
import signal

import dbus
import dbus.mainloop.glib
import dbus.service
from gi.repository import GLib

MM = "org.freedesktop.ModemManager1"
MM_PATH = "/org/freedesktop/ModemManager1"
MODEM_IFACE = MM + ".Modem"
OM_IFACE = "org.freedesktop.DBus.ObjectManager"
PROPS_IFACE = "org.freedesktop.DBus.Properties"


def modem_props(n):
    return {
        "Manufacturer": dbus.String("FAKE"),
        "Model": dbus.String("GHOST-%d" % n),
        "EquipmentIdentifier": dbus.String("86000000000000%d" % n),
        "Device": dbus.String("/sys/devices/fake/%d" % n),
        "Plugin": dbus.String("fake"),
        "State": dbus.Int32(3),           # disabled
        "StateFailedReason": dbus.UInt32(0),
        "Sim": dbus.ObjectPath("/"),
        "Bearers": dbus.Array([], signature="o"),
        "UnlockRequired": dbus.UInt32(1),  # none
        "SignalQuality": dbus.Struct((dbus.UInt32(0), dbus.Boolean(False))),
        "AccessTechnologies": dbus.UInt32(0),
    }


class Modem(dbus.service.Object):
    """Answers property reads; every method call fails (the agent retries, which is fine)."""

    def __init__(self, bus, n):
        self.path = "%s/Modem/%d" % (MM_PATH, n)
        self.props = modem_props(n)
        super().__init__(bus, self.path)

    @dbus.service.method(PROPS_IFACE, in_signature="ss", out_signature="v")
    def Get(self, iface, name):
        if iface != MODEM_IFACE or name not in self.props:
            raise dbus.exceptions.DBusException("no such property", name=MM + ".Error.Core.Unsupported")
        return self.props[name]

    @dbus.service.method(PROPS_IFACE, in_signature="s", out_signature="a{sv}")
    def GetAll(self, iface):
        return self.props if iface == MODEM_IFACE else {}


class Manager(dbus.service.Object):

    def __init__(self, bus):
        super().__init__(bus, MM_PATH)
        self.bus = bus
        self.modems = {}

    @dbus.service.method(OM_IFACE, out_signature="a{oa{sa{sv}}}")
    def GetManagedObjects(self):
        # Modem/0 is listed although nothing is exported at its path: the removed modem
        # a client can be left holding.
        objects = {dbus.ObjectPath(MM_PATH + "/Modem/0"): {MODEM_IFACE: modem_props(0)}}
        for m in self.modems.values():
            objects[dbus.ObjectPath(m.path)] = {MODEM_IFACE: m.props}
        return objects

    @dbus.service.signal(OM_IFACE, signature="oa{sa{sv}}")
    def InterfacesAdded(self, path, interfaces):
        pass

    def add_modem(self, n):
        m = Modem(self.bus, n)
        self.modems[n] = m
        self.InterfacesAdded(dbus.ObjectPath(m.path), {MODEM_IFACE: m.props})
        print("added", m.path, flush=True)
        return GLib.SOURCE_REMOVE


def main():
    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    bus = dbus.SystemBus()
    manager = Manager(bus)
    name = dbus.service.BusName(MM, bus)  # noqa: F841 (kept while running)
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGUSR1, manager.add_modem, 1)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, lambda: loop.quit() or False)
    print("ready", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
