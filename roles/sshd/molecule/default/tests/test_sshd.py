"""The SSH policy seen from outside: who gets in, with what, and what an external auditor scores."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import testinfra.utils.ansible_runner

from rempart import audit
from rempart import topology as model

testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(
    os.environ["MOLECULE_INVENTORY_FILE"]
).get_hosts("all")

KEYS = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
# The port of the ssh service, as the scenario's rempart_topology has it (the lab topology's).
SSH_PORT = model.port(model.load(model.INVENTORIES / "lab" / model.TOPOLOGY_FILE), "ssh")
# Targets of the HARD requirement, measured by ssh-audit (PyPI release, not Debian's).
SSH_AUDIT_MAX_FAIL = int(os.environ.get("SSH_AUDIT_MAX_FAIL", "0"))
SSH_AUDIT_MAX_WARN = int(os.environ.get("SSH_AUDIT_MAX_WARN", "0"))
BASE_OPTIONS = [
    "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
    "-o", "ConnectTimeout=10", "-o", "IdentitiesOnly=yes",
]


@pytest.fixture(scope="module")
def address(host) -> str:
    return audit.container_address(host.backend.get_hostname())


def login(address: str, user: str, key: str | None, *extra: str) -> subprocess.CompletedProcess:
    identity = ["-i", str(KEYS / f"{key}_ed25519")] if key else ["-o", "PubkeyAuthentication=no"]
    return subprocess.run(
        ["ssh", *BASE_OPTIONS, *identity, *extra, f"{user}@{address}", "id -un"],
        capture_output=True, text=True, check=False, timeout=30,
    )


def test_operator_logs_in_with_the_key_and_sees_the_banner(address):
    result = login(address, "alice", "alice")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "alice"
    assert "Authorised access only" in result.stderr


def test_root_is_refused_even_with_an_authorised_key(address):
    result = login(address, "root", "alice")
    assert result.returncode == 255
    assert "Permission denied" in result.stderr


def test_account_outside_the_allowed_groups_is_refused(address):
    result = login(address, "outsider", "outsider")
    assert result.returncode == 255
    assert "Permission denied" in result.stderr


def test_passwords_are_not_even_offered(address):
    result = login(address, "alice", None, "-o", "PreferredAuthentications=password,keyboard-interactive")
    assert result.returncode == 255
    assert "Permission denied (publickey)" in result.stderr


def test_dropins_cannot_weaken_the_policy(host):
    assert host.file("/etc/ssh/sshd_config.d/50-cloud-init.conf").exists
    for conn in ("user=alice,host=x,addr=10.0.0.1", "user=root,host=x,addr=10.0.0.1"):
        effective = host.run(f"sshd -T -C {conn}").stdout
        assert "passwordauthentication no" in effective
        assert "permitrootlogin no" in effective


def test_only_ed25519_and_strong_rsa_host_keys(host):
    keys = sorted(f for f in host.file("/etc/ssh").listdir() if f.startswith("ssh_host_") and f.endswith("_key"))
    assert keys == ["ssh_host_ed25519_key", "ssh_host_rsa_key"]
    bits = int(host.run("ssh-keygen -lf /etc/ssh/ssh_host_rsa_key.pub").stdout.split()[0])
    assert bits >= 3072


def test_ssh_audit_finds_no_failure_and_no_warning(address):
    result = audit.ssh_audit(address)
    assert len(result["fail"]) <= SSH_AUDIT_MAX_FAIL, result
    assert len(result["warn"]) <= SSH_AUDIT_MAX_WARN, result


def test_a_run_that_would_lock_itself_out_stops_before_any_change(host, address, tmp_path):
    """Over SSH as alice, with a policy that would no longer let alice in: the role refuses."""
    before = host.file("/etc/ssh/sshd_config").sha256sum
    (tmp_path / "inventory.ini").write_text(
        f"target ansible_host={address} ansible_user=alice "
        f"ansible_ssh_private_key_file={KEYS / 'alice_ed25519'} "
        "ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes'\n"
    )
    (tmp_path / "play.yml").write_text(
        "- hosts: target\n  gather_facts: false\n  vars:\n    sshd_allow_groups: [wheel]\n"
        f"    sshd_port: {SSH_PORT}\n  roles: [sshd]\n"
    )
    bin_dir = Path(sys.executable).parent
    result = subprocess.run(
        [str(bin_dir / "ansible-playbook"), "-i", str(tmp_path / "inventory.ini"), str(tmp_path / "play.yml")],
        capture_output=True, text=True, check=False, timeout=120,
        env={**os.environ, "ANSIBLE_ROLES_PATH": str(Path(__file__).resolve().parents[4]), "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"},
    )
    output = " ".join((result.stderr + result.stdout).split())
    assert result.returncode != 0
    assert "as 'alice', who is in none of sshd_allow_groups (wheel)" in output, output[-2000:]
    assert host.file("/etc/ssh/sshd_config").sha256sum == before
