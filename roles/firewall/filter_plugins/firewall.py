"""The firewall's rules for one host, derived from the topology (flow matrix, hosts, egress).

``firewall_rules`` turns the flow matrix into the host's input and output rules; the role's
template writes them as nftables. ``firewall_admits`` answers whether a set of input rules lets a
given source reach a port on an interface: the role asks it about its own SSH session before loading
a ruleset (no lock-out). Which hosts a flow end stands for is the topology model's answer
(``rempart.topology.members``), the same the validator, the docs and the lab tests use.
"""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from rempart.topology import OUTSIDE_ENDS, members  # noqa: E402
from rempart.topology import _as_list as as_list  # noqa: E402


def _net(address):
    return str(ipaddress.ip_network(str(address), strict=False))


def _rule(direction, kind, peers, proto, ports, comment, source_ports=()):
    """One rule: direction in/out, interface kind (overlay, public, underlay, any), peers (None: any)."""
    return {
        "direction": direction,
        "interface": kind,
        "peers": None if peers is None else sorted({_net(p) for p in peers}, key=lambda n: ipaddress.ip_network(n)),
        "proto": proto,
        "ports": sorted({int(p) for p in as_list(ports)}),
        "source_ports": sorted({int(p) for p in source_ports}),
        "comment": comment,
    }


def firewall_rules(topology, host, resolved=None, wireguard_port=51820):
    """Input and output rules of ``host``; ``resolved`` maps egress DNS names to their addresses."""
    hosts = topology["hosts"]
    if host not in hosts:
        raise ValueError(f"{host} is not a host of the topology: fix the inventory (hosts.{host}).")
    me = hosts[host]
    resolved = resolved or {}
    rules = []
    for index, flow in enumerate(topology.get("flows") or []):
        src, dst, proto = flow["from"], flow["to"], flow["proto"]
        ports = as_list(flow.get("ports"))
        label = f"flows[{index}] {src} -> {dst}: {' '.join(str(flow['purpose']).split())}"
        # Into this host.
        if host in members(topology, dst):
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
        # Out of this host.
        if src not in OUTSIDE_ENDS and host in members(topology, src):
            peers = [hosts[h]["overlay"] for h in members(topology, dst) if h != host]
            if peers:
                rules.append(_rule("out", "overlay", peers, proto, ports, label))
    # WireGuard itself, the only thing the underlay carries.
    underlay_peers = [spec["underlay"] for name, spec in sorted(hosts.items()) if name != host]
    if underlay_peers:
        # From WireGuard's port to WireGuard's port: no other program may use the underlay, even on that port.
        rules.append(_rule("in", "underlay", underlay_peers, "udp", [wireguard_port], "WireGuard from the mesh's peers", [wireguard_port]))
        rules.append(_rule("out", "underlay", underlay_peers, "udp", [wireguard_port], "WireGuard to the mesh's peers", [wireguard_port]))
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
        label = f"egress[{index}] {target}: {' '.join(str(need['purpose']).split())}"
        rules.append(_rule("out", "any", addresses, need["proto"], need["ports"], label))
    return rules


def firewall_admits(rules, interface, source, proto, port):
    """Whether input ``rules`` accept a new ``proto``/``port`` packet from ``source`` on ``interface`` kind."""
    address = ipaddress.ip_address(str(source))
    for rule in rules:
        if rule["direction"] != "in" or rule["proto"] != proto or int(port) not in rule["ports"]:
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


class FilterModule:
    def filters(self):
        return {
            "firewall_rules": firewall_rules,
            "firewall_admits": firewall_admits,
            "firewall_nft_set": firewall_nft_set,
        }
