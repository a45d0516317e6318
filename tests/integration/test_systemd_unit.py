#!/usr/bin/python3
"""systemd/cellagent.service passes `systemd-analyze verify` and rates 2.0 or lower in
`systemd-analyze security` (Debian's own ModemManager unit rates 6.5). Skips when
systemd-analyze is absent."""
# ctest: labels=unit;systemd timeout=60
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "pylib"))
import cellagent_test as ct  # noqa: E402


def test():
    if not shutil.which("systemd-analyze"):
        ct.skip("systemd-analyze not installed")
    unit_src = os.path.join(ct.SOURCE_DIR, "systemd", "cellagent.service")
    d = ct.run_dir()
    unit = os.path.join(d, "cellagent.service")
    with open(unit_src) as f:
        text = f.read()
    assert "Type=notify" in text and "WatchdogSec=" in text
    # verify needs an existing ExecStart binary: point it at the one we built.
    with open(unit, "w") as f:
        f.write(re.sub(r"^ExecStart=\S+", "ExecStart=" + ct.CELLAGENT, text, flags=re.M))
    v = subprocess.run(["systemd-analyze", "verify", unit], capture_output=True, text=True, timeout=30)
    # Only complaints about this unit count (verify also lints units it pulls in).
    mine = [l for l in v.stderr.splitlines() if "cellagent.service" in l]
    assert v.returncode == 0 and not mine, v.stderr
    s = subprocess.run(["systemd-analyze", "security", "--offline=true", unit_src],
                       capture_output=True, text=True, timeout=30)
    m = re.search(r"Overall exposure level for cellagent.service: ([0-9.]+)", s.stdout)
    assert m, s.stdout + s.stderr
    score = float(m.group(1))
    print(f"systemd-analyze security: {score}")
    assert score <= 2.0, f"exposure {score} > 2.0"


if __name__ == "__main__":
    ct.main(test)
