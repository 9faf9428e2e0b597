"""The data tier's scenario seen from outside: etcd's three members healthy, one PostgreSQL primary
and its synchronous standby replicating over TLS, a client that writes through its libpq service
to whichever server is primary (HA, ENC), and an encrypted backup repository that archiving reaches (DR); the app server behind the two WAFs and
their floating address (WAF)."""

from __future__ import annotations

import base64
import http.client
import json
import os
import shlex
import ssl
import subprocess

import pytest
import yaml

from rempart import scenario
from rempart import topology as model
from rempart.lab_client import multipart

pytestmark = pytest.mark.HA

testinfra_hosts, TOPOLOGY = scenario.load(__file__)
HOSTS = TOPOLOGY["hosts"]
SERVERS = sorted(h for h, spec in HOSTS.items() if "db" in spec["functions"])
MEMBERS = sorted(h for h, spec in HOSTS.items() if "etcd" in spec["functions"])
CLIENT = next(h for h, spec in HOSTS.items() if "app" in spec["functions"])
REPOSITORY = next(h for h, spec in HOSTS.items() if "backup_repository" in spec["functions"])
DATABASE = sorted(TOPOLOGY["databases"])[0]
LAB = model.load(model.INVENTORIES / "lab" / model.TOPOLOGY_FILE)
PKI = LAB["wiring"]["pki_dir"]
API, ETCD = model.port(LAB, "patroni-api"), model.port(LAB, "etcd-client")
TLS = f"--cacert {PKI}/ca.crt --cert {PKI}/host.crt --key {PKI}/private/host.key"
ETCD_TLS = f"--cacert={PKI}/ca.crt --cert={PKI}/host.crt --key={PKI}/private/host.key"


def node(name: str):
    return scenario.node(name, sudo=True)


def cluster() -> dict:
    server = SERVERS[0]
    out = node(server).check_output(f"curl -sS --http1.1 --max-time 5 {TLS} https://{HOSTS[server]['overlay']}:{API}/cluster")
    return json.loads(out)


def password() -> str:
    secrets = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "secrets.yml")
    with open(secrets, encoding="utf-8") as handle:
        return yaml.safe_load(handle)[DATABASE]


def test_every_etcd_member_is_healthy(host):
    if host.backend.get_hostname() != MEMBERS[0]:
        pytest.skip("asked once, of the first member")
    endpoints = ",".join(f"https://{HOSTS[m]['overlay']}:{ETCD}" for m in MEMBERS)
    out = host.check_output(f"sudo env ETCDCTL_API=3 etcdctl {ETCD_TLS} --endpoints={endpoints} endpoint health -w json")
    assert sorted(e["endpoint"] for e in json.loads(out) if e["health"]) == sorted(endpoints.split(","))


def test_one_primary_and_its_synchronous_standby_replicating_over_tls():
    members = cluster()["members"]
    assert sorted(m["name"] for m in members) == SERVERS
    assert sorted(m["role"] for m in members) == ["leader", "sync_standby"]
    leader = next(m["name"] for m in members if m["role"] == "leader")
    rows = node(leader).check_output("cd / && sudo -u postgres psql -XAtq -c "
                                     + shlex.quote("select r.sync_state, s.ssl from pg_stat_replication r join pg_stat_ssl s using (pid)"))
    assert rows == "sync|t"


def test_the_client_writes_through_its_service_to_the_primary():
    """The password goes through standard input (docker exec), never on a command line or into the
    journal, where an Ansible-run command would log it."""
    leader = next(m["name"] for m in cluster()["members"] if m["role"] == "leader")
    command = ("read -r PGPASSWORD; export PGPASSWORD; exec psql -XAtq service=" + DATABASE
               + " -c 'select pg_is_in_recovery(), host(inet_server_addr())'")
    result = subprocess.run(["docker", "exec", "-i", "-w", "/", CLIENT, "sh", "-c", command], input=password() + "\n",
                            capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"f|{HOSTS[leader]['overlay']}"


@pytest.mark.DR
def test_the_repository_holds_an_encrypted_full_backup_and_archiving_reaches_it():
    repository = node(REPOSITORY)
    stanza = json.loads(repository.check_output("cd / && sudo -u pgbackrest pgbackrest --output=json info"))[0]
    assert stanza["status"]["code"] == 0, stanza["status"]
    assert stanza["cipher"] == "aes-256-cbc"
    assert [b["type"] for b in stanza["backup"]] == ["full"]
    # A WAL switch on the primary, found in the repository through both TLS servers.
    repository.check_output(f"cd / && sudo -u pgbackrest pgbackrest --stanza={stanza['name']} check")


# --- the app tier (role app) on the database's client ----------------------------------------------

APP_DEFAULTS = yaml.safe_load(open(os.path.join(scenario.REPO, "roles/app/defaults/main.yml"), encoding="utf-8"))
APP_VARS = yaml.safe_load(open(os.path.join(scenario.REPO, "roles/app/vars/main.yml"), encoding="utf-8"))
APP_NAME = APP_DEFAULTS["app_name"]
APP_SOCKET = APP_VARS["__app_socket"].replace("{{ app_name }}", APP_NAME)
APP_URL = f"https://{HOSTS[CLIENT]['overlay']}:{model.port(LAB, 'app')}"


def https(*requests: dict) -> list[dict]:
    """Requests to the app from its own host, with the host's certificate (rempart/lab_client.py)."""
    code = open(os.path.join(scenario.REPO, "rempart/lab_client.py"), encoding="utf-8").read()
    lines = [json.dumps({"mode": "requests"})] + [json.dumps(r) for r in requests]
    result = subprocess.run(["docker", "exec", "-i", CLIENT, "python3", "-c", code, f"{PKI}/ca.crt", f"{PKI}/host.crt",
                             f"{PKI}/private/host.key"], input="\n".join(lines) + "\n", capture_output=True, text=True,
                            check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def _secrets() -> dict:
    with open(os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "secrets.yml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@pytest.mark.ENC
@pytest.mark.KEY
def test_the_app_stores_documents_encrypted_and_is_sealed_after_a_restart():
    marker = b"molecule-plaintext-" + os.urandom(4).hex().encode()
    body, kind = multipart({"procedure": next(iter(APP_DEFAULTS["app_eservice_procedures"])), "full_name": "M", "email": "m@example.org"},
                           b"%PDF-1.4\n" + marker * 20, "d.pdf")
    ready, upload = https({"method": "GET", "url": APP_URL + "/readyz"},
                          {"method": "POST", "url": APP_URL + "/submissions", "body_b64": base64.b64encode(body).decode(),
                           "headers": {"Content-Type": kind, "Accept": "application/json"}})
    assert ready["status"] == 200, base64.b64decode(ready.get("body_b64", "")).decode()
    assert upload["status"] == 201, base64.b64decode(upload.get("body_b64", "")).decode()
    document = json.loads(base64.b64decode(upload["body_b64"]))["document_id"]
    leader = next(m["name"] for m in cluster()["members"] if m["role"] == "leader")
    stored = node(leader).check_output("cd / && sudo -u postgres psql -XAtq -d " + DATABASE + " -c "
                                       + shlex.quote(f"select encode(ciphertext, 'hex') from documents where id = '{document}'"))
    assert stored and marker.hex() not in stored
    # A restart seals it; the keys delivered by root over the key holder's socket unseal it.
    node(CLIENT).check_output(f"systemctl restart {APP_NAME}")
    for _ in range(50):
        if node(CLIENT).run(f"test -S {APP_SOCKET}").rc == 0:
            break
        subprocess.run(["sleep", "0.2"], check=True)
    sealed = https({"method": "GET", "url": APP_URL + "/readyz"})[0]
    assert sealed["status"] == 503 and json.loads(base64.b64decode(sealed["body_b64"]))["sealed"] is True
    given = _secrets()
    put = subprocess.run(["docker", "exec", "-i", CLIENT, "/usr/local/sbin/rempart-app-keys", APP_SOCKET, "put"],
                         input=json.dumps({"kek": given["kek"], "database_password": given[DATABASE]}),
                         capture_output=True, text=True, check=False, timeout=30)
    assert put.returncode == 0 and json.loads(put.stdout)["changed"] is True, put.stdout + put.stderr
    assert https({"method": "GET", "url": APP_URL + "/readyz"})[0]["status"] == 200
    exposure = node(CLIENT).check_output(f"systemd-analyze security --no-pager {APP_NAME}.service | tail -n 1")
    assert float(exposure.split(":")[-1].split()[0]) <= float(APP_DEFAULTS["app_exposure_max"]), exposure


def test_the_wafs_share_one_address_and_serve_the_app_over_tls_blocking_an_attack():
    wafs = sorted(h for h, spec in HOSTS.items() if "waf" in spec["functions"])
    entry = TOPOLOGY["floating"]["waf"]["public"]
    holders = [w for w in wafs if f" {entry}/" in node(w).check_output("ip -o -4 addr show")]
    assert len(holders) == 1, holders
    # From this machine, on the scenario's public network as the internet is: the app through the WAF.
    context = ssl.create_default_context(cafile=os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "ca.crt"))

    def get(path: str, headers: dict | None = None) -> int:
        conn = http.client.HTTPSConnection(entry, 443, context=context, timeout=20)
        try:
            conn.request("GET", path, headers=headers or {})
            return conn.getresponse().status
        finally:
            conn.close()

    assert get("/readyz") == 200
    assert get("/?q=1%27%20UNION%20SELECT%20password_hash%20FROM%20agents--") == 403
    assert get("/", {"User-Agent": "sqlmap/1.7"}) == 403
