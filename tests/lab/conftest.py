"""Fixtures of the lab tests: they run against the lab `make lab` brought up (see make lab-test)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rempart import topology as model

REPO = Path(__file__).resolve().parents[2]
LAB_DIR = REPO / ".lab"


@pytest.fixture(scope="session")
def endpoints() -> dict:
    path = LAB_DIR / "endpoints.json"
    if not path.exists():
        pytest.fail(f"{path} is missing: the lab tests need `make lab` first (make lab-test does both)")
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def lab_topology() -> dict:
    return model.check(model.INVENTORIES / "lab" / model.TOPOLOGY_FILE)


def ssh(host: str, command: str, timeout: int = 30, extra: list[str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ssh", "-F", str(LAB_DIR / "ssh_config"), "-o", "BatchMode=yes", *(extra or []), host, command],
        capture_output=True, text=True, check=False, timeout=timeout,
    )


def docker_inspect(name: str) -> dict:
    out = subprocess.run(["docker", "inspect", name], capture_output=True, text=True, check=True).stdout
    return json.loads(out)[0]


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def playbook(path: str, *options: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """A playbook against the lab, as an operator runs it; stdout holds its whole output, without colours."""
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "inventories/lab", path, "-e", "rempart_target=lab",
         *options],
        capture_output=True, text=True, cwd=REPO, check=False, timeout=timeout,
    )
    completed.stdout = ANSI.sub("", completed.stdout + completed.stderr)
    return completed


def central_logs_take_up(host: str) -> subprocess.CompletedProcess:
    """Role rsyslog on ``host`` (the monitoring tier, its tag only): after a renewal forced by a test, it
    restarts rsyslog with the new certificate, as the next run of site.yml would; the lab is then what
    the code says again (make drift)."""
    done = playbook("playbooks/monitoring.yml", "--limit", host, "--tags", "rsyslog")
    assert done.returncode == 0, done.stdout[-3000:]
    return done
