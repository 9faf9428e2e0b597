"""Key rotation of one host while the mesh carries traffic (LINK, KEY): playbooks/rotate-wireguard-keys.yml."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, ssh

from rempart import topology as model

pytestmark = [pytest.mark.LINK, pytest.mark.KEY]

TOPOLOGY = model.check(model.INVENTORIES / "lab" / model.TOPOLOGY_FILE)
WG = TOPOLOGY["wiring"]["overlay_interface"]
ROTATED = "db1"
# The monitoring host may ping every host (flow monitoring -> all, icmp).
PINGER = model.members(TOPOLOGY, "monitoring")[0]
INTERVAL = 0.2
# WireGuard's REKEY_TIMEOUT: a handshake that gets no answer is retried after 5 s.
ONE_HANDSHAKE = 5.0


def public_key(host: str) -> str:
    result = ssh(host, f"sudo wg show {WG} public-key")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def longest_gap(ping_output: str) -> float:
    """Longest run of unanswered echo requests, in seconds (ping -O reports each one)."""
    answered = sorted({int(n) for n in re.findall(r"bytes from .*icmp_seq=(\d+)", ping_output)})
    assert len(answered) > 10, f"the pinger got almost no answer:\n{ping_output[-2000:]}"
    gaps = [b - a - 1 for a, b in zip(answered, answered[1:])]
    return max(gaps, default=0) * INTERVAL


def test_rotating_a_host_key_drops_the_mesh_for_one_handshake_at_most():
    address = str(TOPOLOGY["hosts"][ROTATED]["overlay"])
    before = public_key(ROTATED)
    pinger = subprocess.Popen(
        ["ssh", "-F", str(REPO / ".lab" / "ssh_config"), "-o", "BatchMode=yes", PINGER,
         f"ping -n -O -i {INTERVAL} -W 1 -w 300 {address}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    time.sleep(3)
    started = time.monotonic()
    playbook = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "inventories/lab", "playbooks/rotate-wireguard-keys.yml",
         "-e", "rempart_target=lab", "-e", f"rotate={ROTATED}"],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
    )
    took = time.monotonic() - started
    time.sleep(5)
    ssh(PINGER, "pkill -INT -x ping")
    out, _err = pinger.communicate(timeout=30)
    assert playbook.returncode == 0, playbook.stdout[-4000:] + playbook.stderr[-2000:]
    after = public_key(ROTATED)
    gap = longest_gap(out)
    print(f"\nrotation of {ROTATED}'s key: playbook {took:.0f} s; {PINGER} -> {ROTATED} longest gap {gap:.1f} s")
    assert after != before, "the public key did not change"
    assert gap <= ONE_HANDSHAKE, f"the mesh was down for {gap:.1f} s, more than one handshake ({ONE_HANDSHAKE} s)"
