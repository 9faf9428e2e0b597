"""The monitoring tier in the lab, seen from outside (MON, ENC): Prometheus on the monitoring host
scrapes every host of the topology over the mesh with TLS (targets derived from the flow matrix),
what roles leave for the textfile collector reaches it (pgBackRest's state), an exporter refuses a
client without a certificate of the CA, Prometheus's API refuses a request without its password, and
an alert is told to the receiver of its severity (the lab's recorder), firing then resolved."""

from __future__ import annotations

import base64
import http.client
import json
import shlex
import socket
import ssl
import stat
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest
import yaml
from conftest import LAB_DIR, playbook, ssh

from rempart import collectors, drill
from rempart import topology as model

pytestmark = pytest.mark.MON
# The roles these tests cover (the docs' role pages name this file).
ROLES = ("prometheus", "alertmanager", "blackbox_exporter", "node_exporter", "postgres_exporter", "nginx_exporter")

REPO = Path(__file__).resolve().parents[2]
TOPOLOGY = model.check(model.INVENTORIES / "lab" / model.TOPOLOGY_FILE)
HOSTS = TOPOLOGY["hosts"]
MONITOR = model.members(TOPOLOGY, "monitoring")[0]
PKI = TOPOLOGY["wiring"]["pki_dir"]
EXPORTER, PROMETHEUS = model.port(TOPOLOGY, "node-exporter"), model.port(TOPOLOGY, "prometheus")
URL = f"https://{HOSTS[MONITOR]['overlay']}:{PROMETHEUS}"
USER = yaml.safe_load((REPO / "roles/prometheus/defaults/main.yml").read_text(encoding="utf-8"))["prometheus_web_user"]
CLIENT_TLS = f"--cacert {PKI}/ca.crt --cert {PKI}/host.crt --key {PKI}/private/host.key"
LAB_VARS = yaml.safe_load((model.INVENTORIES / "lab/group_vars/all/lab.yml").read_text(encoding="utf-8"))


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


def test_every_scraped_service_s_targets_are_up_and_the_exporters_read_their_servers():
    """Each job of prometheus_scrape_services (role prometheus), its targets the hosts the flow matrix lets the
    monitoring host reach with the service, all up; PostgreSQL's and nginx's exporters read their servers."""
    defaults = yaml.safe_load((REPO / "roles/prometheus/defaults/main.yml").read_text(encoding="utf-8"))
    expected = {(service, target) for service in defaults["prometheus_scrape_services"]
                for target in model.reached(TOPOLOGY, MONITOR, service)}
    services = {service for service, _ in expected}

    def up(result):
        return {(s["metric"]["job"], s["metric"]["instance"]): s["value"][1] for s in result if s["metric"]["job"] in services}

    assert up(eventually("up", lambda r: set(up(r).items()) == {(key, "1") for key in expected})) == dict.fromkeys(expected, "1")
    for metric, job in (("pg_up", "postgres-exporter"), ("nginx_up", "nginx-exporter")):
        read = {s["metric"]["instance"]: s["value"][1] for s in query(f'{metric}{{job="{job}"}}')}
        assert read == {target: "1" for service, target in expected if service == job}, metric


def test_the_backups_state_reaches_prometheus_through_the_textfile_collector():
    repository = model.members(TOPOLOGY, "backup_repository")
    servers = model.members(TOPOLOGY, "db")
    sealed = eventually("rempart_backup_repository_sealed", lambda r: len(r) == len(repository))
    assert sorted(s["metric"]["instance"] for s in sealed) == repository
    assert all(s["value"][1] == "0" for s in sealed), "the repository is unlocked after make lab"
    waiting = eventually("rempart_wal_archive_waiting", lambda r: len(r) == len(servers))
    assert sorted(s["metric"]["instance"] for s in waiting) == servers


def test_every_host_s_firewall_is_loaded_and_its_drops_reach_prometheus():
    """Role firewall's textfile collector on every host: the table loaded, its drops counted by kind, the mesh's
    apart (what FirewallDropsBetweenServers and FirewallNotLoaded read)."""
    loaded = eventually("rempart_firewall_loaded", lambda found: len(found) == len(HOSTS))
    assert {s["metric"]["instance"]: s["value"][1] for s in loaded} == {host: "1" for host in HOSTS}
    kinds = query('count by (counter) (rempart_firewall_dropped_packets_total)')
    assert {s["metric"]["counter"]: s["value"][1] for s in kinds} == {
        kind: str(len(HOSTS)) for kind in ("input", "overlay", "output", "forward", "underlay")}


FIREWALL_COLLECTOR = collectors.names("firewall")


def _flows_seen(host: str) -> dict[tuple[str, str], str]:
    """(to, service) -> rempart_flow_path_open, as the host's firewall collector writes it now (run at once)."""
    done = ssh(host, f"sudo systemctl start {FIREWALL_COLLECTOR['service']} && "
                     f"cat {TOPOLOGY['wiring']['metrics_textfile_dir']}/rempart_firewall.prom")
    assert done.returncode == 0, done.stderr
    found = {}
    for line in done.stdout.splitlines():
        if line.startswith("rempart_flow_path_open{"):
            labels = dict(part.split("=", 1) for part in line[line.index("{") + 1: line.index("}")].split(","))
            found[(labels["to"].strip('"'), labels["service"].strip('"'))] = line.split()[-1]
    return found


def test_each_flow_s_path_is_probed_from_its_source_and_a_cut_one_is_told_apart():
    """Every destination the flow matrix lets a host reach over TCP reaches Prometheus, its path open (a planned
    service's port answers a reset: open too); on an app server, packets to one database server's PostgreSQL
    dropped (a table of the test's own, before the firewall's) make that path, and only it, cut; open again once
    removed."""
    expected = {(host, t["to"], t["service"]) for host in HOSTS for t in model.tcp_flow_targets(TOPOLOGY, host)}
    # Every path open (a drill before may have cut some for a minute or two: the collector writes every minute).
    found = eventually("rempart_flow_path_open", lambda r: {(s["metric"]["instance"], s["metric"]["to"], s["metric"]["service"])
                                                            for s in r} == expected and all(s["value"][1] == "1" for s in r),
                       seconds=180)
    assert {(s["metric"]["instance"], s["metric"]["to"], s["metric"]["service"]) for s in found} == expected
    assert [s["metric"] for s in found if s["value"][1] != "1"] == []
    source = APP
    cut = next(t for t in model.tcp_flow_targets(TOPOLOGY, source) if t["service"] == "postgresql")
    table = "inet rempart_lab_cut"
    _run(source, f"sudo nft add table {table} && sudo nft add chain {table} out '{{ type filter hook output priority -10; }}' && "
                 f"sudo nft add rule {table} out ip daddr {cut['address']} tcp dport {cut['port']} drop")
    try:
        seen = _flows_seen(source)
    finally:
        _run(source, f"sudo nft delete table {table}")
    assert seen.pop((cut["to"], cut["service"])) == "0"
    assert set(seen.values()) == {"1"}, seen
    assert set(_flows_seen(source).values()) == {"1"}


def test_systemd_units_are_reported_and_none_has_failed():
    """None, not even auditd and process accounting, which a container cannot run: the baseline makes
    systemd skip them there rather than fail (a false SystemdUnitFailed alert on every lab host)."""
    result = eventually('node_systemd_unit_state{state="failed"}', lambda r: len({s["metric"]["instance"] for s in r}) == len(HOSTS))
    assert {s["metric"]["instance"] for s in result} == set(HOSTS)
    failed = sorted((s["metric"]["instance"], s["metric"]["name"]) for s in result if s["value"][1] == "1")
    assert failed == []


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


# The topology's outside probers (off the platform, the ends of declared paths out carrying blackbox-exporter) and
# the lab's machine standing for each (playbooks/lab/up.yml labels it with its address).
PROBERS = model.outside_probers(TOPOLOGY)
PROBER_PORT = model.port(TOPOLOGY, model.OUTSIDE_PROBE_SERVICE)
PROBER_JOB = "outside-waf"
# A host the topology gives no path out to the probers.
NOT_READING = next(h for h in HOSTS if not model.outside_probers(TOPOLOGY, h))


def outside_machine(address: str) -> str:
    found = subprocess.run(["docker", "ps", "-q", "--filter", f"label=org.rempart.lab-outside={address}"],
                           capture_output=True, text=True, check=True).stdout.split()
    assert len(found) == 1, f"the lab has {len(found)} machines for the outside prober {address}"
    return found[0]


def test_the_outside_prober_asks_the_public_entry_point_and_answers_the_monitoring_hosts_only():
    """Each outside prober asks the entry point from the internet's side (probe_success 1 in Prometheus); its
    exporter serves a monitoring host that shows a certificate of the CA, refuses one without, and a host that
    the topology gives no path out to it cannot reach it at all."""
    assert PROBERS, "the lab's topology has an outside prober"
    targets = {f"{prober}:{PROBER_PORT}" for prober in PROBERS}
    result = eventually(f'probe_success{{job="{PROBER_JOB}"}}', lambda r: {s["metric"]["instance"] for s in r} == targets
                        and all(s["value"][1] == "1" for s in r))
    assert {s["metric"]["instance"]: s["value"][1] for s in result} == dict.fromkeys(targets, "1")
    for prober in PROBERS:
        url = f"https://{prober}:{PROBER_PORT}/metrics"
        served = ssh(MONITOR, f"sudo curl -sS --max-time 5 {CLIENT_TLS} {url}")
        assert served.returncode == 0 and "blackbox_exporter_config_last_reload_successful" in served.stdout, served.stderr
        refused = ssh(MONITOR, f"curl -sS --max-time 5 --cacert {PKI}/ca.crt {url}")
        assert refused.returncode != 0 and "blackbox_" not in refused.stdout
        blocked = ssh(NOT_READING, f"curl -sS --max-time 5 --cacert {PKI}/ca.crt {url}")
        assert blocked.returncode != 0 and "SSL" not in blocked.stderr, blocked.stderr  # never even a handshake


def _cut_from_outside(cut: bool) -> None:
    """On each outside prober, the public entry point's address made unreachable (a blackhole route), or reachable again."""
    for prober in PROBERS:
        done = subprocess.run(["docker", "exec", outside_machine(prober), "ip", "route", "add" if cut else "del", "blackhole",
                               f"{drill.ENTRY_ADDRESS}/32"], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr


RULES = {rule["alert"]: rule for path in sorted((REPO / "roles/prometheus/files/rules").glob("*.yml"))
         for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"] for rule in group["rules"] if "alert" in rule}
SERVERS = model.members(TOPOLOGY, "db")
APP = model.members(TOPOLOGY, "app")[0]
# The other app server, restarted: sealed until playbooks/unlock.yml (its service, of role app's defaults).
SEALED_APP = model.members(TOPOLOGY, "app")[-1]
APP_SERVICE = yaml.safe_load((REPO / "roles/app/defaults/main.yml").read_text(encoding="utf-8"))["app_name"]
# A host where the lab gives an account UID 0 (another than the app server, whose exporter is stopped meanwhile).
RIGHTS_HOST = model.members(TOPOLOGY, "waf")[0]
# A host with nothing else broken, where a small filesystem is mounted read-only (FilesystemReadOnly watches /srv).
STORAGE_HOST = model.members(TOPOLOGY, "waf")[-1]
READ_ONLY = "/srv/rempart-drill"
# Its web server stopped (the unit keepalived tracks): the entry point's probe through it fails (EntryNotServing).
ENTRY_HOST = model.members(TOPOLOGY, "waf")[-1]
WEB_SERVER = yaml.safe_load((REPO / "roles/keepalived/defaults/main.yml").read_text(encoding="utf-8"))["keepalived_track_unit"]
# Run the rights collector now (its service, of role node_exporter's timer) rather than wait for its minute.
RIGHTS_SERVICE = collectors.names(
    yaml.safe_load((REPO / "roles/node_exporter/vars/main.yml").read_text(encoding="utf-8"))["__node_exporter_rights_collector"])["service"]
RIGHTS_COLLECTOR = f"sudo systemctl start {RIGHTS_SERVICE}"
# An etcd member that is not a database server (the witness): stopping it keeps the quorum.
WITNESS_MEMBER = next(h for h in model.members(TOPOLOGY, "etcd") if h not in SERVERS)


def alerts(name: str) -> list[tuple[dict, str]]:
    """(labels, state) of each alert ``name`` in Prometheus (pending or firing)."""
    status, body = api("/api/v1/alerts")
    assert status == 200, body
    return [(a["labels"], a["state"]) for a in json.loads(body)["data"]["alerts"] if a["labels"]["alertname"] == name]


def told(alert: str, labels: dict[str, str]) -> list[tuple[str, str]]:
    """(receiver's path, status) of each notification of ``alert`` with ``labels`` the lab's recorder was
    sent by Alertmanager (inventories/lab: alertmanager_receivers), in the order received."""
    result = ssh(MONITOR, f"curl -sS --max-time 5 http://127.0.0.1:{LAB_VARS['lab_alert_recorder_port']}/")
    assert result.returncode == 0, result.stderr
    return [(row["path"], a["status"]) for row in json.loads(result.stdout) for a in row["notification"]["alerts"]
            if a["labels"].get("alertname") == alert and all(a["labels"].get(k) == v for k, v in labels.items())]


def receiver_path(alert: str) -> str:
    """The recorder's path of the receiver the alert's severity (from its rule) is routed to."""
    receiver = LAB_VARS["alertmanager_severity_receivers"][RULES[alert]["labels"]["severity"]]
    return urllib.parse.urlsplit(next(r["webhook_configs"][0]["url"] for r in LAB_VARS["alertmanager_receivers"]
                                      if r["name"] == receiver)).path


def _run(host: str, command: str) -> None:
    done = ssh(host, command)
    assert done.returncode == 0, done.stderr


def _unlock() -> None:
    done = playbook("playbooks/unlock.yml")
    assert done.returncode == 0, done.stdout[-3000:]


# One breakage per category of MON that the lab can cause and undo: (category, alert, the alert's labels
# that say where, break, mend). All are broken at once and waited for together (the slowest sets the time).
BREAKAGES = [
    ("servers", "HostDown", {"instance": APP},
     lambda: _run(APP, "sudo systemctl stop prometheus-node-exporter"), lambda: _run(APP, "sudo systemctl start prometheus-node-exporter")),
    ("software", "EtcdMemberDown", {"instance": WITNESS_MEMBER},
     lambda: _run(WITNESS_MEMBER, "sudo systemctl stop etcd"), lambda: _run(WITNESS_MEMBER, "sudo systemctl start etcd")),
    ("rights", "RightsUid0Account", {"instance": RIGHTS_HOST, "account": "rempart-drill"},
     lambda: _run(RIGHTS_HOST, f"sudo useradd -o -u 0 -M -N -s /usr/sbin/nologin rempart-drill && {RIGHTS_COLLECTOR}"),
     lambda: _run(RIGHTS_HOST, f"sudo userdel -f rempart-drill && {RIGHTS_COLLECTOR}")),
    ("software", "AppNotReady", {"instance": SEALED_APP},
     lambda: _run(SEALED_APP, f"sudo systemctl restart {APP_SERVICE}"), _unlock),
    ("storage", "FilesystemReadOnly", {"instance": STORAGE_HOST, "mountpoint": READ_ONLY},
     lambda: _run(STORAGE_HOST, f"sudo mkdir -p {READ_ONLY} && sudo mount -t tmpfs -o size=1m,ro rempart-drill {READ_ONLY}"),
     lambda: _run(STORAGE_HOST, f"sudo umount {READ_ONLY} && sudo rmdir {READ_ONLY}")),
    ("software", "EntryNotServing", {"instance": ENTRY_HOST, "job": "entry-waf"},
     lambda: _run(ENTRY_HOST, f"sudo systemctl stop {WEB_SERVER}"), lambda: _run(ENTRY_HOST, f"sudo systemctl start {WEB_SERVER}")),
    ("links", "PostgreSQLNoSynchronousStandby", {},
     lambda: drill.cut_service(SERVERS, "postgresql"), lambda: drill.mend(SERVERS)),
    ("internet", "EntryUnreachableFromOutside", {"job": PROBER_JOB},
     lambda: _cut_from_outside(cut=True), lambda: _cut_from_outside(cut=False)),
]


def states(alert: str, labels: dict[str, str]) -> list[str]:
    return [state for found, state in alerts(alert) if all(found.get(k) == v for k, v in labels.items())]


@pytest.mark.HA
def test_an_alert_of_each_category_fires_is_told_and_is_told_resolved_when_mended():
    """Stop an app server's exporter (HostDown), the witness's etcd member (EtcdMemberDown), restart the other app
    server (sealed: AppNotReady), give an account UID 0 on a WAF (RightsUid0Account), mount a filesystem read-only
    under /srv on the other WAF (FilesystemReadOnly), stop that WAF's web server (EntryNotServing), cut
    replication between the database servers (PostgreSQLNoSynchronousStandby) and the entry point from the outside
    probers (EntryUnreachableFromOutside):
    each fires in Prometheus, only where broken, Alertmanager tells the receiver of its severity, and tells
    it resolved once mended."""
    drill.wait_for("a healthy cluster before the test", drill.healthy, timeout=120)
    for category, alert, labels, _, _ in BREAKAGES:
        assert RULES[alert]["labels"]["category"] == category
        assert states(alert, labels) == [], f"{alert} fires before anything is broken"
    before = {alert: len(told(alert, labels)) for _, alert, labels, _, _ in BREAKAGES}
    mended = []
    try:
        for _, alert, labels, breaking, mending in BREAKAGES:
            mended.append(mending)
            breaking()
        for _, alert, labels, _, _ in BREAKAGES:
            drill.wait_for(f"{alert} firing", lambda a=alert, l=labels: states(a, l) == ["firing"], timeout=300, interval=5)
        assert [found["instance"] for found, _ in alerts("HostDown")] == [APP], "only the stopped exporter's host is down"
        assert alerts("AppNoneReady") == [], "one app server sealed, the other still ready"
        assert alerts("EntryNoneServing") == [], "one WAF stopped, the other still serving"
    finally:
        failed = []
        for mending in mended:  # every one, even if another fails
            try:
                mending()
            except (AssertionError, drill.DrillError) as error:
                failed.append(error)
        assert not failed, f"the lab could not be mended: {failed}"
    for _, alert, labels, _, _ in BREAKAGES:
        drill.wait_for(f"{alert} resolved", lambda a=alert, l=labels: states(a, l) == [], timeout=300, interval=5)
    drill.wait_for("a healthy cluster after the test", drill.healthy, timeout=120)
    for _, alert, labels, _, _ in BREAKAGES:
        path = receiver_path(alert)
        drill.wait_for(f"{alert} told resolved", lambda a=alert, l=labels: "resolved" in [s for _, s in told(a, l)[before[a]:]],
                       timeout=90, interval=3)
        notifications = told(alert, labels)[before[alert]:]
        assert notifications[0] == (path, "firing") and notifications[-1] == (path, "resolved"), (alert, notifications)


def test_a_login_through_the_bastion_is_counted_as_such_by_the_rights_collector():
    """Every SSH session of the lab goes through the bastion (ssh_config's ProxyCommand): the collector
    counts a new one under via="bastion", and none elsewhere."""
    host = SERVERS[0]

    def counted() -> dict[str, int]:
        _run(host, RIGHTS_COLLECTOR)
        text = ssh(host, f"cat {TOPOLOGY['wiring']['metrics_textfile_dir']}/rempart_rights.prom").stdout
        return {line.split('"')[1]: int(line.split()[-1]) for line in text.splitlines()
                if line.startswith("rempart_rights_ssh_logins_total{")}

    before = counted()
    login = ssh(host, "true", extra=["-o", "ControlPath=none"])  # a session of its own, not the shared connection
    assert login.returncode == 0, login.stderr
    after = counted()
    assert after["bastion"] > before["bastion"], (before, after)
    assert after["elsewhere"] == before["elsewhere"] == 0, after


def test_alertmanager_routes_each_severity_to_its_receiver():
    config = "/etc/prometheus/alertmanager.yml"
    for severity, receiver in LAB_VARS["alertmanager_severity_receivers"].items():
        routed = ssh(MONITOR, f"sudo amtool config routes test --config.file={config} severity={severity} alertname=Any")
        assert routed.returncode == 0 and routed.stdout.split() == [receiver], (severity, routed.stdout, routed.stderr)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def status_through(local: int, url: str, ca: str, credentials: tuple[str, str] | None = None) -> int:
    """The HTTP status of ``url`` reached through a tunnel's local end, its certificate checked against
    ``ca`` for the URL's host name (Python's standard library: the CI machine may have no curl)."""
    parts = urllib.parse.urlsplit(url)
    headers = {"Authorization": "Basic " + base64.b64encode(":".join(credentials).encode()).decode()} if credentials else {}
    context = ssl.create_default_context(cafile=ca)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    connection.sock = context.wrap_socket(socket.create_connection(("127.0.0.1", local), timeout=10), server_hostname=parts.hostname)
    try:
        connection.request("GET", parts.path, headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


def test_a_person_on_the_lab_machine_opens_each_monitoring_ui_as_endpoints_json_says(endpoints):
    """Through the SSH tunnel endpoints.json gives (via the bastion, which relays to what the flows let
    it reach), at the host's name with the lab CA, with the account and the password it points to in
    .lab/secrets.yml, which its owner alone reads; without the password, 401."""
    uis = endpoints["monitoring"]
    assert set(uis) == {ui["service"] for ui in LAB_VARS["lab_monitoring_uis"]}
    for name, ui in uis.items():
        secrets = Path(ui["password"]["file"])
        assert stat.S_IMODE(secrets.stat().st_mode) & 0o077 == 0, f"{secrets} is readable by others"
        password = yaml.safe_load(secrets.read_text(encoding="utf-8"))[ui["password"]["key"]]
        # The documented tunnel, on a free local port (the UI's own may be taken on this machine).
        local = free_port()
        tunnel = shlex.split(ui["tunnel"])
        forward = tunnel.index("-L") + 1
        tunnel[forward] = f"127.0.0.1:{local}:" + tunnel[forward].split(":", 1)[1]
        process = subprocess.Popen([*tunnel[:1], "-o", "ControlPath=none", "-o", "ExitOnForwardFailure=yes", *tunnel[1:]],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            drill.wait_for(f"the tunnel to {name}", lambda: process.poll() is None and _accepts(local), timeout=20, interval=0.3)
            ready = ui["url"] + "-/ready"
            assert status_through(local, ready, endpoints["ca_certificate"], (ui["user"], password)) == 200, name
            assert status_through(local, ready, endpoints["ca_certificate"]) == 401, name
        finally:
            process.terminate()
            process.wait(timeout=10)


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False
