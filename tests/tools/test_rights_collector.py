"""The user-rights collector of role node_exporter (MON, category rights), run here against a journal
of sshd that a stand-in journalctl serves: logins are counted by where they came from (a bastion, or
elsewhere; every one on a bastion itself), only once each across runs, and from the boot the first time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.MON

SCRIPT = Path(__file__).resolve().parents[2] / "roles/node_exporter/files/rempart-rights-metrics"
BASTION = "10.232.0.5"
# A stand-in for journalctl: prints the entries of $JOURNAL (one JSON per line) after --after-cursor's, or all
# of them with -b; records its arguments in $JOURNAL.calls.
JOURNALCTL = """#!/usr/bin/env python3
import json, os, sys
journal = os.environ["JOURNAL"]
with open(journal + ".calls", "a") as calls:
    calls.write(" ".join(sys.argv[1:]) + "\\n")
entries = [json.loads(line) for line in open(journal)]
if "--after-cursor" in sys.argv:
    cursor = sys.argv[sys.argv.index("--after-cursor") + 1]
    entries = entries[[e["__CURSOR"] for e in entries].index(cursor) + 1:]
for entry in entries:
    print(json.dumps(entry))
"""


def message(n: int, text: str) -> str:
    return json.dumps({"__CURSOR": f"c{n}", "MESSAGE": text, "SYSLOG_IDENTIFIER": "sshd"}) + "\n"


@pytest.fixture()
def journal(tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin/journalctl").write_text(JOURNALCTL, encoding="utf-8")
    (tmp_path / "bin/journalctl").chmod(0o755)
    path = tmp_path / "journal"
    path.write_text(message(1, f"Accepted publickey for labops from {BASTION} port 50100 ssh2: ED25519 SHA256:x")
                    + message(2, "Accepted password for mallory from 192.0.2.7 port 40000 ssh2")
                    + message(3, "Failed password for root from 192.0.2.7 port 40001 ssh2"), encoding="utf-8")
    return path


def collect(journal: Path, *options: str) -> dict[str, int]:
    out = journal.parent / "metrics/rempart_rights.prom"
    environment = {**os.environ, "PATH": f"{journal.parent / 'bin'}:{os.environ['PATH']}", "JOURNAL": str(journal)}
    subprocess.run([sys.executable, str(SCRIPT), str(out), "--state", str(journal.parent / "state/logins.json"), *options],
                   env=environment, check=True, capture_output=True, text=True, timeout=30)
    text = out.read_text(encoding="utf-8")
    assert 'rempart_rights_uid0_account{account="root"} 1' in text
    return {via: int(text.split(f'rempart_rights_ssh_logins_total{{via="{via}"}} ')[1].split()[0]) for via in ("bastion", "elsewhere")}


def test_logins_are_counted_by_where_they_came_from_once_each(journal):
    assert collect(journal, f"--bastion={BASTION}") == {"bastion": 1, "elsewhere": 1}
    assert "-b" in journal.with_suffix(".calls").read_text(encoding="utf-8").split()  # the first time: since the boot
    assert collect(journal, f"--bastion={BASTION}") == {"bastion": 1, "elsewhere": 1}  # nothing new: nothing counted twice
    with journal.open("a", encoding="utf-8") as more:
        more.write(message(4, "Accepted publickey for labops from 127.0.0.1 port 50200 ssh2: ED25519 SHA256:x"))
    assert collect(journal, f"--bastion={BASTION}") == {"bastion": 1, "elsewhere": 2}
    assert "--after-cursor c3" in journal.with_suffix(".calls").read_text(encoding="utf-8")


def test_every_login_to_a_bastion_is_one_through_the_bastion(journal):
    assert collect(journal, "--entry") == {"bastion": 2, "elsewhere": 0}
