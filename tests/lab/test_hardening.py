"""The hardening baseline on every lab host, seen from outside (HARD, AUDIT)."""

from __future__ import annotations

import json
import subprocess

import pytest
from conftest import LAB_DIR, ssh

from rempart import audit
from rempart import topology as model

LAB = model.load(model.INVENTORIES / "lab" / model.TOPOLOGY_FILE)
LAB_HOSTS = sorted(LAB["hosts"])
BASTION = next(name for name, spec in LAB["hosts"].items() if "bastion" in spec["functions"])


@pytest.mark.HARD
@pytest.mark.parametrize("host", LAB_HOSTS)
def test_the_cloud_user_cannot_log_in_any_more(host):
    """Bootstrap created the operators as the image's default user; the SSH policy now refuses that user.
    The jump through the bastion is made as the operator, so that the host itself answers."""
    jump = f"ssh -F {LAB_DIR / 'ssh_config'} -o BatchMode=yes -W %h:%p {BASTION}"
    extra = ["-o", "User=debian"] + ([] if host == BASTION else ["-o", f"ProxyCommand={jump}"])
    result = ssh(host, "true", extra=extra)
    assert result.returncode == 255
    assert "Permission denied" in result.stderr


def relay(destination: str) -> subprocess.CompletedProcess:
    """Ask the bastion, as the operator, to open a TCP channel (what ProxyJump does), on a connection of
    its own (not the shared master connection, whose errors read differently)."""
    return subprocess.run(
        ["ssh", "-F", str(LAB_DIR / "ssh_config"), "-o", "BatchMode=yes", "-o", "ControlPath=none",
         "-W", destination, BASTION],
        input="", capture_output=True, text=True, check=False, timeout=30,
    )


@pytest.mark.HARD
@pytest.mark.SEG
def test_the_bastion_relays_ssh_to_the_platform_hosts_and_nothing_else():
    """sshd on the bastion opens channels to the SSH port of the platform's hosts only: another port of
    the same host, or an address outside the platform, is refused by sshd itself (PermitOpen), whatever
    the firewalls would let through."""
    port = model.port(LAB, "ssh")
    target = next(spec for name, spec in sorted(LAB["hosts"].items()) if name != BASTION)
    allowed = relay(f"{target['overlay']}:{port}")
    assert allowed.stdout.startswith("SSH-2.0-"), allowed.stderr
    for destination in (f"{target['overlay']}:{port + 1}", f"192.0.2.1:{port}"):
        refused = relay(destination)
        assert refused.returncode == 255
        assert "administratively prohibited" in refused.stderr, (destination, refused.stderr)


@pytest.mark.HARD
@pytest.mark.parametrize("host", LAB_HOSTS)
def test_host_applied_the_baseline_and_reports_what_it_could_not(host):
    result = ssh(host, "cat /etc/ansible/facts.d/rempart_baseline.fact")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert "cis_7.1.1" in report["applied"] and "cis_5.2.4" in report["skipped"]
    assert report["host_allows"]["container"] == "docker"


@pytest.mark.HARD
def test_bastion_sshd_scores_no_failure_and_no_warning(lab_topology):
    bastion = next(name for name, spec in lab_topology["hosts"].items() if "bastion" in spec["functions"])
    result = audit.ssh_audit(str(lab_topology["hosts"][bastion]["public"]))
    assert result["fail"] == [] and result["warn"] == [], result
