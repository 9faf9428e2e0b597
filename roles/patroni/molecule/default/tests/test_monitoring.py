"""The monitoring tier in the scenario, seen from outside: Prometheus scrapes every host's node
exporter over the mesh with TLS and its certificate (targets from the flow matrix), an exporter
refuses a client without a certificate of the CA, and Prometheus's API refuses a request without
its password (MON, ENC)."""

from __future__ import annotations

import json
import os
import shlex
import time
from pathlib import Path

import pytest
import yaml

from rempart import scenario
from rempart import topology as model

pytestmark = pytest.mark.MON

testinfra_hosts, TOPOLOGY = scenario.load(__file__)
HOSTS = TOPOLOGY["hosts"]
MONITOR = next(h for h, spec in HOSTS.items() if "monitoring" in spec["functions"])
LAB = model.load(model.INVENTORIES / "lab" / model.TOPOLOGY_FILE)
PKI = LAB["wiring"]["pki_dir"]
EXPORTER, PROMETHEUS = model.port(LAB, "node-exporter"), model.port(LAB, "prometheus")
ROLE = Path(__file__).resolve().parents[3].parent / "prometheus"
USER = yaml.safe_load((ROLE / "defaults/main.yml").read_text(encoding="utf-8"))["prometheus_web_user"]
VARS = yaml.safe_load((ROLE / "vars/main.yml").read_text(encoding="utf-8"))
CLIENT_TLS = f"--cacert {PKI}/ca.crt --cert {PKI}/host.crt --key {PKI}/private/host.key"


def password() -> str:
    with open(os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "secrets.yml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle)["prometheus"]


def monitor():
    return scenario.node(MONITOR, sudo=True)


def api(path: str, user: str = USER, secret: str | None = None):
    """curl on the monitoring host against its own API; the password goes on standard input, never in a command line."""
    secret = password() if secret is None else secret
    url = f"https://{HOSTS[MONITOR]['overlay']}:{PROMETHEUS}{path}"
    command = (f"printf 'user = \"%s:%s\"\\n' {shlex.quote(user)} {shlex.quote(secret)} | "
               f"curl -sS --max-time 10 --cacert {PKI}/ca.crt -K - -o /tmp/prometheus-answer -w '%{{http_code}}' {shlex.quote(url)};"
               " echo; cat /tmp/prometheus-answer; rm -f /tmp/prometheus-answer")
    out = monitor().check_output(command)
    status, _, body = out.partition("\n")
    return int(status), body


def test_prometheus_scrapes_every_host_s_exporter_over_tls(host):
    if host.backend.get_hostname() != MONITOR:
        pytest.skip("asked once, of the monitoring host")
    deadline = time.monotonic() + 90
    while True:
        status, body = api("/api/v1/targets?state=active")
        assert status == 200, body
        targets = [t for t in json.loads(body)["data"]["activeTargets"] if t["labels"]["job"] == "node-exporter"]
        health = {t["labels"]["instance"]: t["health"] for t in targets}
        if set(health) == set(HOSTS) and set(health.values()) == {"up"} or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert health == {name: "up" for name in HOSTS}, [t.get("lastError") for t in targets]
    assert {t["scrapeUrl"] for t in targets} == {f"https://{spec['overlay']}:{EXPORTER}/metrics" for spec in HOSTS.values()}


def test_the_exporter_serves_its_metrics_to_a_certificate_of_the_ca_only(host):
    overlay = HOSTS[host.backend.get_hostname()]["overlay"]
    url = f"https://{overlay}:{EXPORTER}/metrics"
    metrics = monitor().check_output(f"curl -sS --max-time 5 {CLIENT_TLS} {url}")
    assert "node_systemd_unit_state{" in metrics and "node_textfile_scrape_error 0" in metrics
    refused = monitor().run(f"curl -sS --max-time 5 --cacert {PKI}/ca.crt {url}")
    assert refused.rc != 0 and "node_" not in refused.stdout


def test_the_exporter_listens_on_the_overlay_address_only(host):
    overlay = HOSTS[host.backend.get_hostname()]["overlay"]
    listening = host.check_output(f"ss -Hltn 'sport = :{EXPORTER}'")
    assert [line.split()[3] for line in listening.splitlines()] == [f"{overlay}:{EXPORTER}"]


def test_prometheus_refuses_a_request_without_its_password(host):
    if host.backend.get_hostname() != MONITOR:
        pytest.skip("asked once, of the monitoring host")
    assert api("/api/v1/targets", secret="not-the-password")[0] == 401
    url = f"https://{HOSTS[MONITOR]['overlay']}:{PROMETHEUS}/api/v1/targets"
    assert monitor().check_output(f"curl -s -o /dev/null -w '%{{http_code}}' --cacert {PKI}/ca.crt {url}") == "401"
    assert api("/api/v1/targets")[0] == 200
    # On disk: the hash only in the web configuration; the password for the self-scrape readable by root and Prometheus.
    web = monitor().file(VARS["__prometheus_web_config"])
    assert password() not in web.content_string and "$2" in web.content_string
    secret = monitor().file(VARS["__prometheus_password_file"])
    assert (secret.user, secret.group, secret.mode) == ("root", "prometheus", 0o640)
