"""The WireGuard mesh of the network tier's scenario (roles wireguard and firewall together), seen from
its hosts: keys stay where they were made, every peer shakes hands, a reload keeps the tunnel."""

from __future__ import annotations

import os

import pytest
import testinfra
import testinfra.utils.ansible_runner
import yaml

from rempart import collectors
from rempart import topology as model

pytestmark = [pytest.mark.LINK, pytest.mark.ENC]

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY).get_hosts("all")
SCENARIO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
with open(os.path.join(SCENARIO, "molecule.yml"), encoding="utf-8") as handle:
    HOSTS = yaml.safe_load(handle)["provisioner"]["inventory"]["group_vars"]["all"]["rempart_topology"]["hosts"]
# The interface name and the textfile directory are the topology's wiring (the scenario's rempart_topology, from the lab's).
WIRING = model.load(model.INVENTORIES / "lab" / model.TOPOLOGY_FILE)["wiring"]
WG = WIRING["overlay_interface"]
# The units of role wireguard's metrics (its collector's name, in its vars).
with open(os.path.join(SCENARIO, "../../../wireguard/vars/main.yml"), encoding="utf-8") as handle:
    METRICS = collectors.names(yaml.safe_load(handle)["__wireguard_metrics_collector"])


def node(name: str):
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")


def test_the_bastion_reaches_every_peer_over_the_overlay():
    """The flow matrix lets the bastion ping everyone: every tunnel carries traffic."""
    for peer, spec in HOSTS.items():
        if "bastion" in spec["functions"]:
            continue
        # Until one reply, for up to 12 s: a first handshake that crosses the peer's own may need
        # WireGuard's retry (REKEY_TIMEOUT, 5 s) on a loaded machine.
        result = node("fw-bastion").run(f"ping -c 1 -w 12 -I {WG} {spec['overlay']}")
        assert result.rc == 0, f"bastion -> {peer}: {result.stdout}{result.stderr}"


def test_handshakes_with_every_peer(host):
    handshakes = host.run(f"wg show {WG} latest-handshakes").stdout.split("\n")
    times = [int(line.split()[1]) for line in handshakes if line.strip()]
    assert len(times) == len(HOSTS) - 1
    assert all(t > 0 for t in times)


def test_each_peer_s_handshake_is_written_for_the_node_exporter_under_its_host_s_name(host):
    """What the monitoring tier's WireGuardPeerStale reads: a timer writes it every minute; run it now."""
    assert host.service(METRICS["timer"]).is_enabled
    assert host.service(METRICS["timer"]).is_running
    host.run_expect([0], f"systemctl start {METRICS['service']}")
    written = host.file(f"{WIRING['metrics_textfile_dir']}/rempart_wireguard.prom")
    assert written.mode == 0o644
    text = written.content_string
    assert host.file(f"/etc/wireguard/{WG}.key").content_string.strip() not in text
    handshakes = {}
    for line in text.splitlines():
        if line.startswith("rempart_wireguard_peer_latest_handshake_seconds{"):
            labels, value = line.split("{", 1)[1].split("} ")
            handshakes[dict(pair.split("=") for pair in labels.split(","))["peer"].strip('"')] = int(value)
    assert set(handshakes) == set(HOSTS) - {host.backend.get_hostname()}
    assert all(moment > 0 for moment in handshakes.values()), handshakes
    assert f'rempart_wireguard_up{{interface="{WG}"}} 1' in text


def test_private_key_is_root_only_and_not_in_the_config(host):
    key = host.file(f"/etc/wireguard/{WG}.key")
    assert key.user == "root" and key.mode == 0o600
    secret = key.content_string.strip()
    assert secret not in host.file(f"/etc/wireguard/{WG}.conf").content_string
    assert host.file("/etc/wireguard").mode == 0o700


def test_each_host_has_its_own_key():
    keys = {name: node(name).run(f"wg show {WG} public-key").stdout.strip() for name in HOSTS}
    assert len(set(keys.values())) == len(HOSTS)


def test_service_survives_a_configuration_reload(host):
    assert host.run(f"systemctl reload wg-quick@{WG}").rc == 0
    assert host.run(f"wg show {WG} private-key").stdout.strip() == host.file(f"/etc/wireguard/{WG}.key").content_string.strip()
    assert host.service(f"wg-quick@{WG}").is_enabled
