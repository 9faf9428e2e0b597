"""A host changed by hand is reported by a check run, then put back by a real one (AUDIT, HARD).

The base tier's roles look at a host once and act only on what they found different: this proves
that what they look at covers what an operator may change by hand (a configuration file, a stopped
service, an extra member of the admin group), in a dry run as in a real one.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, ssh

from rempart import topology as model

pytestmark = [pytest.mark.AUDIT, pytest.mark.HARD]

TOPOLOGY = model.check(model.INVENTORIES / "lab" / model.TOPOLOGY_FILE)
# A host of the data zone: nothing else in the lab tests runs on it at the same time.
HOST = model.members(TOPOLOGY, "db")[-1]
EDITED = "/etc/systemd/journald.conf.d/50-rempart.conf"
ADMIN_GROUP = "sysadmins"
INTRUDER = "debian"  # the image's cloud user, which exists on every lab host
RECAP = re.compile(rf"^{HOST}\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=0", re.MULTILINE)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def base_tier(*options: str) -> tuple[int, str]:
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "inventories/lab", "playbooks/base.yml",
         "-e", "rempart_target=lab", "--limit", HOST, *options],
        capture_output=True, text=True, cwd=REPO, check=False, timeout=600,
    )
    output = ANSI.sub("", completed.stdout + completed.stderr)
    assert completed.returncode == 0, output[-3000:]
    recap = RECAP.search(output)
    assert recap, f"no recap line for {HOST}:\n{output[-3000:]}"
    return int(recap.group(1)), output


def state() -> str:
    result = ssh(HOST, f"sudo tail -n1 {EDITED}; systemctl is-active chrony; getent group {ADMIN_GROUP}")
    return result.stdout


def test_a_hand_made_change_is_reported_by_a_dry_run_and_undone_by_a_run():
    changed = ssh(
        HOST,
        f"echo '# edited by hand' | sudo tee -a {EDITED} >/dev/null && sudo systemctl stop chrony"
        f" && sudo gpasswd -a {INTRUDER} {ADMIN_GROUP} >/dev/null",
    )
    assert changed.returncode == 0, changed.stderr
    try:
        count, output = base_tier("--check", "--diff")
        assert count >= 3, output[-3000:]
        assert "-# edited by hand" in output, "the dry run does not show the edit in its diff"
        before = state()
        assert "# edited by hand" in before and "inactive" in before and INTRUDER in before, "the dry run changed the host"
    finally:
        count, output = base_tier()
    assert count >= 3, output[-3000:]
    after = state()
    assert "# edited by hand" not in after, after
    assert "\nactive\n" in f"\n{after}", after
    assert INTRUDER not in after.split(ADMIN_GROUP, 1)[1], after
