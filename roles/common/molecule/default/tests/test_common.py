"""Behaviour of the common role, seen from outside the role."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import testinfra.utils.ansible_runner

from rempart import audit, scenario

testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(
    os.environ["MOLECULE_INVENTORY_FILE"]
).get_hosts("all")

SYNC_TIMEOUT_S = 90


def test_chronyd_runs(host):
    assert host.service("chrony").is_running
    assert host.service("chrony").is_enabled


def test_time_server_serves_its_network_and_client_does_not_listen(host):
    listening = host.socket("udp://0.0.0.0:123").is_listening
    assert listening == (host.backend.get_hostname() == "common-time")


def test_unattended_upgrades_security_origin_only(host):
    assert host.package("unattended-upgrades").is_installed
    periodic = host.run("apt-config dump APT::Periodic").stdout
    assert 'APT::Periodic::Unattended-Upgrade "1";' in periodic
    assert 'APT::Periodic::Update-Package-Lists "1";' in periodic
    # Ask unattended-upgrades itself which origins it would upgrade from.
    dry = host.run("unattended-upgrade --dry-run --debug 2>&1 | grep -m1 'Allowed origins are'")
    assert dry.rc == 0, dry.stdout
    allowed = dry.stdout.split("Allowed origins are:", 1)[1]
    assert "label=Debian-Security" in allowed
    assert allowed.count("origin=") == 1, allowed
    for timer in ("apt-daily.timer", "apt-daily-upgrade.timer"):
        assert host.service(timer).is_enabled


def test_apt_sources_are_deb822_only(host):
    legacy = host.file("/etc/apt/sources.list").content_string
    assert not [line for line in legacy.splitlines() if line.startswith("deb")], legacy
    sources = host.file("/etc/apt/sources.list.d/debian.sources").content_string
    assert "bookworm-security" in sources
    assert host.run("apt-get update -qq").rc == 0


def test_journald_is_persistent(host):
    marker = f"rempart-test-{time.time_ns()}"
    host.run(f"logger -t rempart-test {marker}")
    host.run("journalctl --flush")

    def persisted():
        return host.run(f"journalctl --file '/var/log/journal/*/*.journal' -t rempart-test -o cat").stdout

    assert marker in scenario.eventually(persisted, lambda out: marker in out, 20)
    usage = host.run("journalctl --disk-usage").stdout
    assert "take up" in usage


def test_timezone_and_locale(host):
    assert host.file("/etc/localtime").linked_to == "/usr/share/zoneinfo/Etc/UTC"
    assert host.run("date +%Z").stdout.strip() == "UTC"
    assert "en_US.utf8" in host.run("locale -a").stdout


def test_admin_tools_are_installed(host):
    for command in ("curl", "jq", "less", "lsof", "rsync", "tmux"):
        assert host.exists(command), command


def test_operators_and_admin_group(host):
    alice = host.user("alice")
    assert alice.exists
    assert "sysadmins" in alice.groups
    assert alice.password in ("!", "*", "!*")
    assert not host.user("mallory").exists
    assert host.run("visudo -c").rc == 0


def test_operator_logs_in_with_the_key_and_may_sudo(host):
    key = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "operator_ed25519"
    address = audit.container_address(host.backend.get_hostname())
    ssh = [
        "ssh", "-i", str(key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
        "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
        "-o", "ConnectTimeout=10", f"alice@{address}",
    ]
    login = subprocess.run([*ssh, "sudo", "-n", "id", "-u"], capture_output=True, text=True, check=False)
    assert login.returncode == 0, login.stderr
    assert login.stdout.strip() == "0"
    # Without the key there is no way in: no password, no other key.
    refused = subprocess.run(
        ["ssh", "-o", "BatchMode=yes", "-o", "PubkeyAuthentication=no", "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10", f"alice@{address}", "true"],
        capture_output=True, text=True, check=False,
    )
    assert refused.returncode == 255


def test_a_key_the_operator_list_no_longer_holds_is_removed_and_refused(host):
    """A rotated SSH key: prepare.yml gave alice a former key, as before a rotation; the role keeps
    exactly the listed keys, so the former key is gone from authorized_keys and logs in no more."""
    former = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "former_ed25519"
    authorized = host.file("/home/alice/.ssh/authorized_keys")
    assert former.with_suffix(".pub").read_text().split()[1] not in authorized.content_string
    address = audit.container_address(host.backend.get_hostname())
    refused = subprocess.run(
        ["ssh", "-i", str(former), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10", f"alice@{address}", "true"],
        capture_output=True, text=True, check=False,
    )
    assert refused.returncode == 255 and "Permission denied" in refused.stderr, refused.stderr
