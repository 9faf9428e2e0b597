"""The monitoring tier in the scenario, seen from outside: Prometheus scrapes every host's node
exporter over the mesh with TLS and its certificate (targets from the flow matrix) and probes the app
servers' readiness and the public entry point through each WAF with the blackbox exporter, an exporter
refuses a client without a certificate of the CA, Prometheus's and Alertmanager's APIs refuse a
request without their password, Prometheus sends its alerts to Alertmanager, and there a host down
silences the host's other alerts (MON, ENC)."""

from __future__ import annotations

import json
import os
import shlex
import urllib.parse
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
ALERTMANAGER = model.port(LAB, "alertmanager")
PG_EXPORTER, NGINX_EXPORTER = model.port(LAB, "postgres-exporter"), model.port(LAB, "nginx-exporter")
ROLE = Path(__file__).resolve().parents[3].parent / "prometheus"
USER = yaml.safe_load((ROLE / "defaults/main.yml").read_text(encoding="utf-8"))["prometheus_web_user"]
VARS = yaml.safe_load((ROLE / "vars/main.yml").read_text(encoding="utf-8"))
AM_ROLE = ROLE.parent / "alertmanager"
AM_USER = yaml.safe_load((AM_ROLE / "defaults/main.yml").read_text(encoding="utf-8"))["alertmanager_web_user"]
AM_VARS = yaml.safe_load((AM_ROLE / "vars/main.yml").read_text(encoding="utf-8"))
CLIENT_TLS = f"--cacert {PKI}/ca.crt --cert {PKI}/host.crt --key {PKI}/private/host.key"


def password(of: str = "prometheus") -> str:
    with open(os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "secrets.yml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle)[of]


def of_function(host, function: str) -> str:
    """The testinfra host's name when it has the function; else the test is skipped there (it runs on those hosts)."""
    name = host.backend.get_hostname()
    if function not in HOSTS[name]["functions"]:
        pytest.skip(f"asked of the hosts with function {function}")
    return name


def monitor():
    return scenario.node(MONITOR, sudo=True)


def api(path: str, user: str = USER, secret: str | None = None, port: int = PROMETHEUS, posted: list | None = None):
    """curl on the monitoring host against its own API (Prometheus's, or Alertmanager's with its port, user and
    password); the password goes on standard input, never in a command line. ``posted``: sent as JSON."""
    secret = password() if secret is None else secret
    url = f"https://{HOSTS[MONITOR]['overlay']}:{port}{path}"
    body = f"-H 'Content-Type: application/json' --data {shlex.quote(json.dumps(posted))} " if posted is not None else ""
    command = (f"printf 'user = \"%s:%s\"\\n' {shlex.quote(user)} {shlex.quote(secret)} | "
               f"curl -sS --max-time 10 --cacert {PKI}/ca.crt -K - {body}-o /tmp/prometheus-answer -w '%{{http_code}}' {shlex.quote(url)};"
               " echo; cat /tmp/prometheus-answer; rm -f /tmp/prometheus-answer")
    out = monitor().check_output(command)
    status, _, body = out.partition("\n")
    return int(status), body


def answer(status_body: tuple[int, str]):
    status, body = status_body
    assert status == 200, body
    return json.loads(body)


def test_prometheus_scrapes_every_host_s_exporter_over_tls(host):
    if host.backend.get_hostname() != MONITOR:
        pytest.skip("asked once, of the monitoring host")

    def node_targets():
        return [t for t in answer(api("/api/v1/targets?state=active"))["data"]["activeTargets"] if t["labels"]["job"] == "node-exporter"]

    def states(found):
        return {t["labels"]["instance"]: t["health"] for t in found}

    targets = scenario.eventually(node_targets, lambda found: states(found) == {name: "up" for name in HOSTS}, 90, interval=3)
    health = states(targets)
    assert health == {name: "up" for name in HOSTS}, [t.get("lastError") for t in targets]
    assert {t["scrapeUrl"] for t in targets} == {f"https://{spec['overlay']}:{EXPORTER}/metrics" for spec in HOSTS.values()}


def test_prometheus_scrapes_patroni_etcd_and_alertmanager_where_the_flows_say(host):
    """One job per scraped service, its targets the hosts the flow matrix lets the monitoring host reach
    with it (Patroni's API and PostgreSQL's exporter on the database servers, every etcd member, nginx's metrics on
    the WAFs), all up; and Alertmanager's."""
    if host.backend.get_hostname() != MONITOR:
        pytest.skip("asked once, of the monitoring host")
    expected = {(service, target) for service in ("patroni-api", "postgres-exporter", "etcd-client", "nginx-exporter")
                for target in model.reached(TOPOLOGY, MONITOR, service)}
    expected.add(("alertmanager", MONITOR))

    def targets():
        return {(t["labels"]["job"], t["labels"]["instance"]): t for t in answer(api("/api/v1/targets?state=active"))["data"]["activeTargets"]
                if t["labels"]["job"] in {job for job, _ in expected}}

    found = scenario.eventually(targets, lambda ts: set(ts) == expected and all(t["health"] == "up" for t in ts.values()), 90, interval=3)
    assert {key: t["health"] for key, t in found.items()} == {key: "up" for key in expected}, [t.get("lastError") for t in found.values()]
    # What the rules read is there: exactly one primary, and every etcd member sees a leader.
    primaries = answer(api("/api/v1/query?query=sum(patroni_primary)"))["data"]["result"]
    assert [sample["value"][1] for sample in primaries] == ["1"]
    # Each database server's exporter reads its PostgreSQL (through the local socket, role patroni's account).
    read = answer(api("/api/v1/query?query=pg_up"))["data"]["result"]
    assert sorted((s["metric"]["instance"], s["value"][1]) for s in read) == sorted(
        (target, "1") for job, target in expected if job == "postgres-exporter")
    nginx = answer(api("/api/v1/query?query=nginx_up"))["data"]["result"]
    assert sorted((s["metric"]["instance"], s["value"][1]) for s in nginx) == sorted(
        (target, "1") for job, target in expected if job == "nginx-exporter")
    leaders = answer(api("/api/v1/query?query=etcd_server_has_leader"))["data"]["result"]
    assert sorted((s["metric"]["instance"], s["value"][1]) for s in leaders) == sorted(
        (target, "1") for job, target in expected if job == "etcd-client")


def test_prometheus_probes_each_app_server_s_readiness_through_the_blackbox_exporter(host):
    """Job probe-app: its targets the app servers the flow matrix lets the monitoring host reach, each asked
    /readyz by the blackbox exporter of the monitoring host over TLS: up, and ready (unsealed by the converge)."""
    if host.backend.get_hostname() != MONITOR:
        pytest.skip("asked once, of the monitoring host")
    expected = {target: "1" for target in model.reached(TOPOLOGY, MONITOR, "app")}
    assert expected

    def probed():
        found = answer(api("/api/v1/query?query=" + urllib.parse.quote('probe_success{job="probe-app"}')))["data"]["result"]
        return {s["metric"]["instance"]: s["value"][1] for s in found}

    assert scenario.eventually(probed, lambda found: found == expected, 90, interval=3) == expected


def test_prometheus_asks_the_public_entry_point_through_each_waf_as_a_citizen_asks_it(host):
    """Job entry-waf: its targets the WAFs the flow matrix lets the monitoring host reach with https, each asked
    /readyz for the entry's name (the floating address here) with its certificate checked for it: all serve. The
    same request checked for the address asked (module https) fails: the WAF's certificate names the entry only."""
    if host.backend.get_hostname() != MONITOR:
        pytest.skip("asked once, of the monitoring host")
    wafs = [h for h in model.reached(TOPOLOGY, MONITOR, "https") if "waf" in HOSTS[h]["functions"]]
    expected = {target: "1" for target in wafs}
    assert len(expected) == 2

    def probed():
        found = answer(api("/api/v1/query?query=" + urllib.parse.quote('probe_success{job="entry-waf"}')))["data"]["result"]
        return {s["metric"]["instance"]: s["value"][1] for s in found}

    assert scenario.eventually(probed, lambda found: found == expected, 90, interval=3) == expected
    overlay, port = HOSTS[MONITOR]["overlay"], model.port(LAB, "blackbox-exporter")
    target = urllib.parse.quote(f"https://{HOSTS[wafs[0]]['overlay']}:{model.port(LAB, 'https')}/readyz", safe="")
    for module, success in (("entry-waf", "probe_success 1"), ("https", "probe_success 0")):
        url = f"https://{overlay}:{port}/probe?module={module}&target={target}"
        assert success in monitor().check_output(f"curl -sS --max-time 10 {CLIENT_TLS} '{url}'").splitlines(), module


def test_the_blackbox_exporter_probes_for_a_certificate_of_the_ca_only_on_the_overlay(host):
    if host.backend.get_hostname() != MONITOR:
        pytest.skip("the monitoring host's")
    overlay, port = HOSTS[MONITOR]["overlay"], model.port(LAB, "blackbox-exporter")
    listening = host.check_output(f"ss -Hltn 'sport = :{port}'")
    assert [line.split()[3] for line in listening.splitlines()] == [f"{overlay}:{port}"]
    app = model.reached(TOPOLOGY, MONITOR, "app")[0]
    target = urllib.parse.quote(f"https://{HOSTS[app]['overlay']}:{model.port(LAB, 'app')}/readyz", safe="")
    url = f"https://{overlay}:{port}/probe?module=https&target={target}"
    assert "probe_success 1" in monitor().check_output(f"curl -sS --max-time 10 {CLIENT_TLS} '{url}'")
    refused = monitor().run(f"curl -sS --max-time 10 --cacert {PKI}/ca.crt '{url}'")
    assert refused.rc != 0 and "probe_success" not in refused.stdout


def test_every_host_s_user_rights_reach_prometheus(host):
    """The rights collector of role node_exporter runs on every host: root is the only account with UID 0,
    and sudoers and the authorized_keys files have their checksums."""
    if host.backend.get_hostname() != MONITOR:
        pytest.skip("asked once, of the monitoring host")

    def rights():
        found = answer(api("/api/v1/query?query=rempart_rights_uid0_account%20or%20rempart_rights_checksum"))["data"]["result"]
        return {(s["metric"]["instance"], s["metric"]["__name__"], s["metric"].get("account") or s["metric"].get("what")) for s in found}

    expected = {(name, metric, what) for name in HOSTS for metric, what in (
        ("rempart_rights_uid0_account", "root"), ("rempart_rights_checksum", "sudoers"), ("rempart_rights_checksum", "authorized_keys"))}
    assert scenario.eventually(rights, lambda found: found == expected, 90, interval=3) == expected


def test_every_certificate_s_end_reaches_prometheus_as_openssl_reads_it_on_the_host(host):
    """Role pki's collector on each host: its certificate, the WAFs' entry point's, and the CA, each
    ending when openssl says the file's certificate ends."""
    name = host.backend.get_hostname()
    wanted = {"host", "ca"} | ({"waf-public"} if "waf" in HOSTS[name]["functions"] else set())
    query = f'rempart_certificate_not_after_seconds{{instance="{name}"}}'

    def ends():
        found = answer(api(f"/api/v1/query?query={urllib.parse.quote(query)}"))["data"]["result"]
        return {s["metric"]["certificate"]: float(s["value"][1]) for s in found}

    found = scenario.eventually(ends, lambda found: set(found) == wanted, 90, interval=3)
    assert set(found) == wanted
    for certificate in wanted:
        end = host.check_output(f"date -d \"$(openssl x509 -in {PKI}/{certificate}.crt -noout -enddate | cut -d= -f2)\" +%s")
        assert found[certificate] == int(end), certificate


def test_the_exporter_serves_its_metrics_to_a_certificate_of_the_ca_only(host):
    overlay = HOSTS[host.backend.get_hostname()]["overlay"]
    url = f"https://{overlay}:{EXPORTER}/metrics"
    metrics = monitor().check_output(f"curl -sS --max-time 5 {CLIENT_TLS} {url}")
    assert "node_systemd_unit_state{" in metrics and "node_textfile_scrape_error 0" in metrics
    refused = monitor().run(f"curl -sS --max-time 5 --cacert {PKI}/ca.crt {url}")
    assert refused.rc != 0 and "node_" not in refused.stdout


def test_postgresql_s_exporter_serves_a_certificate_of_the_ca_only_and_its_account_reads_statistics_only(host):
    """The exporter answers a client with a certificate of the CA only, on the overlay; its account (pg_monitor,
    peer through the local socket) reads the server's statistics, is no superuser, and may not enter an
    application's database (pg_hba: the postgres database only) nor connect over the network."""
    name = of_function(host, "db")
    url = f"https://{HOSTS[name]['overlay']}:{PG_EXPORTER}/metrics"
    metrics = monitor().check_output(f"curl -sS --max-time 10 {CLIENT_TLS} {url}")
    assert "\npg_up 1\n" in metrics and "pg_stat_database_xact_commit{" in metrics
    refused = monitor().run(f"curl -sS --max-time 5 --cacert {PKI}/ca.crt {url}")
    assert refused.rc != 0 and "pg_up" not in refused.stdout
    node = scenario.node(name, sudo=True)
    listening = node.check_output(f"ss -Hltn 'sport = :{PG_EXPORTER}'")
    assert [line.split()[3] for line in listening.splitlines()] == [f"{HOSTS[name]['overlay']}:{PG_EXPORTER}"]
    as_exporter = "runuser -u prometheus -- psql -X -At -h /run/postgresql"
    assert node.check_output(f"{as_exporter} -d postgres -c 'SELECT rolsuper FROM pg_roles WHERE rolname = current_user'") == "f"
    assert int(node.check_output(f"{as_exporter} -d postgres -c 'SELECT count(*) FROM pg_stat_activity WHERE query IS NOT NULL'")) > 0
    for database in TOPOLOGY["databases"]:
        entered = node.run(f"{as_exporter} -d {database} -c 'SELECT 1'")
        assert entered.rc != 0 and "no pg_hba.conf entry" in entered.stderr, (database, entered.stdout)
    over_network = node.run(f"runuser -u prometheus -- psql -X -At -h {HOSTS[name]['overlay']} -d postgres -c 'SELECT 1'")
    assert over_network.rc != 0 and "pg_hba.conf" in over_network.stderr, over_network.stdout


def test_nginx_s_metrics_are_served_by_nginx_to_a_certificate_of_the_ca_only_from_an_exporter_on_the_loopback(host):
    """On a WAF, nginx serves its metrics (and its stub_status) on the overlay address to a client certificate of
    the CA only; the nginx exporter behind it listens on the loopback only, at the same port."""
    name = of_function(host, "waf")
    base = f"https://{HOSTS[name]['overlay']}:{NGINX_EXPORTER}"
    metrics = monitor().check_output(f"curl -sS --max-time 10 {CLIENT_TLS} {base}/metrics")
    assert "\nnginx_up 1\n" in metrics and "nginx_connections_accepted " in metrics
    for path in ("/metrics", "/stub_status"):
        refused = monitor().run(f"curl -sS --max-time 5 -o /dev/null -w '%{{http_code}}' --cacert {PKI}/ca.crt {base}{path}")
        assert refused.stdout == "400", (path, refused.stdout)  # nginx: "No required SSL certificate was sent"
    listening = scenario.node(name, sudo=True).check_output(f"ss -Hltnp 'sport = :{NGINX_EXPORTER}'")
    # Who listens where: nginx ("nginx") on the overlay, the exporter (its process name cut to 15 characters) on the loopback.
    assert sorted((line.split()[3], '"nginx"' in line) for line in listening.splitlines()) == sorted(
        [(f"{HOSTS[name]['overlay']}:{NGINX_EXPORTER}", True), (f"127.0.0.1:{NGINX_EXPORTER}", False)]), listening


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


def alertmanager(path: str, secret: str | None = None, posted: list | None = None):
    return api(path, user=AM_USER, secret=password("alertmanager") if secret is None else secret, port=ALERTMANAGER, posted=posted)


def test_alertmanager_listens_on_the_overlay_address_only_and_opens_no_cluster_port(host):
    if host.backend.get_hostname() != MONITOR:
        pytest.skip("asked once, of the monitoring host")
    # (two protocols asked: the first column is the protocol)
    listening = [line.split()[4] for line in host.check_output("ss -Hltnu").splitlines()]
    assert [a for a in listening if a.endswith(f":{ALERTMANAGER}")] == [f"{HOSTS[MONITOR]['overlay']}:{ALERTMANAGER}"]
    # Debian's default gossips on port 9094 of every address; the role gives it no cluster address.
    assert not [a for a in listening if a.endswith(":9094")], listening


def test_alertmanager_refuses_a_request_without_its_password_and_keeps_only_its_hash(host):
    if host.backend.get_hostname() != MONITOR:
        pytest.skip("asked once, of the monitoring host")
    assert alertmanager("/api/v2/status", secret="not-the-password")[0] == 401
    assert alertmanager("/api/v2/status")[0] == 200
    web = monitor().file(AM_VARS["__alertmanager_web_config"])
    assert password("alertmanager") not in web.content_string and "$2" in web.content_string
    assert (web.user, web.group, web.mode) == ("root", "prometheus", 0o640)


def test_prometheus_sends_its_alerts_to_the_alertmanager_of_its_host(host):
    if host.backend.get_hostname() != MONITOR:
        pytest.skip("asked once, of the monitoring host")
    active = scenario.eventually(lambda: [a["url"] for a in answer(api("/api/v1/alertmanagers"))["data"]["activeAlertmanagers"]], bool, 60,
                                 interval=3)
    assert active == [f"https://{HOSTS[MONITOR]['overlay']}:{ALERTMANAGER}/api/v2/alerts"]


def test_a_host_down_silences_the_other_alerts_of_that_host_only(host):
    """Alerts as Prometheus sends them: a host down and another alert on the same host, and the same
    other alert on another host; Alertmanager suppresses the first host's other alert only."""
    if host.backend.get_hostname() != MONITOR:
        pytest.skip("asked once, of the monitoring host")
    down, other = sorted(HOSTS)[:2]
    alert = {"alertname": "ScenarioServiceAlert", "severity": "warning", "category": "software"}
    status, body = alertmanager("/api/v2/alerts", posted=[
        {"labels": {"alertname": "HostDown", "severity": "critical", "category": "servers", "instance": down}},
        {"labels": {**alert, "instance": down}},
        {"labels": {**alert, "instance": other}},
    ])
    assert status == 200, body
    states = scenario.eventually(
        lambda: {a["labels"]["instance"]: (a["status"]["state"], a["status"]["inhibitedBy"])
                 for a in answer(alertmanager("/api/v2/alerts?filter=alertname%3D%22ScenarioServiceAlert%22"))},
        lambda found: found.get(down, ("",))[0] == "suppressed", 30, interval=1)
    assert states[down][0] == "suppressed" and states[down][1], states
    assert states[other] == ("active", []), states


@pytest.mark.STATUS
def test_the_status_page_is_served_through_each_waf_and_says_unknown_without_outside_probes(host):
    """The scenario has no outside prober: the page, installed from fresh and served through each WAF, says it
    cannot see rather than a state; the monitoring host's web server answers a certificate of the CA only."""
    path = LAB["wiring"]["status_page_path"]
    entry = TOPOLOGY["floating"]["waf"]["public"]
    for waf in [h for h, spec in HOSTS.items() if "waf" in spec["functions"]]:
        answer = scenario.node(waf, sudo=True).check_output(
            f"curl -sS --max-time 10 --cacert {PKI}/ca.crt --resolve {entry}:443:{HOSTS[waf]['public']} https://{entry}{path}status.json")
        status = json.loads(answer)
        assert status["state"] == "unknown" and status["monitoring"]["reason"] == "stale", (waf, status["monitoring"])
    port = model.port(LAB, "status-page")
    bare = monitor().run(f"curl -sS --max-time 10 --cacert {PKI}/ca.crt -o /dev/null -w '%{{http_code}}' "
                         f"https://{HOSTS[MONITOR]['overlay']}:{port}{path}")
    assert bare.stdout.strip() in ("400", "000"), bare.stdout
    served = monitor().check_output(f"curl -sS --max-time 10 {CLIENT_TLS} -o /dev/null -w '%{{http_code}}' "
                                    f"https://{HOSTS[MONITOR]['overlay']}:{port}{path}")
    assert served == "200"
