"""The DNS check of the internet category (MON): each name of a public entry point asked of the entry's DNS servers
(the topology's floating.<function>.resolvers) by the outside probers. What the topology derives for the dev
inventory (tests/tools/playbooks/render-monitoring.yml renders it, contacting nothing) runs here for real: Debian's
blackbox exporter with the rendered modules, dnsmasq serving the name as the zone would, and Prometheus scraping the
rendered job. The lab's entry point has no name (its address is the name), so the lab cannot show this."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from local_servers import free_port, wait_ready

from rempart import topology as model
from rempart.engine import BLACKBOX, DNSMASQ, PROMETHEUS

pytestmark = pytest.mark.MON
REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TOPOLOGY = model.check(model.INVENTORIES / "dev" / model.TOPOLOGY_FILE)
ENTRY = TOPOLOGY["floating"]["waf"]
NAME = ENTRY["names"][0]
MODULE = f"dns-{NAME}"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, dict]:
    """Prometheus's configuration and the blackbox exporter's modules, as the dev inventory's monitoring host gets them."""
    out = tmp_path_factory.mktemp("rendered")
    done = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", "inventories/dev", "-e", "rempart_target=dev", "-e", f"rendered={out}",
         "tests/tools/playbooks/render-monitoring.yml"],
        capture_output=True, text=True, check=False, cwd=REPO,
        env={"PATH": f"{BIN}:/usr/bin:/bin", "HOME": "/tmp", "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
             "ANSIBLE_FILTER_PLUGINS": f"{REPO / 'plugins/filter'}:{REPO / 'roles/prometheus/filter_plugins'}"})
    assert done.returncode == 0, done.stdout[-3000:]
    return {name: yaml.safe_load((out / name).read_text(encoding="utf-8")) for name in ("prometheus.yml", "blackbox.yml")}


@pytest.fixture(scope="module")
def blackbox(rendered, tmp_path_factory) -> str:
    """Debian's blackbox exporter on the rendered modules, on the loopback (no TLS: the modules are the point here)."""
    tmp = tmp_path_factory.mktemp("blackbox")
    (tmp / "blackbox.yml").write_text(yaml.safe_dump(rendered["blackbox.yml"]), encoding="utf-8")
    check = subprocess.run([str(BLACKBOX), "--config.check", f"--config.file={tmp / 'blackbox.yml'}"],
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr
    port = free_port()
    process = subprocess.Popen([str(BLACKBOX), f"--config.file={tmp / 'blackbox.yml'}", f"--web.listen-address=127.0.0.1:{port}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{url}/-/healthy", "the blackbox exporter", process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


class Zone:
    """dnsmasq on a loopback UDP port answering for the entry's name what the zone holds (a hosts file)."""

    def __init__(self, tmp: Path) -> None:
        self.hosts = tmp / "zone.hosts"
        self.hosts.write_text("", encoding="utf-8")
        os.chmod(tmp, 0o755)
        os.chmod(self.hosts, 0o644)
        self.port = free_port(socket.SOCK_DGRAM)
        self.process: subprocess.Popen | None = None

    def serve(self, *addresses: str) -> None:
        """The name's A records from now on (none: the zone does not know the name)."""
        self.stop()
        self.hosts.write_text("".join(f"{address} {NAME}\n" for address in addresses), encoding="utf-8")
        self.process = subprocess.Popen(
            [str(DNSMASQ), "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--bind-interfaces",
             "--listen-address=127.0.0.1", f"--port={self.port}", f"--addn-hosts={self.hosts}", "--local-ttl=300",
             "--pid-file=", "--user=root"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(0.5)
        assert self.process.poll() is None, self.process.stderr.read()

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def zone(tmp_path):
    served = Zone(tmp_path)
    yield served
    served.stop()


def probe(blackbox: str, zone: Zone) -> str:
    query = urllib.parse.urlencode({"module": MODULE, "target": f"127.0.0.1:{zone.port}"})
    with urllib.request.urlopen(f"{blackbox}/probe?{query}", timeout=15) as answer:
        return answer.read().decode()


def success(metrics: str) -> float:
    return float(re.search(r"(?m)^probe_success (\S+)$", metrics).group(1))


def test_the_topology_gives_each_outside_prober_a_dns_job_per_name_and_resolver(rendered):
    """Job dns-waf: each outside prober of the monitoring host asks each resolver for each name, with the name's module."""
    jobs = {job["job_name"]: job for job in rendered["prometheus.yml"]["scrape_configs"]}
    probers = jobs["outside-waf"]["static_configs"][0]["targets"]
    assert probers, "the dev topology declares an outside prober"
    wanted = [(probers, {"entry": name, "resolver": resolver, "__param_module": f"dns-{name}", "__param_target": resolver})
              for name in ENTRY["names"] for resolver in ENTRY["resolvers"]]
    assert [(group["targets"], group["labels"]) for group in jobs["dns-waf"]["static_configs"]] == wanted
    assert jobs["dns-waf"]["scheme"] == "https" and jobs["dns-waf"]["tls_config"] == jobs["outside-waf"]["tls_config"]
    # Its own job name: EntryUnreachableFromOutside reads outside-<function> jobs' probes, not these.
    assert not re.fullmatch("outside-.+", "dns-waf")


def test_the_name_answered_with_the_floating_address_succeeds(blackbox, zone):
    zone.serve(ENTRY["public"])
    assert success(probe(blackbox, zone)) == 1


@pytest.mark.parametrize(("case", "addresses"), [
    ("the zone does not know the name", ()),
    ("another address (a record not moved)", ("192.0.2.99",)),
    ("the floating address and a stale second one", (ENTRY["public"], "192.0.2.99")),
])
def test_a_wrong_or_missing_answer_fails(blackbox, zone, case, addresses):
    zone.serve(*addresses)
    assert success(probe(blackbox, zone)) == 0, case


def test_prometheus_runs_the_rendered_job_and_reads_the_answer(rendered, blackbox, zone, tmp_path):
    """The rendered job as Prometheus runs it (its labels become the probe's module and target), the outside prober
    here being the local blackbox exporter and the resolver the local dnsmasq."""
    zone.serve(ENTRY["public"])
    job = next(job for job in rendered["prometheus.yml"]["scrape_configs"] if job["job_name"] == "dns-waf")
    job = {**job, "scheme": "http", "scrape_interval": "1s",
           "static_configs": [{"targets": [blackbox.removeprefix("http://")],
                               "labels": {**job["static_configs"][0]["labels"], "__param_target": f"127.0.0.1:{zone.port}"}}]}
    del job["tls_config"]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({"global": {"scrape_interval": "1s"}, "scrape_configs": [job]}),
                                             encoding="utf-8")
    port = free_port()
    process = subprocess.Popen([str(PROMETHEUS), f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'data'}",
                                f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(f"http://127.0.0.1:{port}/-/ready", "the test's Prometheus", process)
        query = urllib.parse.urlencode({"query": 'probe_success{job="dns-waf"}'})
        deadline, found = time.time() + 30, []
        while time.time() < deadline and not found:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/query?{query}", timeout=5) as answer:
                found = yaml.safe_load(answer.read().decode())["data"]["result"]
            time.sleep(0.5)
        assert [(r["metric"]["entry"], r["metric"]["resolver"], r["value"][1]) for r in found] == [(NAME, ENTRY["resolvers"][0], "1")]
    finally:
        process.terminate()
        process.wait(timeout=20)
