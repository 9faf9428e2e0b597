"""The firewall role's rule derivation (roles/firewall/filter_plugins/firewall.py) on the lab topology."""

from __future__ import annotations

import pytest

from rempart import topology as model

firewall = model.firewall_filters()

pytestmark = pytest.mark.SEG
LAB = model.check(model.INVENTORIES / "lab" / model.TOPOLOGY_FILE)
RESOLVED = {"host.docker.internal": ["172.17.0.1"]}


def rules(host: str) -> list[dict]:
    return firewall.firewall_rules(LAB, host, RESOLVED)


def test_database_admits_the_app_servers_and_its_peer_over_the_overlay_only():
    admitted = {(r["proto"], tuple(r["ports"]), tuple(r["peers"])) for r in rules("db1") if r["direction"] == "in"
                and r["interface"] == "overlay"}
    assert ("tcp", (5432,), ("10.232.0.21/32", "10.232.0.22/32")) in admitted
    assert ("tcp", (5432, 8008), ("10.232.0.32/32",)) in admitted
    assert not any(r["interface"] == "public" for r in rules("db1")), "db1 has no public address"


def test_underlay_carries_wireguard_between_peers_only():
    underlay = [r for r in rules("app1") if r["interface"] == "underlay"]
    assert {(r["direction"], r["proto"], tuple(r["ports"])) for r in underlay} == {("in", "udp", (51820,)), ("out", "udp", (51820,))}
    peers = {str(spec["underlay"]) + "/32" for name, spec in LAB["hosts"].items() if name != "app1"}
    assert all(set(r["peers"]) == peers for r in underlay)
    # From WireGuard's own port only: another program cannot use the underlay, even towards port 51820.
    assert all(r["source_ports"] == [51820] for r in underlay)


def test_ssh_to_the_bastion_only_from_the_operators_and_never_from_the_internet():
    ssh_in = [r for r in rules("bastion1") if r["direction"] == "in" and 22 in r["ports"]]
    assert [(r["interface"], r["peers"]) for r in ssh_in] == [("public", ["10.233.0.1/32"])]
    assert firewall.firewall_admits(rules("bastion1"), "public", "10.233.0.1", "tcp", 22)
    assert not firewall.firewall_admits(rules("bastion1"), "public", "10.233.0.200", "tcp", 22)


def test_lock_out_guard_sees_the_session_path():
    # An SSH session through the bastion arrives from its overlay address on wg0: admitted.
    assert firewall.firewall_admits(rules("db2"), "overlay", "10.232.0.5", "tcp", 22)
    # The same session over the underlay (before the switch to the overlay) would be cut: refused.
    assert not firewall.firewall_admits(rules("db2"), "underlay", "10.231.0.5", "tcp", 22)
    # From another host of the mesh: refused.
    assert not firewall.firewall_admits(rules("db2"), "overlay", "10.232.0.21", "tcp", 22)


def test_edge_is_open_to_the_internet_on_80_and_443_only():
    public = [r for r in rules("waf1") if r["interface"] == "public"]
    assert [(r["peers"], r["ports"]) for r in public] == [(None, [80, 443])]


def test_egress_declared_paths_resolved_on_the_host():
    egress = [r for r in rules("mon1") if r["interface"] == "any"]
    assert [(r["direction"], r["peers"], r["ports"]) for r in egress] == [("out", ["172.17.0.1/32"], [3143])]
    with pytest.raises(ValueError, match=r"egress\[0\]\.to: host\.docker\.internal does not resolve on mon1"):
        firewall.firewall_rules(LAB, "mon1", {})


def test_unknown_host_is_refused():
    with pytest.raises(ValueError, match="nohost is not a host of the topology"):
        firewall.firewall_rules(LAB, "nohost", RESOLVED)


def test_every_flow_of_the_matrix_lands_on_both_ends():
    """Each internal flow appears as an output rule on its sources and an input rule on its destinations."""
    for index, flow in enumerate(model.flows(LAB)):
        if flow.src in model.OUTSIDE_ENDS:
            continue
        tag = f"flows[{index}] "
        for src in model.members(LAB, flow.src):
            if [d for d in model.members(LAB, flow.dst) if d != src]:
                assert any(r["comment"].startswith(tag) for r in rules(src) if r["direction"] == "out"), (src, flow)
        for dst in model.members(LAB, flow.dst):
            if [s for s in model.members(LAB, flow.src) if s != dst]:
                assert any(r["comment"].startswith(tag) for r in rules(dst) if r["direction"] == "in"), (dst, flow)
