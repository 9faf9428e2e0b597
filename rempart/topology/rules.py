"""The rules a topology must follow beyond its shape, one function per family.

Each function takes a topology whose shape is valid (``schema.shape_errors`` found nothing) and
returns sentences that start with the place they are about and end with the fix. Nothing here
raises on a topology of the right shape.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Callable

# Flow ends that are not zones, functions or hosts.
SPECIAL_ENDS = {
    "internet": "anything outside the platform",
    "operators": "the operators' own address ranges (topology key operators), on the public side",
    "all": "every host of the environment",
}
# Ends outside the platform: their flows arrive on a host's public address.
OUTSIDE_ENDS = ("internet", "operators")
ADDRESS_KINDS = ("underlay", "overlay", "public")
# The address family the firewall writes rules for (nftables `ip saddr/daddr`).
FAMILY = 4


# The service an outside prober's blackbox exporter answers on: a declared path out (egress) that carries
# it leads to an outside prober (rempart.topology.outside_probers).
OUTSIDE_PROBE_SERVICE = "blackbox-exporter"

def as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def groups_of(topology: dict, host: str) -> set[str]:
    """Names a flow end may use that include ``host``: its zone, functions, own name, 'all'."""
    spec = topology["hosts"][host] or {}
    return {spec.get("zone"), host, "all", *(str(f) for f in as_list(spec.get("functions")))} - {None}


def members(topology: dict, end: str) -> list[str]:
    """Hosts a flow end stands for (empty for 'internet' and 'operators')."""
    return sorted(h for h in topology["hosts"] if end in groups_of(topology, h))


def hosts_with(topology: dict, function: str) -> list[str]:
    return sorted(n for n, h in topology["hosts"].items() if function in h["functions"])


def held_data(topology: dict, host: dict) -> list[str]:
    """The host's functions that keep the platform's data."""
    return [f for f in host["functions"] if (topology["functions"].get(f) or {}).get("holds_data")]


def faced(topology: dict, host: dict) -> set[str]:
    """The outside ends (internet, operators) the host's functions may be reached from."""
    return {end for f in host["functions"] for end in (topology["functions"].get(f) or {}).get("faces", [])}


def _network(text: str):
    try:
        return ipaddress.ip_network(str(text), strict=True)
    except ValueError:
        return None


def ranges(topology: dict, others: dict[str, dict]) -> list[str]:
    """Valid IPv4 networks, disjoint from each other and from every other environment (ENV)."""
    errors = []
    env = topology["environment"]
    nets = {}
    for kind, cidr in topology["ranges"].items():
        try:
            net = ipaddress.ip_network(str(cidr), strict=True)
        except ValueError as exc:
            errors.append(f"ranges.{kind}: {cidr!r} is not a network in CIDR form ({exc}): e.g. 10.231.0.0/24.")
            continue
        if net.version != FAMILY:
            errors.append(f"ranges.{kind}: {cidr} is an IPv{net.version} network; the firewall writes IPv{FAMILY} rules only: give an IPv{FAMILY} network.")
            continue
        nets[kind] = net
    kinds = list(nets)
    for i, a in enumerate(kinds):
        for b in kinds[i + 1:]:
            if nets[a].overlaps(nets[b]):
                errors.append(f"ranges.{a} ({nets[a]}) overlaps ranges.{b} ({nets[b]}): give each its own network.")
    for other_env, other in others.items():
        for kind, net in nets.items():
            for other_kind, other_cidr in (other.get("ranges") or {}).items():
                other_net = _network(other_cidr)
                if other_net is not None and net.version == other_net.version and net.overlaps(other_net):
                    errors.append(
                        f"ranges.{kind} ({net}) overlaps the {other_env} environment's ranges.{other_kind} "
                        f"({other_net}): environments are separated (ENV), give {env} its own ranges."
                    )
    return errors


def identity(topology: dict, others: dict[str, dict]) -> list[str]:
    """Each environment has its own CA, vault id and SSH key, whatever their case (ENV)."""
    errors = []
    mine = topology["identity"]
    for other_env, other in others.items():
        theirs = other.get("identity") or {}
        for key in sorted(mine):
            if " ".join(str(mine[key]).split()).casefold() == " ".join(str(theirs.get(key, "")).split()).casefold():
                errors.append(
                    f"identity.{key}: {mine[key]!r} is also the {other_env} environment's ({theirs[key]!r}): "
                    f"environments must not share a {key} (ENV), even in another case."
                )
    return errors


def names(topology: dict) -> list[str]:
    """A name means one thing: a host, site or zone never takes the name of another kind of object."""
    kinds = {
        "functions": set(topology["functions"]),
        "zones": set(topology["zones"]),
        "sites": set(topology["sites"]),
        "hosts": set(topology["hosts"]),
        "special flow ends": set(SPECIAL_ENDS),
    }
    errors = []
    for kind in ("hosts", "sites", "zones"):
        for name in sorted(kinds[kind]):
            for other, taken in kinds.items():
                if other != kind and name in taken:
                    errors.append(
                        f"{kind}.{name}: {name!r} is also the name of one of the {other}; flow ends, groups and "
                        f"files would mix them up: rename the {kind[:-1]}."
                    )
    return errors


def hosts(topology: dict) -> list[str]:
    """Each host in a declared site and zone, with known functions; data never in a zone that holds none."""
    errors = []
    sites, zones, functions = topology["sites"], topology["zones"], topology["functions"]
    for name, host in topology["hosts"].items():
        where = f"hosts.{name}"
        if host["site"] not in sites:
            errors.append(f"{where}.site: {host['site']!r} is not a declared site ({', '.join(sites)}): declare it under sites or fix the name.")
        if host["zone"] not in zones:
            errors.append(f"{where}.zone: {host['zone']!r} is not a declared zone ({', '.join(zones)}).")
        for function in host["functions"]:
            if function not in functions:
                errors.append(f"{where}.functions: {function!r} is not a known function ({', '.join(functions)}).")
        zone = zones.get(host["zone"]) or {}
        held = held_data(topology, host)
        if held and zone.get("holds_data", True) is False:
            errors.append(
                f"{where}.zone: {name} holds data ({', '.join(held)}) but zone {host['zone']} may hold none: "
                "move the function to a host of another zone."
            )
    return errors


def locality(topology: dict) -> list[str]:
    """Data only in the allowed jurisdictions (LOC)."""
    errors = []
    allowed = [str(j) for j in topology["jurisdictions_allowed"]]
    for name, host in topology["hosts"].items():
        held = held_data(topology, host)
        site = topology["sites"].get(host["site"]) or {}
        if held and site and site["jurisdiction"] not in allowed:
            errors.append(
                f"hosts.{name}.site: {name} holds data ({', '.join(held)}) but site {host['site']} is in "
                f"{site['jurisdiction']}, outside jurisdictions_allowed ({', '.join(allowed)}) (LOC): "
                "move it to a site in an allowed jurisdiction."
            )
    return errors


def addresses(topology: dict) -> list[str]:
    """Usable IPv4 host addresses inside their ranges, unique; public ones only where the outside is faced."""
    errors = []
    nets = {kind: _network(cidr) for kind, cidr in topology["ranges"].items()}
    operators = [n for n in (_network(c) for c in as_list(topology.get("operators"))) if n is not None]
    seen: dict[str, str] = {}
    for name, host in topology["hosts"].items():
        faces = faced(topology, host)
        for kind in ADDRESS_KINDS:
            if kind not in host:
                continue
            where = f"hosts.{name}.{kind}"
            try:
                address = ipaddress.ip_address(str(host[kind]))
            except ValueError:
                errors.append(f"{where}: {host[kind]!r} is not an IP address: give an IPv{FAMILY} address in ranges.{kind}.")
                continue
            if address.version != FAMILY:
                errors.append(f"{where}: {address} is an IPv{address.version} address; the firewall writes IPv{FAMILY} rules only: give an IPv{FAMILY} address.")
                continue
            net = nets.get(kind)
            if kind not in topology["ranges"]:
                errors.append(f"{where}: the topology has no ranges.{kind}: declare it, or remove the address.")
            elif net is not None and address not in net:
                errors.append(f"{where}: {address} is outside ranges.{kind} ({net}): pick an address in it.")
            elif net is not None and net.prefixlen < net.max_prefixlen - 1 and address in (net.network_address, net.broadcast_address):
                which = "network" if address == net.network_address else "broadcast"
                errors.append(f"{where}: {address} is the {which} address of ranges.{kind} ({net}), not a host address: pick another.")
            if str(address) in seen:
                errors.append(f"{where}: {address} is already {seen[str(address)]}'s address: addresses are unique.")
            else:
                seen[str(address)] = name
            if kind == "public":
                if not faces:
                    errors.append(
                        f"{where}: {name} has a public address but none of its functions ({', '.join(host['functions'])}) "
                        "faces the internet or the operators: remove the address (it reaches the outside through the mesh only)."
                    )
                for network in operators:
                    if address in network:
                        errors.append(f"{where}: {address} lies in the operators' range {network}: a host is not an operator; pick another address.")
    return errors


def floating(topology: dict) -> list[str]:
    """A floating public address per outside-facing pair: inside ranges.public, nobody else's, required."""
    errors = []
    net = _network(topology["ranges"]["public"]) if "public" in topology["ranges"] else None
    taken = {str(h.get(kind)): f"{name}'s {kind} address" for name, h in topology["hosts"].items() for kind in ADDRESS_KINDS if h.get(kind)}
    given = topology.get("floating") or {}
    for function, spec in topology["functions"].items():
        spec = spec or {}
        if spec.get("pair") and spec.get("faces") and len(hosts_with(topology, function)) > 1 and function not in given:
            errors.append(
                f"floating: the {spec['pair']} ({', '.join(hosts_with(topology, function))}) face the outside but share no "
                f"floating address: add floating.{function}.public, an unused address in ranges.public."
            )
    for function, entry in given.items():
        where = f"floating.{function}"
        spec = topology["functions"].get(function)
        if spec is None:
            errors.append(f"{where}: {function!r} is not a function: use one of {', '.join(sorted(topology['functions']))}.")
            continue
        if not ((spec or {}).get("pair") and (spec or {}).get("faces")):
            errors.append(f"{where}: {function} is not a pair that faces the outside (functions.{function}: pair and faces): remove the entry.")
        try:
            address = ipaddress.ip_address(str(entry["public"]))
        except ValueError:
            errors.append(f"{where}.public: {entry['public']!r} is not an IP address: give an IPv{FAMILY} address in ranges.public.")
            continue
        if net is None:
            errors.append(f"{where}.public: the topology has no ranges.public: declare it.")
        elif address.version != FAMILY or address not in net or address in (net.network_address, net.broadcast_address):
            errors.append(f"{where}.public: {address} is not a host address of ranges.public ({net}): pick an unused one in it.")
        if str(address) in taken:
            errors.append(f"{where}.public: {address} is already {taken[str(address)]}: a floating address belongs to no host.")
        taken[str(address)] = where
        errors += _resolvers(where, entry, taken)
    return errors


def _resolvers(where: str, entry: dict, taken: dict[str, str]) -> list[str]:
    """The DNS servers the outside probers ask for the entry's names: given with names (and only then), each an
    IPv4 address off the platform."""
    names, resolvers = entry.get("names") or [], entry.get("resolvers") or []
    if names and not resolvers:
        return [f"{where}: names without resolvers: add {where}.resolvers, the addresses of the DNS servers the outside "
                f"probers ask for {', '.join(names)} (the zone's authoritative servers, or the resolvers citizens use)."]
    if resolvers and not names:
        return [f"{where}.resolvers: the entry has no names to ask them for: add {where}.names, or remove the resolvers."]
    errors = []
    for resolver in resolvers:
        try:
            address = ipaddress.ip_address(str(resolver))
        except ValueError:
            errors.append(f"{where}.resolvers: {resolver!r} is not an IP address: give the IPv{FAMILY} address of a DNS server.")
            continue
        if address.version != FAMILY:
            errors.append(f"{where}.resolvers: {address} is not an IPv{FAMILY} address: give the IPv{FAMILY} address of a DNS server.")
        elif str(address) in taken:
            errors.append(f"{where}.resolvers: {address} is {taken[str(address)]}: the names are asked off the platform, "
                          "from a DNS server citizens reach.")
    return errors


def services(topology: dict) -> list[str]:
    """Ports where the protocol has them, none where it has not, each (protocol, port) one service's."""
    errors = []
    owner: dict[tuple, str] = {}
    for name, service in topology["services"].items():
        where = f"services.{name}"
        ports = as_list(service.get("ports"))
        if service["proto"] in ("tcp", "udp"):
            if not ports:
                errors.append(f"{where}.ports is missing: a {service['proto']} service names its port(s).")
        elif ports:
            errors.append(f"{where}.ports: a {service['proto']} service has no ports: remove them.")
        for port in ports:
            key = (service["proto"], port)
            if key in owner:
                errors.append(f"{where}.ports: {service['proto']} {port} is already service {owner[key]}'s: give each service its own port.")
            owner.setdefault(key, name)
    return errors


def _known_services(where: str, named: list, topology: dict) -> list[str]:
    return [
        f"{where}.services: {name!r} is not a declared service ({', '.join(topology['services'])}): declare it under services or fix the name."
        for name in named if name not in topology["services"]
    ]


def flows(topology: dict) -> list[str]:
    """Ends that exist, services that exist, no port twice, outside flows only to public addresses."""
    errors = []
    ends = set(topology["zones"]) | set(topology["functions"]) | set(SPECIAL_ENDS) | set(topology["hosts"])
    for index, flow in enumerate(topology["flows"]):
        where = f"flows[{index}]"
        for key in ("from", "to"):
            if flow[key] not in ends:
                errors.append(
                    f"{where}.{key}: {flow[key]!r} is not a zone, a function, a host or one of {', '.join(SPECIAL_ENDS)}: "
                    f"use one of the zones ({', '.join(topology['zones'])}) or functions ({', '.join(topology['functions'])})."
                )
        if flow["to"] in OUTSIDE_ENDS:
            errors.append(f"{where}.to: flows towards {flow['to']} are host needs (egress: updates, time), not zone flows.")
        errors += _known_services(where, flow["services"], topology)
        ports = Counter(
            (topology["services"][s]["proto"], p) for s in flow["services"] if s in topology["services"]
            for p in as_list(topology["services"][s].get("ports"))
        )
        for (proto, port), count in sorted(ports.items()):
            if count > 1:
                errors.append(f"{where}.services: {proto} {port} is carried twice: list each service once.")
        if flow["from"] in OUTSIDE_ENDS and flow["to"] in ends:
            for name in members(topology, flow["to"]):
                host = topology["hosts"][name]
                if not host.get("public"):
                    errors.append(
                        f"{where}.to: {flow['to']!r} includes {name}, which has no public address: flows from "
                        f"{flow['from']} arrive on public addresses; give hosts.{name}.public or narrow the flow."
                    )
        if flow["from"] == "operators" and not as_list(topology.get("operators")):
            errors.append(
                f"{where}.from is 'operators' but the topology has no operators: list the operators' "
                "address ranges (operators: [CIDR, ...]) so that only they reach it."
            )
    return errors


def exposure(topology: dict) -> list[str]:
    """Management never from the internet; SSH enters at the bastion only, from the operators (SEG)."""
    errors = []
    bastions = set(hosts_with(topology, "bastion"))
    for index, flow in enumerate(topology["flows"]):
        where = f"flows[{index}]"
        known = [s for s in flow["services"] if s in topology["services"]]
        if flow["from"] == "internet":
            for name in known:
                if not topology["services"][name].get("public"):
                    errors.append(
                        f"{where}.services: {name!r} is not a public service and may never be reached from the internet "
                        "(management, data and internal services stay inside): remove it from this flow."
                    )
        if "ssh" in known:
            if flow["from"] == "operators":
                outside = [h for h in members(topology, flow["to"]) if h not in bastions]
                if outside:
                    errors.append(
                        f"{where}.to: SSH from the operators enters at the bastion only, but {flow['to']!r} includes "
                        f"{', '.join(outside)}: narrow the flow to: bastion."
                    )
            elif flow["from"] != "internet":
                outside = [h for h in members(topology, flow["from"]) if h not in bastions]
                if outside:
                    errors.append(
                        f"{where}.from: SSH inside the platform comes from the bastion only, but {flow['from']!r} includes "
                        f"{', '.join(outside)}: make the flow from: bastion."
                    )
        faces = {end for f in topology["functions"].values() for end in f.get("faces", [])}
        if flow["from"] in OUTSIDE_ENDS and flow["from"] not in faces:
            errors.append(f"{where}.from: no function faces {flow['from']}: declare which function does (functions.<name>.faces).")
        if flow["from"] in OUTSIDE_ENDS:
            for name in members(topology, flow["to"]):
                if not topology["hosts"][name].get("public"):
                    continue  # reported by flows(): no public address
                if flow["from"] not in faced(topology, topology["hosts"][name]):
                    errors.append(
                        f"{where}.to: {name} would be reached from {flow['from']}, but none of its functions "
                        f"({', '.join(topology['hosts'][name]['functions'])}) faces {flow['from']}: narrow the flow."
                    )
    return errors


def _widest(topology: dict, key: str, default: int) -> int:
    return int((topology.get("policy") or {}).get(key, default))


def operators(topology: dict) -> list[str]:
    """The operators' ranges are IPv4 networks no wider than the policy allows."""
    errors = []
    widest = _widest(topology, "operators_widest_prefix", 32)
    for index, cidr in enumerate(as_list(topology.get("operators"))):
        try:
            net = ipaddress.ip_network(str(cidr), strict=True)
        except ValueError as exc:
            errors.append(f"operators[{index}]: {cidr!r} is not a network in CIDR form ({exc}): e.g. 198.51.100.0/28.")
            continue
        if net.version != FAMILY:
            errors.append(f"operators[{index}]: {cidr} is an IPv{net.version} network; the firewall writes IPv{FAMILY} rules only.")
        elif net.prefixlen < widest:
            errors.append(
                f"operators[{index}]: {net} is wider than policy.operators_widest_prefix (/{widest}) allows: "
                "list the operators' own ranges, or state a wider policy in this environment's topology.yml."
            )
    return errors


def egress(topology: dict) -> list[str]:
    """Declared paths out: known hosts and services (tcp or udp), specific destinations."""
    errors = []
    ends = (set(topology["zones"]) | set(topology["functions"]) | set(topology["hosts"]) | {"all"})
    widest = _widest(topology, "egress_widest_prefix", 32)
    for index, need in enumerate(topology.get("egress") or []):
        where = f"egress[{index}]"
        for end in as_list(need.get("hosts", "all")):
            if end not in ends:
                errors.append(f"{where}.hosts: {end!r} is not a zone, a function, a host or 'all'.")
        errors += _known_services(where, need["services"], topology)
        for name in need["services"]:
            proto = (topology["services"].get(name) or {}).get("proto")
            if proto and proto not in ("tcp", "udp"):
                errors.append(f"{where}.services: {name!r} is a {proto} service; a declared path carries tcp or udp services.")
        target = str(need["to"])
        if OUTSIDE_PROBE_SERVICE in need["services"] and "/" in target:
            errors.append(
                f"{where}.to: {target} is a network, but a path carrying {OUTSIDE_PROBE_SERVICE} leads to an outside prober, "
                "one machine that the monitoring hosts read: give its address or DNS name."
            )
        if "/" in target or target.replace(".", "").isdigit() or ":" in target:
            net = _network(target if "/" in target else f"{target}/{32 if ':' not in target else 128}")
            if net is None:
                errors.append(f"{where}.to: {target!r} is not an address or a network in CIDR form.")
            elif net.version != FAMILY:
                errors.append(f"{where}.to: {target} is IPv{net.version}; the firewall writes IPv{FAMILY} rules only.")
            elif net.prefixlen < widest:
                errors.append(
                    f"{where}.to: {net} is wider than policy.egress_widest_prefix (/{widest}) allows: "
                    "name the server (its address), or state a wider policy in this environment's topology.yml."
                )
    return errors


def placement(topology: dict) -> list[str]:  # noqa: C901 - one rule per function, in the order of the docs
    """HA pairs over two sites, a quorum that survives any one site, a witness and backups off the data."""
    errors = []
    site_of = {name: host["site"] for name, host in topology["hosts"].items()}
    sites = topology["sites"]
    for function, spec in topology["functions"].items():
        label = spec.get("pair")
        if not label:
            continue
        found = hosts_with(topology, function)
        if len(found) < 2:
            errors.append(f"hosts: {len(found)} host(s) with function {function!r}; the platform needs two {label}, one per site (HA).")
        elif len({site_of[m] for m in found}) < 2:
            errors.append(
                f"hosts.{found[-1]}.site: all {label} ({', '.join(found)}) are in site {site_of[found[0]]}; "
                f"HA needs them in different sites: move {found[-1]} to another site."
            )
    if not hosts_with(topology, "bastion"):
        errors.append("hosts: no host has function 'bastion'; SSH enters the platform through a bastion only (SEG): add one.")
    # Quorum: a witness in a third site, the etcd cluster keeps a majority without any one site.
    db_hosts = hosts_with(topology, "db")
    db_sites = {site_of[h] for h in db_hosts}
    witnesses = hosts_with(topology, "witness")
    if not witnesses:
        errors.append("hosts: no host has function 'witness'; quorum needs a witness in a third site (DR): add it to a host of that site.")
    elif not any(site_of[w] not in db_sites and (sites.get(site_of[w]) or {}).get("purpose") == "witness" for w in witnesses):
        errors.append(
            f"hosts.{witnesses[0]}.site: the witness is in site {site_of[witnesses[0]]}, which is not a third site "
            f"(database sites: {', '.join(sorted(map(str, db_sites)))}; it must be a site with purpose 'witness'): move it."
        )
    for name in db_hosts:
        if (sites.get(site_of[name]) or {}).get("purpose") == "witness":
            errors.append(f"hosts.{name}.site: {name} is a database server in the witness site {site_of[name]}: the witness site holds no database; move it.")
    quorum = hosts_with(topology, "etcd")
    if len(quorum) < 3 or len(quorum) % 2 == 0:
        errors.append(
            f"hosts: {len(quorum)} host(s) with function 'etcd' ({', '.join(quorum) or 'none'}); the quorum needs an odd "
            "number, at least three, spread over three sites: add or remove a member."
        )
    else:
        for site, count in sorted(Counter(site_of[h] for h in quorum).items()):
            if 2 * (len(quorum) - count) <= len(quorum):
                errors.append(
                    f"sites.{site}: {count} of the {len(quorum)} etcd members are in site {site}; losing it would lose the "
                    "majority (HA): spread the members so that no site holds half or more."
                )
    # Backups: off the database hosts, and in another site than each database they protect.
    for name in hosts_with(topology, "backup_repository"):
        if name in db_hosts:
            errors.append(f"hosts.{name}.functions: {name} is both a database server and its backup repository: put the backups on another host (DR).")
        shared = sorted(h for h in db_hosts if site_of[h] == site_of[name] and h != name)
        if shared:
            errors.append(
                f"hosts.{name}.site: the backup repository is in site {site_of[name]}, with the database(s) it protects "
                f"({', '.join(shared)}): a site lost would take both; move it to another site (DR)."
            )
    return errors


# Every family, in the order their messages are reported. Each takes (topology, others).
FAMILIES: tuple[tuple[str, Callable], ...] = (
    ("ranges", ranges),
    ("identity", identity),
    ("names", lambda t, _o: names(t)),
    ("hosts", lambda t, _o: hosts(t)),
    ("addresses", lambda t, _o: addresses(t)),
    ("floating", lambda t, _o: floating(t)),
    ("locality", lambda t, _o: locality(t)),
    ("services", lambda t, _o: services(t)),
    ("operators", lambda t, _o: operators(t)),
    ("flows", lambda t, _o: flows(t)),
    ("exposure", lambda t, _o: exposure(t)),
    ("egress", lambda t, _o: egress(t)),
    ("placement", lambda t, _o: placement(t)),
)
