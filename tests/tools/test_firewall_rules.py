"""The firewall's rule derivation (rempart.firewall, the role's filters) and its nftables rendering.

Ports, interface names and addresses come from the lab topology: nothing here restates them.
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from pathlib import Path

import jinja2
import pytest

from rempart import firewall
from rempart import topology as model

pytestmark = pytest.mark.SEG
LAB = model.check(model.INVENTORIES / "lab" / model.TOPOLOGY_FILE)
RESOLVED = {"host.docker.internal": ["172.17.0.1"]}
SSH, WIREGUARD, POSTGRESQL = (model.port(LAB, s) for s in ("ssh", "wireguard", "postgresql"))
TEMPLATE = model.REPO / "roles" / "firewall" / "templates" / "firewall.nft.j2"
HOSTILE = 'x" ; flush ruleset ; add rule inet rempart input accept comment "\n}\ntable ip evil { chain c { type filter hook input priority -1000; policy accept; } }\n#'


def rules(host: str, topology: dict = LAB) -> list[dict]:
    return firewall.firewall_rules(topology, host, RESOLVED)


def overlay(*hosts: str) -> list[str]:
    return sorted(f"{LAB['hosts'][h]['overlay']}/32" for h in hosts)


def test_database_admits_the_app_servers_and_its_peer_over_the_overlay_only():
    admitted = {(r["proto"], tuple(r["ports"]), tuple(r["peers"])) for r in rules("db1") if r["direction"] == "in"
                and r["interface"] == "overlay"}
    assert ("tcp", (POSTGRESQL,), tuple(overlay(*model.members(LAB, "app")))) in admitted
    assert ("tcp", (POSTGRESQL,), tuple(overlay("db2"))) in admitted
    assert ("tcp", (model.port(LAB, "patroni-api"),), tuple(overlay("db2"))) in admitted
    assert not any(r["interface"] == "public" for r in rules("db1")), "db1 has no public address"


def test_underlay_carries_wireguard_between_peers_only():
    underlay = [r for r in rules("app1") if r["interface"] == "underlay"]
    assert {(r["direction"], r["proto"], tuple(r["ports"])) for r in underlay} == {
        ("in", "udp", (WIREGUARD,)), ("out", "udp", (WIREGUARD,))}
    peers = {str(spec["underlay"]) + "/32" for name, spec in LAB["hosts"].items() if name != "app1"}
    assert all(set(r["peers"]) == peers for r in underlay)
    # From WireGuard's own port only: another program cannot use the underlay, even towards that port.
    assert all(r["source_ports"] == [WIREGUARD] for r in underlay)


def test_ssh_to_the_bastion_only_from_the_operators_and_never_from_the_internet():
    operators = [str(c) for c in LAB["operators"]]
    ssh_in = [r for r in rules("bastion1") if r["direction"] == "in" and SSH in r["ports"]]
    assert [(r["interface"], r["peers"]) for r in ssh_in] == [("public", operators)]
    inside = operators[0].split("/")[0]
    assert firewall.firewall_admits(rules("bastion1"), "public", inside, "tcp", SSH)
    assert not firewall.firewall_admits(rules("bastion1"), "public", "10.233.0.200", "tcp", SSH)


def test_lock_out_guard_sees_the_session_path():
    bastion = LAB["hosts"]["bastion1"]
    # An SSH session through the bastion arrives from its overlay address on the mesh: admitted.
    assert firewall.firewall_admits(rules("db2"), "overlay", bastion["overlay"], "tcp", SSH)
    # The same session over the underlay (before the switch to the overlay) would be cut: refused.
    assert not firewall.firewall_admits(rules("db2"), "underlay", bastion["underlay"], "tcp", SSH)
    # From another host of the mesh: refused.
    assert not firewall.firewall_admits(rules("db2"), "overlay", LAB["hosts"]["app1"]["overlay"], "tcp", SSH)


def test_edge_is_open_to_the_internet_on_its_public_services_only():
    public = [r for r in rules("waf1") if r["interface"] == "public"]
    wanted = sorted(p for s in LAB["services"].values() if s.get("public") for p in s["ports"])
    assert sorted(p for r in public for p in r["ports"]) == wanted
    assert all(r["peers"] is None for r in public)


def test_egress_declared_paths_resolved_on_the_host():
    egress = [r for r in rules("mon1") if r["interface"] == "any"]
    assert [(r["direction"], r["peers"], r["ports"]) for r in egress] == [
        ("out", ["172.17.0.1/32"], [model.port(LAB, "update-proxy")]),
        # the outside prober: a path out of the monitoring hosts only
        *[("out", [f"{prober}/32"], [model.port(LAB, "blackbox-exporter")]) for prober in model.outside_probers(LAB, "mon1")]]
    assert len(egress) == 2
    assert [(r["peers"], r["ports"]) for r in rules("app1") if r["interface"] == "any"] == [
        (["172.17.0.1/32"], [model.port(LAB, "update-proxy")])]
    with pytest.raises(ValueError, match=r"egress\[0\]\.to: host\.docker\.internal does not resolve on mon1"):
        firewall.firewall_rules(LAB, "mon1", {})


def test_unknown_host_is_refused():
    with pytest.raises(ValueError, match="nohost is not a host of the topology"):
        firewall.firewall_rules(LAB, "nohost", RESOLVED)


def test_every_service_of_every_flow_lands_on_both_ends():
    """Each internal (flow, service) is an output rule on its sources and an input rule on its destinations."""
    for opening in model.openings(LAB):
        if opening.src in model.OUTSIDE_ENDS:
            continue
        tag = f"flows[{opening.index}] {opening.src} -> {opening.dst} {opening.service}:"
        for src in model.members(LAB, opening.src):
            if [d for d in model.members(LAB, opening.dst) if d != src]:
                assert any(r["comment"].startswith(tag) and r["ports"] == list(opening.ports)
                           for r in rules(src) if r["direction"] == "out"), (src, opening)
        for dst in model.members(LAB, opening.dst):
            if [s for s in model.members(LAB, opening.src) if s != dst]:
                assert any(r["comment"].startswith(tag) for r in rules(dst) if r["direction"] == "in"), (dst, opening)


# --- rendering: what nftables receives ---------------------------------------------------------------


def render(topology: dict, host: str) -> str:
    """The role's template, rendered as the role does (same filters, the host's interfaces)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE.parent)), trim_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters.update(firewall.FILTERS)
    interfaces = {"overlay": topology["wiring"]["overlay_interface"], "underlay": "eth1"}
    if topology["hosts"][host].get("public"):
        interfaces["public"] = "eth2"
    return env.get_template(TEMPLATE.name).render(
        ansible_managed="Managed by Ansible", firewall_host=host, __firewall_me=topology["hosts"][host],
        firewall_log_rate="10/minute", firewall_log_burst=20, __firewall_interfaces=interfaces,
        __firewall_rules_list=firewall.firewall_rules(topology, host, RESOLVED),
    )


def effect(ruleset: str) -> list[str]:
    """The ruleset without its comments: what it does."""
    without = re.sub(r'\s*comment "[^"\n]*"', "", ruleset)
    return [line.strip() for line in without.splitlines() if line.strip() and not line.strip().startswith("#")]


def hostile_lab() -> dict:
    """The lab topology with hostile text in every string a config shows (as if it had skipped the validator)."""
    topology = copy.deepcopy(LAB)
    for flow in topology["flows"]:
        flow["purpose"] = HOSTILE
    for need in topology["egress"]:
        need["purpose"] = HOSTILE
    for site in topology["sites"].values():
        site["description"] = HOSTILE
    return topology


@pytest.mark.parametrize("host", ["bastion1", "waf1", "db1", "mon1"])
def test_hostile_text_renders_a_ruleset_identical_in_effect(host):
    plain, hostile = render(LAB, host), render(hostile_lab(), host)
    # The hostile words survive only inside comments, as inert text.
    assert not any("evil" in line or "flush" in line for line in effect(hostile))
    assert effect(hostile) == effect(plain)


def test_comments_are_one_line_of_plain_characters():
    assert firewall.comment(HOSTILE) == firewall.comment(HOSTILE).strip()
    assert not set(firewall.comment(HOSTILE)) & set('"\\\n;{}#')
    assert len(firewall.comment("x" * 500)) <= firewall.COMMENT_LENGTH


@pytest.mark.parametrize("topology", [LAB, hostile_lab()], ids=["plain", "hostile"])
def test_nft_accepts_the_rendered_ruleset(tmp_path: Path, topology):
    nft = shutil.which("nft") or "/usr/sbin/nft"
    assert Path(nft).exists(), "nft is missing: `make tools` installs it (nftables)"
    for host in topology["hosts"]:
        path = tmp_path / f"{host}.nft"
        path.write_text(render(topology, host), encoding="utf-8")
        result = subprocess.run([nft, "-c", "-f", str(path)], capture_output=True, text=True, check=False)
        assert result.returncode == 0, f"{host}: {result.stderr}"


def test_rendered_rules_are_the_models():
    """Each accept rule of the rendered file, read back, is one derived rule (and each derived rule is there)."""
    for host in LAB["hosts"]:
        text = render(LAB, host)
        derived = firewall.firewall_rules(LAB, host, RESOLVED)
        accepted = [line for line in text.splitlines() if line.strip().startswith("ct state new ") and " accept" in line
                    and "egress[" not in line]
        # Input rules first, then output rules, each in the model's order (as the template writes them).
        wanted = [r for d in ("in", "out") for r in derived if r["direction"] == d and r["interface"] in ("overlay", "public")]
        assert len(accepted) == len(wanted), host
        for rule, line in zip(wanted, accepted, strict=True):
            assert f'comment "{rule["comment"]}"' in line, (host, line)
            if rule["ports"]:
                assert f"{rule['proto']} dport {firewall.firewall_nft_set(rule['ports'])}" in line, (host, line)
            if rule["peers"] is not None:
                assert firewall.firewall_nft_set(rule["peers"]) in line, (host, line)
