"""The firewall's rules for one host, derived from the topology (flow matrix, services, hosts, egress).

``firewall_rules`` turns the flow matrix into the host's input and output rules, one per (flow,
service); the firewall role's template writes them as nftables. ``firewall_admits`` answers whether
a set of input rules lets a given source reach a port on an interface: the role asks it about its
own SSH session before loading a ruleset (no lock-out). Which hosts a flow end stands for is the
topology model's answer (``rempart.topology.members``), the same the validator, the docs and the lab
tests use. The role's filter plugin (roles/firewall/filter_plugins/firewall.py) only exposes these.
"""

from __future__ import annotations

import ipaddress
import re

from rempart.topology import OUTSIDE_ENDS, as_list, members, port

# What an nftables comment may hold: rendered between double quotes, at most 128 bytes.
_UNSAFE = re.compile(r"[^A-Za-z0-9 .,:()'/+_>\[\]-]")
COMMENT_LENGTH = 120


def comment(text: str) -> str:
    """Text made safe for an nftables comment: one line, plain characters, bounded length.

    The validator already refuses such characters in the topology; this holds even for a topology
    that did not go through it.
    """
    flat = _UNSAFE.sub(" ", " ".join(str(text).split()))
    return " ".join(flat.split())[:COMMENT_LENGTH]


def _net(address):
    return str(ipaddress.ip_network(str(address), strict=False))


def _rule(direction, kind, peers, proto, ports, label, source_ports=()):
    """One rule: direction in/out, interface kind (overlay, public, underlay, any), peers (None: any)."""
    return {
        "direction": direction,
        "interface": kind,
        "peers": None if peers is None else sorted({_net(p) for p in peers}, key=ipaddress.ip_network),
        "proto": proto,
        "ports": sorted({int(p) for p in as_list(ports)}),
        "source_ports": sorted({int(p) for p in source_ports}),
        "comment": comment(label),
    }


def _service(topology, name):
    spec = topology["services"][name]
    return spec["proto"], as_list(spec.get("ports"))


def firewall_rules(topology, host, resolved=None):
    """Input and output rules of ``host``; ``resolved`` maps egress DNS names to their addresses."""
    hosts = topology["hosts"]
    if host not in hosts:
        raise ValueError(f"{host} is not a host of the topology: fix the inventory (hosts.{host}).")
    me = hosts[host]
    resolved = resolved or {}
    rules = []
    for index, flow in enumerate(topology.get("flows") or []):
        src, dst = flow["from"], flow["to"]
        into, out_of = host in members(topology, dst), src not in OUTSIDE_ENDS and host in members(topology, src)
        for name in flow["services"]:
            proto, ports = _service(topology, name)
            label = f"flows[{index}] {src} -> {dst} {name}: {flow['purpose']}"
            if into:
                if src == "internet":
                    if me.get("public"):
                        rules.append(_rule("in", "public", None, proto, ports, label))
                elif src == "operators":
                    if me.get("public"):
                        rules.append(_rule("in", "public", as_list(topology.get("operators")), proto, ports, label))
                else:
                    peers = [hosts[h]["overlay"] for h in members(topology, src) if h != host]
                    if peers:
                        rules.append(_rule("in", "overlay", peers, proto, ports, label))
            if out_of:
                peers = [hosts[h]["overlay"] for h in members(topology, dst) if h != host]
                if peers:
                    rules.append(_rule("out", "overlay", peers, proto, ports, label))
    # WireGuard itself, the only thing the underlay carries: from its port to its port, so that no
    # other program may use the underlay, even towards that port.
    underlay_peers = [spec["underlay"] for name, spec in sorted(hosts.items()) if name != host]
    if underlay_peers:
        proto, ports = _service(topology, "wireguard")
        wg = port(topology, "wireguard")
        rules.append(_rule("in", "underlay", underlay_peers, proto, ports, "WireGuard from the mesh's peers", [wg]))
        rules.append(_rule("out", "underlay", underlay_peers, proto, ports, "WireGuard to the mesh's peers", [wg]))
    # Declared paths out of the platform (updates, time): new connections out, their replies in.
    for index, need in enumerate(topology.get("egress") or []):
        if not any(host in members(topology, end) for end in as_list(need.get("hosts", "all"))):
            continue
        target = str(need["to"])
        try:
            addresses = [_net(target)]
        except ValueError:
            addresses = as_list(resolved.get(target))
            if not addresses:
                raise ValueError(
                    f"egress[{index}].to: {target} does not resolve on {host}: fix the name in the topology "
                    "or the host's resolver (/etc/hosts, DNS) before the firewall closes the way."
                ) from None
        for name in need["services"]:
            proto, ports = _service(topology, name)
            rules.append(_rule("out", "any", addresses, proto, ports, f"egress[{index}] {target} {name}: {need['purpose']}"))
    return rules


def firewall_admits(rules, interface, source, proto, port_number):
    """Whether input ``rules`` accept a new ``proto``/``port`` packet from ``source`` on ``interface`` kind."""
    address = ipaddress.ip_address(str(source))
    for rule in rules:
        if rule["direction"] != "in" or rule["proto"] != proto or int(port_number) not in rule["ports"]:
            continue
        if rule["interface"] not in (interface, "any"):
            continue
        if rule["peers"] is None or any(address in ipaddress.ip_network(p) for p in rule["peers"]):
            return True
    return False


def firewall_nft_set(values):
    """An nftables anonymous set (or a single value) from a list."""
    values = [str(v) for v in values]
    return values[0] if len(values) == 1 else "{ " + ", ".join(values) + " }"


FILTERS = {
    "firewall_rules": firewall_rules,
    "firewall_admits": firewall_admits,
    "firewall_nft_set": firewall_nft_set,
}
