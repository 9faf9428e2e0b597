"""Backups of the data tier (DR, ENC, KEY): pgBackRest's repository on the backup repository host,
encrypted, reached over TLS only, its passphrase in memory only; archiving that waits while the
repository is sealed and catches up after playbooks/unlock.yml; restores that give back the data.

Hosts, ports and folders come from the topology; the passphrase is the lab's vault
(.lab/secrets.yml), handed to grep on its standard input, never on a command line.
"""

from __future__ import annotations

import json
import shlex
import time
import subprocess
from datetime import datetime, timedelta, timezone

import pytest
import yaml
from conftest import LAB_DIR, REPO, ssh
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from rempart import collectors, drill
from rempart import topology as model

pytestmark = pytest.mark.DR
# The roles these tests cover (the docs' role pages name this file).
ROLES = ("pgbackrest",)

TOPOLOGY = model.check(model.INVENTORIES / "lab" / model.TOPOLOGY_FILE)
SERVERS = model.members(TOPOLOGY, "db")
REPOSITORY = model.members(TOPOLOGY, "backup_repository")[0]
PKI = TOPOLOGY["wiring"]["pki_dir"]
PORT = model.port(TOPOLOGY, "pgbackrest")
# Where the role writes the state for monitoring: the topology's directory for the node exporter.
METRICS = TOPOLOGY["wiring"]["metrics_textfile_dir"] + "/rempart_pgbackrest.prom"
METRICS_SCRIPT = collectors.names(
    yaml.safe_load((REPO / "roles/pgbackrest/vars/main.yml").read_text(encoding="utf-8"))["__pgbackrest_metrics_collector"])["script"]


def overlay(host: str) -> str:
    return TOPOLOGY["hosts"][host]["overlay"]


def pgbackrest(*args: str, host: str = REPOSITORY, timeout: int = 120):
    return ssh(host, "sudo runuser -u pgbackrest -- pgbackrest " + shlex.join(args), timeout=timeout)


def info() -> dict:
    result = pgbackrest("--output=json", "info")
    assert result.returncode == 0, result.stderr
    stanzas = json.loads(result.stdout)
    assert len(stanzas) == 1, f"one stanza expected, found {[s['name'] for s in stanzas]}"
    return stanzas[0]


def metrics(host: str) -> dict[str, float]:
    result = ssh(host, f"cat {METRICS}")
    assert result.returncode == 0, result.stderr
    found = {}
    for line in result.stdout.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


def test_the_repository_holds_a_full_backup_and_a_continuous_archive():
    stanza = info()
    assert stanza["status"]["code"] == 0, stanza["status"]
    assert any(b["type"] == "full" and not b.get("error") for b in stanza["backup"])
    assert stanza["archive"] and stanza["archive"][0]["min"] and stanza["archive"][0]["max"]
    # check: a WAL switch on the primary, then the segment found in the repository.
    result = pgbackrest(f"--stanza={stanza['name']}", "check")
    assert result.returncode == 0, result.stderr


@pytest.mark.ENC
def test_the_repository_is_encrypted_on_disk():
    stanza = info()["name"]
    # The repository's folder, as pgBackRest's configuration on the host gives it.
    result = ssh(REPOSITORY, "sudo sh -c " + shlex.quote(
        "cd \"$(sed -n 's/^repo1-path=//p' /etc/pgbackrest/pgbackrest.conf)\" && "
        f"for f in backup/{stanza}/backup.info archive/{stanza}/archive.info "
        f"$(find archive/{stanza} -name '0*' -type f | head -1) $(find backup/{stanza} -path '*/pg_data/*' -type f | head -1); "
        "do printf '%s ' $f; head -c 8 $f | od -An -c | tr -d ' \\n'; echo; done"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # The two catalogues, an archived WAL segment and a file of a backup.
    assert len(lines) == 4, result.stdout
    for line in lines:
        # OpenSSL's salted format: what pgBackRest's AES-256-CBC writes; a plain file starts otherwise.
        assert line.split()[1] == "Salted__", line


def files_holding(host: str, command: str, text: str) -> list[str]:
    """The files ``command`` (a grep -f -) lists on ``host``, ``text`` given on its standard input."""
    result = subprocess.run(["ssh", "-F", str(LAB_DIR / "ssh_config"), "-o", "BatchMode=yes", host, command],
                            input=text + "\n", capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    return sorted(result.stdout.split())


def throwaway_certificate(common_name: str, lab_ca: bool) -> tuple[bytes, bytes]:
    """A key and a certificate for ``common_name``, signed by the lab's CA or by a CA of its own."""
    key = ec.generate_private_key(ec.SECP256R1())
    if lab_ca:
        issuer_cert = x509.load_pem_x509_certificate((LAB_DIR / "ca.crt").read_bytes())
        issuer_key = serialization.load_pem_private_key((LAB_DIR / "ca.key").read_bytes(), password=None)
        issuer = issuer_cert.subject
    else:
        issuer_key, issuer = key, x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Another CA")])
    now = datetime.now(timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
                   .issuer_name(issuer).public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(hours=1))
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                   .sign(issuer_key, hashes.SHA256()))
    return (key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
            certificate.public_bytes(serialization.Encoding.PEM))


@pytest.mark.KEY
def test_the_passphrase_is_in_memory_on_the_repository_host_only():
    passphrase = yaml.safe_load((LAB_DIR / "secrets.yml").read_text(encoding="utf-8"))["vault_pgbackrest_cipher_pass"]
    for host in [REPOSITORY, *SERVERS]:
        # Every file on the host's disks that holds it (grep reads the passphrase on its standard input).
        found = files_holding(host, "sudo grep -rlF -f - /etc /var /root /home /usr/local /opt 2>/dev/null; true", passphrase)
        assert found == [], f"the passphrase is on the disk of {host}: {found}"
        in_memory = files_holding(host, "sudo grep -rlF -f - /run 2>/dev/null; true", passphrase)
        if host == REPOSITORY:
            in_memory_on_repository = in_memory
        assert len(in_memory) == (1 if host == REPOSITORY else 0), (host, in_memory)
    where = ssh(REPOSITORY, f"sudo findmnt -n -o FSTYPE -T {in_memory_on_repository[0]}")
    assert where.stdout.strip() == "tmpfs", f"{in_memory_on_repository[0]} is on {where.stdout.strip()}, not in memory"


@pytest.mark.ENC
@pytest.mark.parametrize(("case", "common_name", "lab_ca", "refusal"), [
    ("a certificate of another CA", SERVERS[0], False, "unknown ca"),
    ("a certificate of the lab's CA for a host the repository does not serve", "intruder", True, "access denied"),
])
def test_the_repository_s_tls_server_refuses_a_client_it_does_not_know(case, common_name, lab_ca, refusal):
    """pgBackRest on a database server, with its own configuration but another certificate, asks
    the repository for its state: refused (the same command with the host's certificate answers)."""
    client, stanza = SERVERS[0], info()["name"]
    key, certificate = throwaway_certificate(common_name, lab_ca)
    folder = "/run/rempart-test-pgbackrest"
    # pgBackRest reads a key owned by root or by its account; the files go away afterwards.
    put = ("sudo install -d -m 0750 -g postgres {f} && sudo tee {f}/client.crt >/dev/null && "
           "sudo chown root:postgres {f}/client.crt && sudo chmod 0640 {f}/client.crt").format(f=folder)
    for name, content, command in (("crt", certificate, put), ("key", key, put.replace("client.crt", "client.key"))):
        written = subprocess.run(["ssh", "-F", str(LAB_DIR / "ssh_config"), "-o", "BatchMode=yes", client, command],
                                 input=content, capture_output=True, check=False, timeout=30)
        assert written.returncode == 0, written.stderr
    try:
        asked = ssh(client, f"sudo runuser -u postgres -- pgbackrest --repo1-host-cert-file={folder}/client.crt "
                            f"--repo1-host-key-file={folder}/client.key --stanza={stanza} --output=json info", timeout=60)
    finally:
        ssh(client, f"sudo rm -rf {folder}")
    answer = json.loads(asked.stdout)
    assert answer and answer[0]["status"]["code"] != 0, f"{case}: the repository answered: {asked.stdout}"
    assert refusal in json.dumps(answer).lower(), f"{case}: {asked.stdout}"
    known = ssh(client, f"sudo runuser -u postgres -- pgbackrest --stanza={stanza} --output=json info", timeout=60)
    assert json.loads(known.stdout)[0]["status"]["code"] == 0, known.stdout


def test_a_scheduled_backup_runs_in_its_unit_and_the_state_for_monitoring_follows():
    before = info()
    result = ssh(REPOSITORY, "sudo systemctl start pgbackrest-backup@diff.service && systemctl is-active pgbackrest-backup@diff.service; "
                             "systemctl show -p Result --value pgbackrest-backup@diff.service", timeout=300)
    assert result.stdout.split()[-1] == "success", result.stdout + result.stderr
    after = info()
    assert len(after["backup"]) == len(before["backup"]) + 1
    assert after["backup"][-1]["type"] == "diff"
    timers = ssh(REPOSITORY, "systemctl is-enabled pgbackrest-backup@full.timer pgbackrest-backup@diff.timer")
    assert timers.stdout.split() == ["enabled", "enabled"], timers.stdout
    state = metrics(REPOSITORY)
    stanza = after["name"]
    assert state[f'rempart_backup_repository_sealed{{stanza="{stanza}"}}'] == 0
    assert state[f'rempart_backup_last_success_timestamp_seconds{{stanza="{stanza}",type="diff"}}'] == after["backup"][-1]["timestamp"]["stop"]


def test_each_database_server_reports_its_archiver():
    for host in SERVERS:
        # The state as the host sees it now, not as its timer last wrote it: an earlier test may have
        # restarted PostgreSQL here within the last minute.
        for _ in range(10):
            assert ssh(host, f"sudo {METRICS_SCRIPT}").returncode == 0
            state = metrics(host)
            if any(name.startswith("rempart_wal_archive_up") and value == 1 for name, value in state.items()):
                break
            time.sleep(3)
        assert any(name.startswith("rempart_wal_archive_up") and value == 1 for name, value in state.items()), (host, state)
        assert any(name.startswith("rempart_wal_archive_waiting") for name in state), (host, state)


@pytest.mark.KEY
def test_after_a_restart_the_repository_is_sealed_until_unlock_and_the_archive_catches_up():
    result = drill.drill_sealed()
    print(f"sealed: {json.dumps(result)}")
    assert result["sealed_after_restart"], "the repository answered after a restart, before any unlock"
    assert result["archive_failures_while_sealed"] > 0
    assert result["segments_waiting_while_sealed"] > 0
    assert result["unsealed_after"]
    assert result["segments_waiting_after"] == 0


def test_the_restore_drill_gives_back_the_latest_state_and_a_point_in_time():
    result = drill.drill_restore()
    print(f"restore: {json.dumps(result)}")
    assert result["rows_as_expected"]
