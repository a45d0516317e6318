#!/usr/bin/python3
# ctest: labels=integration timeout=120
"""systemd/50-cellagent.rules, evaluated by the real polkitd, grants the user cellagent
exactly the actions docs/polkit.md lists and grants nothing to anyone else.

The test re-runs itself in a private mount namespace (unshare --mount) where:
- /etc/passwd and /etc/group are copies that add the users cellagent and ca-polkit-other;
- /usr/share/polkit-1/rules.d holds only the repository's rule file (bind-mounted, so the
  file under test is the one in the tree); the other rules directories are empty;
- /run is an empty tmpfs: no login sessions are visible (every subject gets a policy's
  "allow_any" default, like a system service) and /run/dbus/system_bus_socket is a private
  dbus-daemon's, so nothing here can reach the host's system bus.
polkitd runs on that bus with the host's action files (/usr/share/polkit-1/actions, from
the modemmanager, network-manager and systemd packages). For every registered action,
pkcheck asks about a process running as cellagent (authorised exactly for GRANTED and the
actions they imply) and one running as ca-polkit-other (authorised exactly where the
action's own allow_any default is "yes": the rule adds nothing). A grant added to the rule,
a rule that answers for other users or one that does not compile fails the test.

Needs root (mount namespace, processes as other users). Without root it skips (77); as
root, a missing polkitd or pkcheck (package polkitd, scripts/setup) is a failure."""
import concurrent.futures
import os
import pwd
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402

RULE = os.path.join(ct.SOURCE_DIR, "systemd", "50-cellagent.rules")
AGENT_USER = "cellagent"
OTHER_USER = "ca-polkit-other"

# What the agent needs (docs/polkit.md says which method needs which).
GRANTED = {
    "org.freedesktop.ModemManager1.Device.Control",
    "org.freedesktop.ModemManager1.Messaging",
    "org.freedesktop.NetworkManager.network-control",
    "org.freedesktop.NetworkManager.settings.modify.system",
    "org.freedesktop.NetworkManager.checkpoint-rollback",
    "org.freedesktop.login1.reboot",
    "org.freedesktop.login1.reboot-multiple-sessions",
    "org.freedesktop.ModemManager1.Time",
    "org.freedesktop.timedate1.set-time",
}
# Granted by earlier versions of the rule or close to what the agent does, and not needed:
# named so that a missing action file cannot make their denial vacuous.
MUST_DENY = {
    "org.freedesktop.ModemManager1.Location",
    "org.freedesktop.ModemManager1.Control",
    "org.freedesktop.ModemManager1.Firmware",
    "org.freedesktop.NetworkManager.enable-disable-wwan",
    "org.freedesktop.NetworkManager.settings.modify.own",
    "org.freedesktop.NetworkManager.enable-disable-network",
    "org.freedesktop.login1.reboot-ignore-inhibit",
    "org.freedesktop.login1.power-off",
    "org.freedesktop.login1.set-self-linger",
    "org.freedesktop.timedate1.set-local-rtc",
}
POLKITD_PATHS = ("/usr/lib/polkit-1/polkitd", "/usr/libexec/polkitd", "/usr/libexec/polkit-1/polkitd")
BUS_SOCKET = "/run/dbus/system_bus_socket"
BUS_ADDRESS = "unix:path=" + BUS_SOCKET
NS_ENV = "CA_POLKIT_TEST_IN_NAMESPACE"


def polkitd_path():
    return next((p for p in POLKITD_PATHS if os.access(p, os.X_OK)), None)


def enter_namespace():
    """Re-run this file in a private mount namespace; never returns."""
    env = dict(os.environ, **{NS_ENV: "1"})
    sys.stdout.flush()
    os.execvpe("unshare", ["unshare", "--mount", "--propagation", "private", "--",
                           sys.executable, os.path.abspath(__file__)], env)


def mount(*args):
    subprocess.run(["mount", *args], check=True, timeout=10)


def free_id(used, start=64000):
    i = start
    while i in used:
        i -= 1
    return i


def private_users(d):
    """Copies of /etc/passwd and /etc/group with both test users; returns {name: (uid, gid)}."""
    with open("/etc/passwd") as f:
        passwd = f.read()
    with open("/etc/group") as f:
        group = f.read()
    uids = {int(f[2]) for f in (l.split(":") for l in passwd.splitlines())
            if len(f) > 2 and f[2].isdigit()}
    gids = {int(f[2]) for f in (l.split(":") for l in group.splitlines())
            if len(f) > 2 and f[2].isdigit()}
    users = {}
    for name in (AGENT_USER, OTHER_USER):
        line = next((l for l in passwd.splitlines() if l.split(":")[0] == name), None)
        if line:  # a host that already has the user (e.g. the package is installed)
            f = line.split(":")
            users[name] = (int(f[2]), int(f[3]))
            if not any(l.split(":")[0] == name for l in group.splitlines()):
                group += f"{name}:x:{f[3]}:\n"
            continue
        uid = free_id(uids)
        gid = free_id(gids, uid)
        uids.add(uid)
        gids.add(gid)
        if not passwd.endswith("\n"):
            passwd += "\n"
        if not group.endswith("\n"):
            group += "\n"
        passwd += f"{name}:x:{uid}:{gid}:polkit rule test:/nonexistent:/usr/sbin/nologin\n"
        group += f"{name}:x:{gid}:\n"
        users[name] = (uid, gid)
    for name, text in (("passwd", passwd), ("group", group)):
        path = os.path.join(d, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o644)
        mount("--bind", path, "/etc/" + name)
    return users


def private_rules():
    """Only the repository's rule: in /usr/share/polkit-1/rules.d, where packages put it.
    (/run/polkit-1/rules.d, read by polkit 126, goes with /run.)"""
    for other in ("/etc/polkit-1/rules.d", "/usr/local/share/polkit-1/rules.d"):
        if os.path.isdir(other):
            mount("-t", "tmpfs", "-o", "mode=0755", "tmpfs", other)
    mount("-t", "tmpfs", "-o", "mode=0755", "tmpfs", "/usr/share/polkit-1/rules.d")
    target = "/usr/share/polkit-1/rules.d/50-cellagent.rules"
    open(target, "w").close()
    mount("--bind", "-o", "ro", RULE, target)


def private_run():
    """An empty /run: no sessions for polkitd to find, and room for the private bus."""
    mount("-t", "tmpfs", "-o", "mode=0755", "tmpfs", "/run")
    for sub in ("dbus", "systemd/sessions", "systemd/users", "systemd/seats", "systemd/machines"):
        os.makedirs("/run/" + sub, mode=0o755)


def start_bus(d):
    conf = os.path.join(d, "bus.conf")
    with open(conf, "w") as f:
        f.write(f"""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>system</type><listen>{BUS_ADDRESS}</listen>
<policy context="default"><allow user="*"/><allow own="*"/><allow send_type="method_call"/>
<allow send_destination="*"/><allow receive_sender="*"/></policy></busconfig>
""")
    log = open(os.path.join(d, "dbus-daemon.log"), "w")
    proc = subprocess.Popen(["dbus-daemon", "--nofork", "--nopidfile", "--config-file=" + conf],
                            stdout=log, stderr=log)
    log.close()
    ct.at_exit(lambda: stop(proc))
    ct.wait_until(lambda: os.path.exists(BUS_SOCKET) or proc.poll() is not None, 10,
                 "the private bus socket")
    assert proc.poll() is None, "dbus-daemon exited"
    return proc


def name_has_owner(name):
    r = subprocess.run(["dbus-send", "--bus=" + BUS_ADDRESS, "--print-reply=literal",
                        "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus",
                        "org.freedesktop.DBus.NameHasOwner", "string:" + name],
                       capture_output=True, text=True, timeout=10)
    return r.returncode == 0 and "true" in r.stdout


def start_polkitd(d):
    logpath = os.path.join(d, "polkitd.log")
    log = open(logpath, "w")
    # Not under the suite's G_DEBUG=fatal-criticals: polkitd is not the code under test, and
    # polkit 126 (Debian 13) logs a critical when /etc/polkit-1/actions does not exist, as
    # on a minimal install, which would kill it.
    env = {k: v for k, v in os.environ.items() if k != "G_DEBUG"}
    proc = subprocess.Popen([polkitd_path()], stdout=log, stderr=log,
                            env=dict(env, DBUS_SYSTEM_BUS_ADDRESS=BUS_ADDRESS))
    log.close()
    ct.at_exit(lambda: stop(proc))
    ct.on_failure(lambda: print(f"---- {logpath} ----\n" + open(logpath, errors="replace").read()))
    # It owns its name once the rules are loaded.
    ct.wait_until(lambda: proc.poll() is not None or name_has_owner("org.freedesktop.PolicyKit1"),
                 30, "polkitd to own org.freedesktop.PolicyKit1")
    assert proc.poll() is None, f"polkitd exited with {proc.returncode}"
    return proc, logpath


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def registered_actions():
    """{action id: (implicit "any" authorisation, {actions it implies})}, as polkitd
    registered them."""
    tries = []

    def pkaction():
        r = subprocess.run(["pkaction", "--verbose"], capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=BUS_ADDRESS))
        tries.append(f"exit {r.returncode}: {r.stderr.strip()}")
        return r.stdout if r.returncode == 0 else None

    # A D-Bus call times out after 25 s; on a starved machine ask again (and say so).
    try:
        out = ct.wait_until(pkaction, 90, "pkaction --verbose", interval=1)
    finally:
        if len(tries) > 1:
            print("pkaction: " + "; ".join(tries))
    actions, current = {}, None
    for line in out.splitlines():
        if line and not line[0].isspace() and line.endswith(":"):
            current = line[:-1]
            actions[current] = [None, set()]
        elif current and line.strip().startswith("implicit any:"):
            actions[current][0] = line.split(":", 1)[1].strip()
        elif current and line.strip().startswith("annotation:"):
            key, _, value = line.split(":", 1)[1].strip().partition(" -> ")
            if key == "org.freedesktop.policykit.imply":
                actions[current][1].update(value.split())
    return actions


def subject(uid, gid):
    """A process running as uid:gid, as pkcheck's "pid,start-time,uid" subject."""
    proc = subprocess.Popen(["sleep", "600"], user=uid, group=gid, extra_groups=[])
    ct.at_exit(lambda: stop(proc))
    with open(f"/proc/{proc.pid}/stat") as f:
        start_time = f.read().rsplit(")", 1)[1].split()[19]  # field 22, starttime
    return f"{proc.pid},{start_time},{uid}"


def check(action, process):
    """True: authorised; False: not authorised (also: challenge); anything else fails."""
    r = subprocess.run(["pkcheck", "--action-id", action, "--process", process],
                       capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=BUS_ADDRESS))
    if r.returncode == 0:
        return True
    if r.returncode in (1, 2, 3) and "Error" not in r.stderr:
        return False
    raise AssertionError(f"pkcheck {action} {process}: exit {r.returncode}: {r.stderr.strip()}")


def test():
    for tool in ("pkcheck", "pkaction", "dbus-daemon", "dbus-send", "mount"):
        assert shutil.which(tool), f"{tool} not installed (scripts/setup installs it)"
    assert polkitd_path(), "polkitd not installed (package polkitd; scripts/setup installs it)"
    d = ct.run_dir()
    users = private_users(d)
    private_rules()
    private_run()
    start_bus(d)
    _, polkitd_log = start_polkitd(d)
    assert pwd.getpwnam(AGENT_USER).pw_uid == users[AGENT_USER][0]

    actions = registered_actions()
    missing = sorted((GRANTED | MUST_DENY) - actions.keys())
    assert not missing, ("actions not registered (install modemmanager, network-manager and "
                         f"systemd, as scripts/setup does): {missing}")
    agent = subject(*users[AGENT_USER])
    other = subject(*users[OTHER_USER])

    # polkitd also authorises an action when the subject is authorised for an action that
    # "implies" it (one level deep, whatever the rules say about the implied action).
    implied = set().union(*(actions[a][1] for a in GRANTED)) - GRANTED
    expected = GRANTED | implied
    subjects = {AGENT_USER: agent, OTHER_USER: other}
    want = {}
    for action, (implicit_any, _) in actions.items():
        want[(AGENT_USER, action)] = action in expected
        want[(OTHER_USER, action)] = implicit_any == "yes"
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        jobs = {k: pool.submit(check, k[1], subjects[k[0]]) for k in sorted(want)}
    results = {k: f.result() for k, f in jobs.items()}
    # polkitd gives each rule call 15 s and answers from the policy defaults when it is
    # killed, which a starved machine can reach: ask once more, one at a time.
    if "runaway" in open(polkitd_log, errors="replace").read():
        for k in [k for k in want if results[k] != want[k]]:
            print(f"polkitd killed a slow rule call; asking again: {k}")
            results[k] = check(k[1], subjects[k[0]])

    wrong = []
    for (user, action), wanted in sorted(want.items()):
        if results[(user, action)] != wanted:
            why = "" if user == AGENT_USER else f" (its allow_any default is {actions[action][0]})"
            wrong.append(f"{user}: {action} {'denied' if wanted else 'granted'}{why}")
    granted = sorted(a for a in actions if results[(AGENT_USER, a)])
    print(f"{len(actions)} actions checked for {AGENT_USER} and {OTHER_USER}; "
          f"{AGENT_USER} is granted: {', '.join(granted)}; implied by them: "
          f"{', '.join(sorted(implied)) or 'none'}")
    assert not (implied & MUST_DENY), f"implied by a grant: {sorted(implied & MUST_DENY)}"
    assert not wrong, "polkit rule:\n  " + "\n  ".join(wrong)


if __name__ == "__main__":
    if os.environ.get(NS_ENV) != "1":
        if os.geteuid() != 0:
            missing = "" if shutil.which("pkcheck") and polkitd_path() else " (and polkitd is not installed)"
            ct.skip("needs root for a private mount namespace and processes as other users" + missing)
        enter_namespace()
    ct.main(test)
