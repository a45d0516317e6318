"""A private system bus for agent tests that need no lab (no ModemManager or
NetworkManager on it): the agent connects, finds no daemons, and keeps running.
The lab has its own bus (cellagent_test.lab.Bus), started and torn down with the lab.
"""
import os
import subprocess

from cellagent_test.core import at_exit, wait_until


class PrivateBus:
    """A dbus-daemon of type system on a socket in directory, restartable at the same path."""

    def __init__(self, directory):
        self.dir = directory
        self.socket = os.path.join(directory, "system_bus_socket")
        self.address = "unix:path=" + self.socket
        self.conf = os.path.join(directory, "bus.conf")
        self.proc = None
        with open(self.conf, "w") as f:
            f.write(f"""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>system</type><listen>{self.address}</listen>
<policy context="default"><allow user="*"/><allow own="*"/><allow send_type="method_call"/>
<allow send_destination="*" eavesdrop="true"/><allow receive_sender="*"/></policy></busconfig>
""")
        at_exit(self.stop)

    def start(self):
        if os.path.exists(self.socket):
            os.unlink(self.socket)
        self.proc = subprocess.Popen(["dbus-daemon", "--nofork", "--nopidfile",
                                      "--config-file=" + self.conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: os.path.exists(self.socket) or self.proc.poll() is not None, 10,
                     "the private bus socket")
        if self.proc.poll() is not None:
            raise AssertionError("dbus-daemon exited")
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
        self.proc = None

    def client_pids(self):
        """Process id of each of the bus's client connections (busctl list), one entry per
        connection, e.g. to see the agent reconnect: pids.count(agent_pid)."""
        out = subprocess.run(["busctl", "--address=" + self.address, "list", "--no-legend",
                              "--unique"], capture_output=True, text=True, timeout=10).stdout
        return [int(f[1]) for f in (line.split() for line in out.splitlines())
                if len(f) > 1 and f[1].isdigit()]
