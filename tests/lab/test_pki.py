"""Every host's certificate from the environment's CA, seen from outside (ENC).

Keys are made on the hosts and stay there; the controller only signs. A TLS connection over the mesh,
between two hosts a flow of the matrix joins, authenticates both ends with these certificates.
Renewal and offline signing (the path of real environments) are run for real on one host.
"""

from __future__ import annotations

import ipaddress
import subprocess
from datetime import datetime, timedelta, timezone

import pytest
import yaml
from conftest import LAB_DIR, REPO, central_logs_take_up, playbook, ssh
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from rempart import topology as model

pytestmark = pytest.mark.ENC

TOPOLOGY = model.check(model.INVENTORIES / "lab" / model.TOPOLOGY_FILE)
HOSTS = sorted(TOPOLOGY["hosts"])
# The bastion: no service of it keeps a certificate loaded, so a renewal here leaves nothing for a
# later run to reload (on a database server, Patroni and pgBackRest would wait for the data tier's
# run, which tests/lab/test_patroni.py runs, and `make drift` would rightly report it).
HOST = model.members(TOPOLOGY, "bastion")[0]
PKI = TOPOLOGY["wiring"]["pki_dir"]


def lab_ca() -> x509.Certificate:
    return x509.load_pem_x509_certificate((LAB_DIR / "ca.crt").read_bytes())


def host_certificate(host: str) -> x509.Certificate:
    result = ssh(host, f"cat {PKI}/host.crt")
    assert result.returncode == 0, result.stderr
    return x509.load_pem_x509_certificate(result.stdout.encode())


def signed_by(certificate: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        ca.public_key().verify(certificate.signature, certificate.tbs_certificate_bytes,
                               ec.ECDSA(certificate.signature_hash_algorithm))
    except Exception:  # noqa: BLE001 - any failure means: not signed by this CA
        return False
    return certificate.issuer == ca.subject


@pytest.mark.parametrize("host", HOSTS)
def test_host_certificate_names_the_host_its_overlay_address_and_functions_and_comes_from_the_lab_ca(host):
    certificate = host_certificate(host)
    assert signed_by(certificate, lab_ca())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    # The overlay address is a DNS name too, for pgBackRest 2.45, which checks DNS names only; each
    # function is a name (app.rempart.internal: the WAF checks it speaks to an app server).
    functions = [f"{f}.{TOPOLOGY['wiring']['function_domain']}" for f in TOPOLOGY["hosts"][host]["functions"]]
    assert names.get_values_for_type(x509.DNSName) == [host, TOPOLOGY["hosts"][host]["overlay"], *functions]
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address(TOPOLOGY["hosts"][host]["overlay"])]
    usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usages) == {x509.ExtendedKeyUsageOID.SERVER_AUTH, x509.ExtendedKeyUsageOID.CLIENT_AUTH}
    modes = ssh(host, f"sudo stat -c '%n %U:%G %a' {PKI}/private {PKI}/private/host.key"
                      f" && sudo openssl x509 -in {PKI}/host.crt -noout -pubkey | cmp - <(sudo openssl pkey"
                      f" -in {PKI}/private/host.key -pubout) && echo same-key")
    assert modes.stdout.split("\n")[:3] == [
        f"{PKI}/private root:ssl-cert 710", f"{PKI}/private/host.key root:ssl-cert 640", "same-key"]


def test_no_host_key_is_on_the_controller():
    """The lab's directory holds the CA's key and the operators' SSH key, and no key of any host."""
    public_keys = {host_certificate(host).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo) for host in HOSTS[:2]}
    for path in [*LAB_DIR.rglob("*"), *(REPO / "inventories").rglob("*")]:
        if path.is_file() and b"PRIVATE KEY" in path.read_bytes()[:4096]:
            try:
                key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            except (ValueError, TypeError):
                continue
            assert key.public_key().public_bytes(serialization.Encoding.PEM,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo) not in public_keys, path


# Every TLS flow of the lab is served now; the PostgreSQL exporter (role postgres_exporter) is the listener the test
# may stop for a few seconds (nothing of the service depends on it) when no port is free.
def _exporter_unit(role: str) -> str:
    """The unit an exporter role gives role exporter (its import's vars)."""
    tasks = yaml.safe_load((REPO / "roles" / role / "tasks/main.yml").read_text(encoding="utf-8"))
    return next(task["vars"]["exporter_unit"] for task in tasks
                if task.get("ansible.builtin.import_role", {}).get("name") == "exporter")


PAUSABLE = ("postgres-exporter", _exporter_unit("postgres_exporter"))


def tls_pair() -> tuple[str, str, int, str | None]:
    """Two hosts a TLS flow of the matrix joins (client, server, port, a unit to stop while the port is used), the
    port free on the server, or held by PAUSABLE's unit."""
    for opening in model.openings(TOPOLOGY):
        service = TOPOLOGY["services"][opening.service]
        if not service.get("tls") or opening.proto != "tcp":
            continue
        for server in model.members(TOPOLOGY, opening.dst):
            clients = [h for h in model.members(TOPOLOGY, opening.src) if h != server]
            busy = ssh(server, f"ss -Htln 'sport = :{opening.ports[0]}'").stdout.strip()
            if clients and not busy:
                return clients[0], server, opening.ports[0], None
    for opening in model.openings(TOPOLOGY):
        if opening.service == PAUSABLE[0]:
            server = model.members(TOPOLOGY, opening.dst)[0]
            clients = [h for h in model.members(TOPOLOGY, opening.src) if h != server]
            if clients:
                return clients[0], server, opening.ports[0], PAUSABLE[1]
    pytest.fail("no TLS flow of the matrix between two lab hosts has a free port left for this test")


def test_two_hosts_authenticate_each_other_over_the_mesh_with_their_certificates():
    client, server, port, paused = tls_pair()
    address = TOPOLOGY["hosts"][server]["overlay"]
    pki = PKI
    if paused:
        assert ssh(server, f"sudo systemctl stop {paused}").returncode == 0
    try:
        serve = ssh(server, f"sudo timeout 20 openssl s_server -quiet -accept {address}:{port} -naccept 1"
                            f" -cert {pki}/host.crt -key {pki}/private/host.key -CAfile {pki}/ca.crt -Verify 1"
                            f" -verify_return_error >/dev/null 2>&1 & sleep 1; ss -Htln 'sport = :{port}'")
        assert serve.stdout.strip(), serve.stderr
        connect = ssh(client, f"echo | sudo openssl s_client -connect {address}:{port} -verify_hostname {server}"
                              f" -CAfile {pki}/ca.crt -verify_return_error -cert {pki}/host.crt -key {pki}/private/host.key 2>&1")
        assert "Verify return code: 0 (ok)" in connect.stdout, connect.stdout[-1500:]
    finally:
        if paused:
            ssh(server, f"sudo sh -c 'sleep 1; systemctl start {paused}'")


def certificates_tier(*options: str) -> subprocess.CompletedProcess:
    """The certificates tier on HOST. The tests force renewals with a window of their own: not the one the
    monitoring keeps (docs/pki.md), so such a run skips the certificates' collector."""
    forced = ("--skip-tags", "MON") if any(option.startswith("pki_renew_days=") for option in options) else ()
    return playbook("playbooks/pki.yml", "--limit", HOST, *options, *forced)


def test_a_certificate_within_its_renewal_period_is_issued_again_for_the_same_key():
    before = host_certificate(HOST)
    days = (before.not_valid_after_utc - before.not_valid_before_utc).days
    run = certificates_tier("-e", f"pki_renew_days={days + 1}")
    assert run.returncode == 0, run.stdout[-3000:]
    assert "within the renewal period" in run.stdout
    after = host_certificate(HOST)
    assert after.serial_number != before.serial_number
    assert after.public_key().public_numbers() == before.public_key().public_numbers()
    assert signed_by(after, lab_ca())
    # rsyslog reads its certificate at start only: the monitoring tier's run restarts it with the new one.
    logs = central_logs_take_up(HOST)
    restarted = [task for task in logs.stdout.split("TASK [")[1:] if task.startswith("rsyslog : Service | rsyslog enabled")]
    assert restarted and f"changed: [{HOST}]" in restarted[0], logs.stdout[-3000:]


def test_offline_signing_stops_with_the_request_then_installs_the_certificate_put_back(tmp_path):
    """Without the CA key on the controller: the run leaves the request and stops, saying what to sign;
    signed where the key lives (here, with the lab CA's key) and put back, the next run installs it."""
    before = host_certificate(HOST)
    days = (before.not_valid_after_utc - before.not_valid_before_utc).days
    # A renewal window longer than the validity: the certificate on the host is due.
    offline = ("-e", "pki_ca_private_key_file=", "-e", f"pki_exchange_dir={tmp_path}", "-e", f"pki_renew_days={days + 1}")
    stopped = certificates_tier(*offline)
    assert stopped.returncode != 0
    request = tmp_path / f"{HOST}-host.csr"
    assert request.is_file() and f"Sign {request}" in " ".join(stopped.stdout.split()), stopped.stdout[-3000:]
    csr = x509.load_pem_x509_csr(request.read_bytes())
    ca, ca_key = lab_ca(), serialization.load_pem_private_key((LAB_DIR / "ca.key").read_bytes(), password=None)
    now = datetime.now(timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(ca.subject).public_key(csr.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=4 * days)))
    for extension in csr.extensions:
        builder = builder.add_extension(extension.value, extension.critical)
    (tmp_path / f"{HOST}-host.crt").write_bytes(builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
    installed = certificates_tier(*offline)
    assert installed.returncode == 0, installed.stdout[-3000:]
    after = host_certificate(HOST)
    assert after.serial_number != before.serial_number and signed_by(after, ca)
    assert after.public_key().public_numbers() == before.public_key().public_numbers()
    central_logs_take_up(HOST)
