"""Central logs in the lab, seen from outside (AUDIT, ENC): every host of the topology, through its
firewall, sends its messages to the log collector over RELP with TLS, and an administrator's command
(sudo, an authentication message) is filed in the host's auth.log there, under the host's name."""

from __future__ import annotations

import shlex
import time
import uuid
from pathlib import Path

import pytest
import yaml
from conftest import ssh

from rempart import topology as model

pytestmark = pytest.mark.AUDIT
# The roles these tests cover (the docs' role pages name this file).
ROLES = ("rsyslog",)

REPO = Path(__file__).resolve().parents[2]
TOPOLOGY = model.check(model.INVENTORIES / "lab" / model.TOPOLOGY_FILE)
COLLECTOR = model.members(TOPOLOGY, "log_collector")[0]
DIR = yaml.safe_load((REPO / "roles/rsyslog/defaults/main.yml").read_text(encoding="utf-8"))["rsyslog_collector_dir"]


def filed(host: str, stream: str, marker: str) -> list[str]:
    found = ssh(COLLECTOR, f"sudo grep -F -- {shlex.quote(marker)} {shlex.quote(f'{DIR}/{host}/{stream}.log')}")
    return found.stdout.splitlines()


def test_every_host_s_messages_and_administrators_commands_reach_the_log_collector():
    marker = f"rempart-lab-logs-{uuid.uuid4()}"
    for host in TOPOLOGY["hosts"]:
        sent = ssh(host, f"sudo logger -t rempart-test {shlex.quote(marker)}")
        assert sent.returncode == 0, f"{host}: {sent.stderr}"
    deadline = time.monotonic() + 60
    missing = list(TOPOLOGY["hosts"])
    while missing and time.monotonic() < deadline:
        missing = [h for h in missing if not (filed(h, "syslog", marker) and filed(h, "auth", marker))]
        time.sleep(2 if missing else 0)
    assert not missing, f"no message (syslog.log, and sudo's line in auth.log) on {COLLECTOR} from {missing}"
    for host in TOPOLOGY["hosts"]:
        assert len(filed(host, "syslog", marker)) == 1, host
        assert all("sudo" in line for line in filed(host, "auth", marker)), host
