"""PostgreSQL under Patroni, seen from its clients and from the other server (HA, ENC).

Servers, clients, ports and databases come from the topology; the passwords are the lab's vault
(.lab/secrets.yml), handed to psql on its standard input, never on a command line.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import shlex
import subprocess
import time
import uuid

import pytest
import yaml
from conftest import LAB_DIR, REPO, central_logs_take_up, playbook, ssh

from rempart import topology as model

pytestmark = pytest.mark.HA
# The roles these tests cover (the docs' role pages name this file).
ROLES = ("patroni", "postgresql_client")

TOPOLOGY = model.check(model.INVENTORIES / "lab" / model.TOPOLOGY_FILE)
SERVERS = model.members(TOPOLOGY, "db")
CLIENTS = sorted(set(model.clients(TOPOLOGY, SERVERS[0], "postgresql")) - set(SERVERS))
DATABASE = sorted(TOPOLOGY["databases"])[0]
PKI = TOPOLOGY["wiring"]["pki_dir"]
PG_PORT = model.port(TOPOLOGY, "postgresql")
API_PORT = model.port(TOPOLOGY, "patroni-api")
TLS = f"--cacert {PKI}/ca.crt --cert {PKI}/host.crt --key {PKI}/private/host.key"
# The leader lock's time to live the role keeps (its default).
TTL = yaml.safe_load((REPO / "roles/patroni/defaults/main.yml").read_text(encoding="utf-8"))["patroni_ttl"]


def overlay(host: str) -> str:
    return TOPOLOGY["hosts"][host]["overlay"]


def secret(name: str) -> str:
    return yaml.safe_load((LAB_DIR / "secrets.yml").read_text(encoding="utf-8"))[name]


def api(host: str, path: str, options: str = TLS, method: str = "GET") -> subprocess.CompletedProcess:
    return ssh(host, f"sudo curl -sS --http1.1 --max-time 5 -X {method} -o /dev/stdout -w '\\n%{{http_code}}' {options} "
                     f"https://{overlay(host)}:{API_PORT}/{path}")


def cluster() -> dict:
    result = api(SERVERS[0], "cluster")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.rsplit("\n", 1)[0])


def primary() -> str:
    return next(m["name"] for m in cluster()["members"] if m["role"] == "leader")


def standby() -> str:
    return next(m["name"] for m in cluster()["members"] if m["role"] != "leader")


def local_sql(host: str, sql: str, database: str = "postgres") -> str:
    result = ssh(host, f"cd / && sudo -u postgres psql -XAtq -d {database} -c {shlex.quote(sql)}")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def client_sql(host: str, sql: str, connection: str = f"service={DATABASE}", password: str | None = None) -> subprocess.CompletedProcess:
    """psql on a client host as the database's role; the password goes through standard input."""
    command = ("read -r PGPASSWORD; export PGPASSWORD; exec psql -XAtq "
               f"{shlex.quote(connection)} -c {shlex.quote(sql)}")
    return subprocess.run(
        ["ssh", "-F", str(LAB_DIR / "ssh_config"), "-o", "BatchMode=yes", host, f"sudo sh -c {shlex.quote(command)}"],
        input=(password if password is not None else secret(f"vault_postgresql_{DATABASE}_password")) + "\n",
        capture_output=True, text=True, check=False, timeout=30,
    )


def test_one_primary_and_one_synchronous_standby_the_topology_s_servers():
    members = cluster()["members"]
    assert sorted(m["name"] for m in members) == SERVERS
    assert sorted(m["role"] for m in members) == ["leader", "sync_standby"]
    assert all(m["state"] in ("running", "streaming") for m in members), members


@pytest.mark.ENC
def test_replication_is_synchronous_and_over_tls():
    rows = local_sql(primary(), "select r.application_name, r.sync_state, s.ssl, s.version from pg_stat_replication r "
                                "join pg_stat_ssl s using (pid)")
    assert rows.split("|") == [standby(), "sync", "t", "TLSv1.3"]


def test_a_commit_through_the_client_service_is_on_the_standby():
    marker = uuid.uuid4().hex
    table = f"rempart_test_{marker[:8]}"
    result = client_sql(CLIENTS[0], f"create table {table} (v text); insert into {table} values ('{marker}')")
    assert result.returncode == 0, result.stderr
    try:
        seen = ssh(standby(), f"cd / && for i in 1 2 3 4 5; do sudo -u postgres psql -XAtq -d {DATABASE} "
                              f"-c 'select v from {table}' 2>/dev/null | grep -qx {marker} && exit 0; sleep 1; done; exit 1")
        assert seen.returncode == 0, "the row committed on the primary is not on the standby"
    finally:
        client_sql(CLIENTS[0], f"drop table if exists {table}")


@pytest.mark.parametrize("client", CLIENTS)
def test_the_client_service_finds_the_primary_whichever_server_is_listed_first(client):
    for order in (SERVERS, SERVERS[::-1]):
        hosts = ",".join(overlay(h) for h in order)
        result = client_sql(client, "select pg_is_in_recovery(), host(inet_server_addr())", f"service={DATABASE} host={hosts}")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"f|{overlay(primary())}"


@pytest.mark.ENC
@pytest.mark.parametrize(("case", "connection", "password", "error"), [
    ("without TLS", "sslmode=disable", None, "no encryption"),
    ("without a client certificate", "sslcert=/nonexistent sslkey=/nonexistent", None, "certificate"),
    ("with a wrong password", "", "not-the-password-at-all", "password authentication failed"),
])
def test_postgresql_refuses_a_client_without_tls_certificate_or_password(case, connection, password, error):
    result = client_sql(CLIENTS[0], "select 1", f"service={DATABASE} host={overlay(primary())} {connection}".strip(), password)
    assert result.returncode != 0, f"a connection {case} was accepted"
    assert error in result.stderr, result.stderr


@pytest.mark.SEG
def test_postgresql_refuses_the_application_s_role_from_a_host_the_flow_matrix_does_not_allow():
    """The standby may replicate from the primary, but it is not a client of the application's database."""
    result = client_sql(standby(), "select 1", f"host={overlay(primary())} port={PG_PORT} dbname={DATABASE} user={DATABASE} "
                                               f"sslmode=verify-full sslrootcert={PKI}/ca.crt sslcert={PKI}/host.crt "
                                               f"sslkey={PKI}/private/host.key")
    assert result.returncode != 0
    assert "pg_hba.conf rejects connection" in result.stderr, result.stderr


@pytest.mark.ENC
def test_the_rest_api_asks_for_a_certificate_and_its_changes_for_the_account():
    without = api(SERVERS[0], "cluster", options=f"--cacert {PKI}/ca.crt")
    assert without.returncode != 0, "the REST API answered a client without a certificate"
    change = api(SERVERS[0], "switchover", method="POST")
    assert change.returncode == 0, change.stderr
    assert change.stdout.rsplit("\n", 1)[1] == "401", change.stdout


def serials(host: str) -> dict[str, str]:
    """The serial of the certificate on disk, and of the ones PostgreSQL and the REST API present."""
    address = overlay(host)
    client = f"-CAfile {PKI}/ca.crt -cert {PKI}/host.crt -key {PKI}/private/host.key"
    found = {}
    for name, command in (("file", f"sudo openssl x509 -in {PKI}/host.crt -noout -serial"),
                          ("postgresql", f"echo | sudo openssl s_client -starttls postgres -connect {address}:{PG_PORT} 2>/dev/null"
                                         " | openssl x509 -noout -serial"),
                          ("rest_api", f"echo | sudo openssl s_client {client} -connect {address}:{API_PORT} 2>/dev/null"
                                       " | openssl x509 -noout -serial")):
        result = ssh(host, command)
        found[name] = result.stdout.strip() if result.returncode == 0 else f"no answer: {result.stderr.strip()[-200:]}"
    return found


@pytest.mark.ENC
@pytest.mark.AUDIT
def test_a_renewed_certificate_is_served_after_the_data_tier_runs_without_a_restart():
    """On the primary: Patroni's reload for a new certificate outlasts its lock's time to live, so
    the role lets the lock live longer meanwhile; the primary must stay primary, on its timeline."""
    host = primary()
    timeline = next(m["timeline"] for m in cluster()["members"] if m["name"] == host)
    started = local_sql(host, "select pg_postmaster_start_time()")
    before = serials(host)["file"]
    # A renewal window longer than any validity: the certificate on the host is due. Forced, so not the window
    # the monitoring keeps (docs/pki.md): the run skips the certificates' collector.
    renewed = playbook("playbooks/pki.yml", "--limit", host, "-e", "pki_renew_days=3650", "--skip-tags", "MON")
    assert renewed.returncode == 0, renewed.stdout[-3000:]
    new = serials(host)["file"]
    assert new != before
    # A dry run reloads nothing but reports the reload a real run would make, in both roles (AUDIT).
    dry = playbook("playbooks/data.yml", "--check")
    assert dry.returncode == 0, dry.stdout[-3000:]
    pending = [task for task in dry.stdout.split("TASK [")[1:]
               if "a renewed certificate waits for its reload" in task.split("\n", 1)[0] and f"changed: [{host}]" in task]
    assert len(pending) == 2, f"the dry run does not report Patroni's and pgBackRest's reloads: {dry.stdout[-3000:]}"
    assert serials(host)["postgresql"] == before, "the dry run reloaded PostgreSQL"
    data = playbook("playbooks/data.yml")
    assert data.returncode == 0, data.stdout[-3000:]
    # The reload is taken up by Patroni's next loop: what the two serve is looked at a few times.
    for _ in range(10):
        served = serials(host)
        if served["postgresql"] == served["rest_api"] == new:
            break
        time.sleep(1)
    assert served["postgresql"] == served["rest_api"] == new, served
    assert local_sql(host, "select pg_postmaster_start_time()") == started, "PostgreSQL restarted for a renewal"
    after = {m["name"]: m for m in cluster()["members"]}
    assert after[host]["role"] == "leader" and after[host]["timeline"] == timeline, f"a renewal caused a failover: {after}"
    config = json.loads(api(host, "config").stdout.rsplit("\n", 1)[0])
    assert config["ttl"] == TTL, f"the lock's time to live was left at {config['ttl']}"
    central_logs_take_up(host)


def test_a_parameter_read_at_start_only_restarts_each_member_in_turn_without_a_failover():
    """max_locks_per_transaction is read at start only: the role restarts the standby, then the
    primary, which keeps its leader lock (same primary, same timeline); then it is put back."""
    before = {m["name"]: m for m in cluster()["members"]}
    leader = next(name for name, m in before.items() if m["role"] == "leader")
    started = {host: local_sql(host, "select pg_postmaster_start_time()") for host in SERVERS}
    wanted = int(local_sql(leader, "show max_locks_per_transaction")) + 32
    try:
        changed = playbook("playbooks/data.yml", "-e", json.dumps({"patroni_parameters": {"max_locks_per_transaction": wanted}}))
        assert changed.returncode == 0, changed.stdout[-3000:]
        after = {m["name"]: m for m in cluster()["members"]}
        assert {h: local_sql(h, "show max_locks_per_transaction") for h in SERVERS} == dict.fromkeys(SERVERS, str(wanted))
        assert all(local_sql(h, "select pg_postmaster_start_time()") != started[h] for h in SERVERS), "a member did not restart"
        assert not any(m.get("pending_restart") for m in after.values()), after
        assert after[leader]["role"] == "leader", "the primary changed: a restart became a failover"
        assert after[leader]["timeline"] == before[leader]["timeline"]
    finally:
        back = playbook("playbooks/data.yml")
    assert back.returncode == 0, back.stdout[-3000:]
    assert local_sql(leader, "show max_locks_per_transaction") == str(wanted - 32)


def scram_holds(verifier: str, password: str) -> bool:
    """Whether a SCRAM-SHA-256 verifier PostgreSQL keeps (pg_authid.rolpassword) checks ``password`` (RFC 5802)."""
    iterations, salt, stored = re.fullmatch(r"SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):.+", verifier).groups()
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    return hmac.compare_digest(hashlib.sha256(client_key).digest(), base64.b64decode(stored))


def member_login(source: str, user: str, password: str, options: str, sql: str) -> subprocess.CompletedProcess:
    """psql from ``source`` (a member, with its host certificate) to the primary as ``user``; the password on standard input."""
    connection = (f"host={overlay(primary())} port={PG_PORT} user={user} sslmode=verify-full sslrootcert={PKI}/ca.crt "
                  f"sslcert={PKI}/host.crt sslkey={PKI}/private/host.key {options}")
    command = f"read -r PGPASSWORD; export PGPASSWORD; exec psql -XAtq {shlex.quote(connection)} -c {shlex.quote(sql)}"
    return subprocess.run(
        ["ssh", "-F", str(LAB_DIR / "ssh_config"), "-o", "BatchMode=yes", source, f"sudo sh -c {shlex.quote(command)}"],
        input=password + "\n", capture_output=True, text=True, check=False, timeout=30,
    )


@pytest.mark.KEY
def test_new_passwords_for_patroni_s_accounts_in_the_vault_are_taken_up_by_a_run_without_losing_a_commit():
    """A rotation of the superuser's, the replication's and the rewind account's passwords: new values in the lab's
    vault, then the data tier. PostgreSQL keeps the new ones (set on the primary before any member restarts with
    them), the former are refused, the standby streams again, and a row committed before is on both servers."""
    defaults = yaml.safe_load((REPO / "roles/patroni/defaults/main.yml").read_text(encoding="utf-8"))
    accounts = {kind: defaults[f"patroni_{kind}_name"] for kind in ("superuser", "replication", "rewind")}
    vault = LAB_DIR / "secrets.yml"
    former = yaml.safe_load(vault.read_text(encoding="utf-8"))
    new = {f"vault_postgresql_{kind}_password": secrets.token_urlsafe(24).replace("-", "x").replace("_", "y") for kind in accounts}
    marker = uuid.uuid4().hex
    table = f"rempart_rotation_{marker[:8]}"
    written = client_sql(CLIENTS[0], f"create table {table} (v text); insert into {table} values ('{marker}')")
    assert written.returncode == 0, written.stderr
    try:
        # Each entry's line changed in place: the file stays as `make lab` writes it (a second one changes nothing).
        text = vault.read_text(encoding="utf-8")
        for key, value in new.items():
            text = re.sub(rf"(?m)^{key}: .*$", f"{key}: {value}", text)
        vault.write_text(text, encoding="utf-8")
        assert {key: yaml.safe_load(text)[key] for key in new} == new
        data = playbook("playbooks/data.yml")
        assert data.returncode == 0, data.stdout[-3000:]
        verifiers = dict(line.split("|", 1) for line in local_sql(
            primary(), "select rolname, rolpassword from pg_authid where rolname in ("
                       + ", ".join(f"'{user}'" for user in accounts.values()) + ")").splitlines())
        for kind, user in accounts.items():
            assert scram_holds(verifiers[user], new[f"vault_postgresql_{kind}_password"]), f"{user} kept its former password"
        roles = sorted(m["role"] for m in cluster()["members"])
        assert roles == ["leader", "sync_standby"], cluster()
        # As the standby's Patroni uses them: a replication connection, and pg_rewind's to the postgres database.
        for kind, options, sql in (("replication", "dbname=replication replication=true", "IDENTIFY_SYSTEM"),
                                   ("rewind", "dbname=postgres", "select 1")):
            user, key = accounts[kind], f"vault_postgresql_{kind}_password"
            assert member_login(standby(), user, new[key], options, sql).returncode == 0, f"{user} cannot log in with the new password"
            refused = member_login(standby(), user, former[key], options, sql)
            assert refused.returncode != 0 and "password authentication failed" in refused.stderr, refused.stderr
        for host in SERVERS:
            assert local_sql(host, f"select v from {table}", DATABASE) == marker, f"the row committed before is not on {host}"
    finally:
        client_sql(CLIENTS[0], f"drop table if exists {table}")
