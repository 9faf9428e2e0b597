"""The monitoring tier in the lab, seen from outside (MON, ENC): Prometheus on the monitoring host
scrapes every host of the topology over the mesh with TLS (targets derived from the flow matrix),
what roles leave for the textfile collector reaches it (pgBackRest's state), an exporter refuses a
client without a certificate of the CA, and Prometheus's API refuses a request without its password."""

from __future__ import annotations

import json
import shlex
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest
import yaml
from conftest import LAB_DIR, ssh

from rempart import topology as model

pytestmark = pytest.mark.MON

REPO = Path(__file__).resolve().parents[2]
TOPOLOGY = model.check(model.INVENTORIES / "lab" / model.TOPOLOGY_FILE)
HOSTS = TOPOLOGY["hosts"]
MONITOR = model.members(TOPOLOGY, "monitoring")[0]
PKI = TOPOLOGY["wiring"]["pki_dir"]
EXPORTER, PROMETHEUS = model.port(TOPOLOGY, "node-exporter"), model.port(TOPOLOGY, "prometheus")
URL = f"https://{HOSTS[MONITOR]['overlay']}:{PROMETHEUS}"
USER = yaml.safe_load((REPO / "roles/prometheus/defaults/main.yml").read_text(encoding="utf-8"))["prometheus_web_user"]
CLIENT_TLS = f"--cacert {PKI}/ca.crt --cert {PKI}/host.crt --key {PKI}/private/host.key"


def password() -> str:
    return yaml.safe_load((LAB_DIR / "secrets.yml").read_text(encoding="utf-8"))["vault_prometheus_web_password"]


def api(path: str, secret: str | None = None) -> tuple[int, str]:
    """Prometheus's API from the monitoring host itself; the password goes through standard input."""
    command = (f"curl -sS --max-time 10 --cacert {PKI}/ca.crt -K - -w '\\n%{{http_code}}' {shlex.quote(URL + path)}")
    result = subprocess.run(
        ["ssh", "-F", str(LAB_DIR / "ssh_config"), "-o", "BatchMode=yes", MONITOR, f"sudo sh -c {shlex.quote(command)}"],
        input=f'user = "{USER}:{password() if secret is None else secret}"\n', capture_output=True, text=True, check=False, timeout=30,
    )
    assert result.returncode == 0, result.stderr
    body, _, status = result.stdout.rpartition("\n")
    return int(status), body


def query(expression: str) -> list[dict]:
    status, body = api("/api/v1/query?query=" + urllib.parse.quote(expression))
    assert status == 200, body
    return json.loads(body)["data"]["result"]


def eventually(expression: str, ready, seconds: int = 90) -> list[dict]:
    """The query's result once ``ready(result)`` holds (a scrape every 30 s), or the last one."""
    deadline = time.monotonic() + seconds
    while True:
        result = query(expression)
        if ready(result) or time.monotonic() > deadline:
            return result
        time.sleep(3)


def test_prometheus_scrapes_every_host_of_the_topology_over_tls():
    result = eventually('up{job="node-exporter"}', lambda r: len(r) == len(HOSTS) and all(s["value"][1] == "1" for s in r))
    assert {s["metric"]["instance"]: s["value"][1] for s in result} == {name: "1" for name in HOSTS}
    assert {s["metric"]["instance"]: (s["metric"]["site"], s["metric"]["zone"]) for s in result} == {
        name: (spec["site"], spec["zone"]) for name, spec in HOSTS.items()}
    status, body = api("/api/v1/targets?state=active")
    assert status == 200
    urls = {t["scrapeUrl"] for t in json.loads(body)["data"]["activeTargets"] if t["labels"]["job"] == "node-exporter"}
    assert urls == {f"https://{spec['overlay']}:{EXPORTER}/metrics" for spec in HOSTS.values()}


def test_the_backups_state_reaches_prometheus_through_the_textfile_collector():
    repository = model.members(TOPOLOGY, "backup_repository")
    servers = model.members(TOPOLOGY, "db")
    sealed = eventually("rempart_backup_repository_sealed", lambda r: len(r) == len(repository))
    assert sorted(s["metric"]["instance"] for s in sealed) == repository
    assert all(s["value"][1] == "0" for s in sealed), "the repository is unlocked after make lab"
    waiting = eventually("rempart_wal_archive_waiting", lambda r: len(r) == len(servers))
    assert sorted(s["metric"]["instance"] for s in waiting) == servers


# Units a container cannot run (the kernel refuses auditing and process accounting to it): the baseline
# reports their controls as not applicable in the lab, and they fail at their start there.
CONTAINER_FAILED_UNITS = {"auditd.service", "acct.service"}


def test_systemd_units_are_reported_and_none_has_failed_but_those_a_container_cannot_run():
    result = eventually('node_systemd_unit_state{state="failed"}', lambda r: len({s["metric"]["instance"] for s in r}) == len(HOSTS))
    assert {s["metric"]["instance"] for s in result} == set(HOSTS)
    failed = {(s["metric"]["instance"], s["metric"]["name"]) for s in result if s["value"][1] == "1"}
    assert {name for _, name in failed} <= CONTAINER_FAILED_UNITS, sorted(failed)


def test_an_exporter_answers_a_certificate_of_the_ca_only():
    target = model.members(TOPOLOGY, "db")[0]
    url = f"https://{HOSTS[target]['overlay']}:{EXPORTER}/metrics"
    served = ssh(MONITOR, f"sudo curl -sS --max-time 5 {CLIENT_TLS} {url}")
    assert served.returncode == 0 and "node_systemd_unit_state{" in served.stdout, served.stderr
    refused = ssh(MONITOR, f"curl -sS --max-time 5 --cacert {PKI}/ca.crt {url}")
    assert refused.returncode != 0 and "node_" not in refused.stdout


def test_prometheus_refuses_a_request_without_its_password():
    assert api("/api/v1/targets", secret="not-the-password")[0] == 401
    anonymous = ssh(MONITOR, f"curl -s -o /dev/null -w '%{{http_code}}' --cacert {PKI}/ca.crt {URL}/api/v1/targets")
    assert anonymous.stdout == "401"
    assert api("/api/v1/targets")[0] == 200


def firing(name: str) -> dict[str, str]:
    """instance -> state of the alert ``name`` in Prometheus (pending or firing)."""
    status, body = api("/api/v1/alerts")
    assert status == 200, body
    return {a["labels"].get("instance", ""): a["state"] for a in json.loads(body)["data"]["alerts"] if a["labels"]["alertname"] == name}


def test_a_host_whose_exporter_stops_fires_hostdown_and_resolves_when_it_answers_again():
    host = model.members(TOPOLOGY, "app")[0]
    assert host not in firing("HostDown")
    stopped = ssh(host, "sudo systemctl stop prometheus-node-exporter")
    assert stopped.returncode == 0, stopped.stderr
    try:
        deadline = time.monotonic() + 240
        while firing("HostDown").get(host) != "firing" and time.monotonic() < deadline:
            time.sleep(5)
        assert firing("HostDown").get(host) == "firing"
        assert set(firing("HostDown")) == {host}, "only the stopped exporter's host is down"
    finally:
        started = ssh(host, "sudo systemctl start prometheus-node-exporter")
    assert started.returncode == 0, started.stderr
    deadline = time.monotonic() + 180
    while host in firing("HostDown") and time.monotonic() < deadline:
        time.sleep(5)
    assert host not in firing("HostDown")
