"""The mesh seen from its hosts: every peer answers over the overlay, keys stay where they were made."""

from __future__ import annotations

import os

import testinfra
import testinfra.utils.ansible_runner

from rempart import topology as model

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY).get_hosts("all")
# The interface name is the topology's wiring (the scenario's rempart_topology, from the lab's).
WG = model.load(model.INVENTORIES / "lab" / model.TOPOLOGY_FILE)["wiring"]["overlay_interface"]
OVERLAY = {"wg-dc1-a": "10.99.0.1", "wg-dc1-b": "10.99.0.2", "wg-dc2-a": "10.99.0.3"}


def test_every_peer_answers_over_the_overlay(host):
    me = host.backend.get_hostname()
    for peer, address in OVERLAY.items():
        if peer == me:
            continue
        # Until one reply, for up to 12 s: a first handshake that crosses the peer's own may need
        # WireGuard's retry (REKEY_TIMEOUT, 5 s) on a loaded machine.
        result = host.run(f"ping -c 1 -w 12 -I {WG} {address}")
        assert result.rc == 0, f"{me} -> {peer} ({address}): {result.stdout}{result.stderr}"


def test_handshakes_with_every_peer(host):
    handshakes = host.run(f"wg show {WG} latest-handshakes").stdout.split("\n")
    times = [int(line.split()[1]) for line in handshakes if line.strip()]
    assert len(times) == len(OVERLAY) - 1
    assert all(t > 0 for t in times)


def test_private_key_is_root_only_and_not_in_the_config(host):
    key = host.file(f"/etc/wireguard/{WG}.key")
    assert key.user == "root" and key.mode == 0o600
    secret = key.content_string.strip()
    assert secret not in host.file(f"/etc/wireguard/{WG}.conf").content_string
    assert host.file("/etc/wireguard").mode == 0o700


def test_each_host_has_its_own_key(host):
    keys = {
        h: testinfra.get_host(f"ansible://{h}?ansible_inventory={INVENTORY}").run(f"wg show {WG} public-key").stdout.strip()
        for h in OVERLAY
    }
    assert len(set(keys.values())) == len(OVERLAY)


def test_service_survives_a_configuration_reload(host):
    assert host.run(f"systemctl reload wg-quick@{WG}").rc == 0
    assert host.run(f"wg show {WG} private-key").stdout.strip() == host.file(f"/etc/wireguard/{WG}.key").content_string.strip()
    assert host.service(f"wg-quick@{WG}").is_enabled
