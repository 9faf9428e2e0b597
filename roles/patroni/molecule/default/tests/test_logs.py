"""Central logs in the scenario, seen from outside: every host's messages reach the log collector over
RELP with TLS, filed by host and stream (authentication apart, the WAF's refused requests in their own
stream), the collector listens on its overlay address only and refuses a client without a certificate
of the CA, and a collector outage loses nothing: messages written while it is stopped all arrive, each
once, once it is back (AUDIT, ENC)."""

from __future__ import annotations

import http.client
import os
import shlex
import ssl
import uuid
from pathlib import Path

import pytest
import yaml

from rempart import collectors, scenario
from rempart import topology as model

pytestmark = pytest.mark.AUDIT

testinfra_hosts, TOPOLOGY = scenario.load(__file__)
HOSTS = TOPOLOGY["hosts"]
COLLECTOR = next(h for h, spec in HOSTS.items() if "log_collector" in spec["functions"])
WAF = sorted(h for h, spec in HOSTS.items() if "waf" in spec["functions"])[0]
LAB = model.load(model.INVENTORIES / "lab" / model.TOPOLOGY_FILE)
PORT = model.port(LAB, "relp")
ROLE = Path(__file__).resolve().parents[3].parent / "rsyslog"
DIR = yaml.safe_load((ROLE / "defaults/main.yml").read_text(encoding="utf-8"))["rsyslog_collector_dir"]
SERVICE = yaml.safe_load((ROLE / "vars/main.yml").read_text(encoding="utf-8"))["__rsyslog_service"]
METRICS = collectors.names("rsyslog")["service"]
METRICS_FILE = f"{LAB['wiring']['metrics_textfile_dir']}/rempart_rsyslog.prom"


def collector():
    return scenario.node(COLLECTOR, sudo=True)


def filed(host: str, stream: str, marker: str) -> list[str]:
    """The lines of ``host``'s ``stream`` on the collector that hold ``marker``."""
    path = shlex.quote(f"{DIR}/{host}/{stream}.log")
    out = collector().run(f"grep -F -- {shlex.quote(marker)} {path}")
    return out.stdout.splitlines()


def test_every_host_s_messages_are_filed_by_host_and_stream_on_the_collector():
    marker = f"rempart-logs-{uuid.uuid4()}"
    for host in HOSTS:
        scenario.node(host, sudo=True).check_output(
            f"logger -t rempart-test {shlex.quote(marker)} && logger -p authpriv.notice -t rempart-test {shlex.quote(marker + '-auth')}")
    for host in HOSTS:
        lines = scenario.eventually(lambda h=host: filed(h, "syslog", marker), lambda found: len(found) == 1, 30)
        assert len(lines) == 1, f"{host}: {lines}"
        assert filed(host, "auth", marker + "-auth"), host
        assert not filed(host, "syslog", marker + "-auth"), f"{host}: an authentication message outside auth.log"
    folders = collector().check_output(f"stat -c '%U:%G %a' {DIR} {DIR}/{WAF} {DIR}/{WAF}/auth.log").splitlines()
    assert folders == ["root:adm 750", "root:adm 750", "root:adm 640"]


def test_the_waf_s_refused_requests_reach_the_collector_in_their_own_stream():
    marker = uuid.uuid4().hex
    address = HOSTS[WAF]["public"]
    context = ssl.create_default_context(cafile=os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "ca.crt"))
    context.check_hostname = False
    conn = http.client.HTTPSConnection(address, 443, context=context, timeout=20)
    try:
        conn.request("GET", f"/?{marker}=1%27%20UNION%20SELECT%20password_hash%20FROM%20agents--")
        assert conn.getresponse().status == 403
    finally:
        conn.close()
    lines = scenario.eventually(lambda: filed(WAF, "waf-blocks", marker), lambda found: len(found) == 1, 30)
    assert len(lines) == 1, lines
    assert '"transaction"' in lines[0], lines[0]


def relp_open(client, certificate: bool) -> str:
    """A RELP session's opening (``open`` command) sent to the collector over TLS from ``client``, with the
    host's certificate or none: the collector's answer (``1 rsp 200 OK ...`` when it accepts the session)."""
    pki = LAB["wiring"]["pki_dir"]
    data = "relp_version=0\nrelp_software=rempart-test\ncommands=syslog"
    frame = f"1 open {len(data)} {data}\n"
    mine = f"-cert {pki}/host.crt -key {pki}/private/host.key " if certificate else ""
    return client.run(f"{{ printf %s {shlex.quote(frame)}; sleep 2; }} | timeout 10 openssl s_client -quiet -verify_return_error "
                      f"-connect {HOSTS[COLLECTOR]['overlay']}:{PORT} -CAfile {pki}/ca.crt {mine}2>&1").stdout


def test_the_collector_listens_on_its_overlay_address_only_and_refuses_a_client_without_a_certificate():
    listening = collector().check_output(f"ss -Hltn 'sport = :{PORT}' | awk '{{print $4}}'").split()
    assert listening == [f"{HOSTS[COLLECTOR]['overlay']}:{PORT}"]
    client = scenario.node(WAF, sudo=True)
    assert "rsp " in relp_open(client, certificate=True)
    refused = relp_open(client, certificate=False)
    assert "rsp " not in refused, refused


def test_the_configuration_names_the_certificate_files_rsyslog_runs_with():
    """Each file of the role carries the sha256 of the certificate and the CA as they are on disk, so that a
    renewal (role pki) changes the file and the run restarts rsyslog with the new ones."""
    pki = LAB["wiring"]["pki_dir"]
    variables = yaml.safe_load((ROLE / "vars/main.yml").read_text(encoding="utf-8"))
    for host in HOSTS:
        node = scenario.node(host, sudo=True)
        on_disk = node.check_output(f"cat {pki}/host.crt {pki}/ca.crt | sha256sum | cut -d' ' -f1")
        files = [variables["__rsyslog_forward_file"]] + ([variables["__rsyslog_collect_file"]] if host == COLLECTOR else [])
        for path in files:
            assert node.check_output(f"grep '^# TLS files: ' {path}") == f"# TLS files: {on_disk}", (host, path)


def test_a_collector_outage_loses_nothing():
    marker = f"rempart-outage-{uuid.uuid4()}"
    sender = scenario.node(WAF, sudo=True)
    count = 200
    # The socket too: journald's messages would start rsyslog again through it (socket activation).
    collector().check_output(f"systemctl stop {SERVICE} syslog.socket")
    try:
        assert not collector().run(f"ss -Hltn 'sport = :{PORT}'").stdout.strip()
        sender.check_output(f"for i in $(seq 1 {count}); do logger -t rempart-test {shlex.quote(marker)}-$i; done")
        # The messages wait in the sender's queue (past its retries, not in a connection), and the role's
        # collector says so to the node exporter (rsyslog writes its counters every 30 s).
        assert scenario.eventually(lambda: waiting(sender), lambda found: found >= count, 75, interval=5) >= count
    finally:
        collector().check_output(f"systemctl start {SERVICE}")
    lines = scenario.eventually(lambda: filed(WAF, "syslog", marker), lambda found: len(found) >= count, 60, interval=3)
    numbers = sorted(int(line.rsplit("-", 1)[1]) for line in lines)
    assert numbers == list(range(1, count + 1)), f"{len(numbers)} of {count} arrived"
    assert scenario.eventually(lambda: waiting(sender), lambda found: found == 0, 75, interval=5) == 0


def waiting(node) -> int:
    """The messages ``node``'s rsyslog holds for the collector, as its textfile collector tells the node exporter
    (-1: no fresh counters)."""
    node.check_output(f"systemctl start {METRICS}")
    text = node.check_output(f"cat {METRICS_FILE}")
    if "rempart_rsyslog_stats_fresh 1" not in text.splitlines():
        return -1
    return sum(int(line.split()[-1]) for line in text.splitlines()
               if line.startswith(f'rempart_rsyslog_queue_size{{collector="{COLLECTOR}",'))
