"""The platform's topology, one file per environment: ``inventories/<env>/topology.yml``.

Sites, zones, hosts and the flow matrix are written there once. The inventory plugin
(``plugins/inventory/rempart_topology.py``) turns the file into Ansible groups and host variables;
every later role (firewall, WireGuard, monitoring, lab containers, docs tables) derives its facts
from it.

``validate()`` checks a topology, alone and against the other environments, and returns messages
that name the place in the file, the host and the fix. Nothing is touched while one is left.
"""

from __future__ import annotations

import ipaddress
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
INVENTORIES = REPO / "inventories"
TOPOLOGY_FILE = "topology.yml"

ENVIRONMENTS = ("lab", "dev", "test", "prod")
ZONES = ("edge", "app", "data", "mgmt")
SITE_PURPOSES = ("primary", "secondary", "witness")
PROTECTION_LEVELS = ("normal", "high", "very-high")
# What a host does. A host may do several things (mon1: monitoring, logs, backups, quorum witness).
FUNCTIONS = {
    "bastion": "the only SSH entry from outside",
    "waf": "web application firewall and TLS entry point",
    "app": "application server",
    "db": "PostgreSQL server",
    "etcd": "member of the etcd cluster that holds Patroni's leader lock",
    "witness": "quorum witness in a third site",
    "monitoring": "Prometheus, Alertmanager and probes",
    "log_collector": "central log collector",
    "backup_repository": "backup repository",
}
# Functions that hold the platform's data: they must sit in an allowed jurisdiction (LOC).
DATA_FUNCTIONS = ("db", "backup_repository", "log_collector")
# Functions that come in pairs spread over two sites (HA).
PAIRED_FUNCTIONS = {"db": "database servers", "app": "app servers", "waf": "WAFs"}
ADDRESS_KINDS = ("underlay", "overlay", "public")
# Flow ends that are not zones or functions.
SPECIAL_ENDS = {
    "internet": "anything outside the platform",
    "operators": "the operators' own address ranges (topology key operators), on the public side",
    "all": "every host of the environment",
}
# Ends that are outside the platform: their flows arrive on a host's public address.
OUTSIDE_ENDS = ("internet", "operators")
PROTOCOLS = ("tcp", "udp", "vrrp", "icmp")
REQUIREMENT_IDS = (
    "SEG", "HARD", "ENV", "WAF", "ENC", "KEY", "DOC", "DR", "HA", "AVAIL", "LINK", "MON", "STATUS",
    "AUDIT", "LOC", "ISMS",
)

TOP_KEYS = {
    "plugin", "extends", "environment", "jurisdictions_allowed", "ranges", "identity", "operators", "egress",
    "sites", "zones", "hosts", "flows",
}
HOST_KEYS = {"site", "zone", "functions", "underlay", "overlay", "public", "description"}
SITE_KEYS = {"jurisdiction", "purpose", "description"}
ZONE_KEYS = {"protection", "reason"}
FLOW_KEYS = {"from", "to", "ports", "proto", "purpose", "requirements"}
IDENTITY_KEYS = {"ca_name", "vault_id", "ssh_key_name"}
EGRESS_KEYS = {"to", "service", "hosts", "proto", "ports", "purpose", "requirements"}
# What a declared path out of the platform serves; roles find their servers by it (common: time, updates).
EGRESS_SERVICES = ("updates", "time", "dns", "other")


class TopologyError(ValueError):
    """The topology is wrong; ``errors`` lists every problem found."""

    def __init__(self, path: Path | str, errors: list[str]):
        self.path = path
        self.errors = errors
        super().__init__(f"{path}: {len(errors)} problem(s) in the topology:\n- " + "\n- ".join(errors))


@dataclass(frozen=True)
class Flow:
    src: str
    dst: str
    proto: str
    ports: tuple[int, ...]
    purpose: str
    requirements: tuple[str, ...]


def load(path: Path) -> dict:
    """One environment's topology, on top of the file it ``extends`` (its keys win)."""
    path = Path(path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise TopologyError(path, ["the file must be a mapping with environment, sites, zones, hosts and flows"])
    base_name = data.get("extends")
    if base_name:
        base_path = (path.parent / str(base_name)).resolve()
        if not base_path.is_file():
            raise TopologyError(path, [f"extends: {base_name!r} does not exist next to {path.name}: fix the path."])
        base = yaml.safe_load(base_path.read_text(encoding="utf-8")) or {}
        data = {**base, **data}
    return data


def load_all(inventories: Path = INVENTORIES) -> dict[str, dict]:
    """Every environment's topology, by environment name (the folder's name)."""
    found = {}
    for path in sorted(inventories.glob(f"*/{TOPOLOGY_FILE}")):
        found[path.parent.name] = load(path)
    return found


def _as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _networks(topology: dict) -> dict[str, ipaddress.IPv4Network | ipaddress.IPv6Network]:
    nets = {}
    for kind, cidr in (topology.get("ranges") or {}).items():
        try:
            nets[kind] = ipaddress.ip_network(str(cidr), strict=True)
        except ValueError:
            continue
    return nets


def _unknown_keys(where: str, given: dict, allowed: set[str], errors: list[str]) -> None:
    for key in sorted(set(given) - allowed):
        errors.append(f"{where}.{key} is not a known key (known: {', '.join(sorted(allowed))}): fix the spelling or remove it.")


def validate(topology: dict, others: dict[str, dict] | None = None) -> list[str]:  # noqa: C901, PLR0912, PLR0915
    """Every problem of ``topology``; ``others`` are the other environments' topologies, by name."""
    errors: list[str] = []
    env = topology.get("environment")
    _unknown_keys("topology", topology, TOP_KEYS, errors)
    if env not in ENVIRONMENTS:
        errors.append(f"environment: {env!r} is not one of {', '.join(ENVIRONMENTS)}: set it to the environment this inventory describes.")

    # Ranges: valid networks, one per kind, disjoint from each other and from every other environment.
    ranges = topology.get("ranges") or {}
    _unknown_keys("ranges", ranges, set(ADDRESS_KINDS), errors)
    for kind in ("underlay", "overlay"):
        if kind not in ranges:
            errors.append(f"ranges.{kind} is missing: give the environment's {kind} network in CIDR form.")
    for kind, cidr in ranges.items():
        try:
            ipaddress.ip_network(str(cidr), strict=True)
        except ValueError as exc:
            errors.append(f"ranges.{kind}: {cidr!r} is not a network in CIDR form ({exc}).")
    nets = _networks(topology)
    kinds = list(nets)
    for i, a in enumerate(kinds):
        for b in kinds[i + 1:]:
            if nets[a].overlaps(nets[b]):
                errors.append(f"ranges.{a} ({nets[a]}) overlaps ranges.{b} ({nets[b]}): give each its own network.")
    for other_env, other in (others or {}).items():
        if other_env == env or other.get("environment") == env:
            continue
        for kind, net in nets.items():
            for other_kind, other_net in _networks(other).items():
                if net.overlaps(other_net):
                    errors.append(
                        f"ranges.{kind} ({net}) overlaps the {other_env} environment's ranges.{other_kind} "
                        f"({other_net}): environments are separated (ENV), give {env} its own ranges."
                    )

    # Identity: each environment has its own CA, vault id and SSH key.
    identity = topology.get("identity") or {}
    _unknown_keys("identity", identity, IDENTITY_KEYS, errors)
    for key in sorted(IDENTITY_KEYS):
        if not identity.get(key):
            errors.append(f"identity.{key} is missing: each environment has its own CA, vault id and SSH key (ENV).")
    for other_env, other in (others or {}).items():
        if other_env == env or other.get("environment") == env:
            continue
        other_identity = other.get("identity") or {}
        for key in sorted(IDENTITY_KEYS):
            if identity.get(key) and identity.get(key) == other_identity.get(key):
                errors.append(
                    f"identity.{key}: {identity[key]!r} is also the {other_env} environment's: "
                    f"environments must not share a {key} (ENV)."
                )

    # Jurisdictions and sites.
    allowed = [str(j) for j in _as_list(topology.get("jurisdictions_allowed"))]
    if not allowed:
        errors.append("jurisdictions_allowed is missing: list the country codes where data may be hosted (LOC), e.g. [CH].")
    sites = topology.get("sites") or {}
    if not sites:
        errors.append("sites is empty: declare the sites (data centres) the hosts live in.")
    for name, site in sites.items():
        site = site or {}
        _unknown_keys(f"sites.{name}", site, SITE_KEYS, errors)
        if not re.fullmatch(r"[A-Z]{2}", str(site.get("jurisdiction", ""))):
            errors.append(f"sites.{name}.jurisdiction: {site.get('jurisdiction')!r} is not a two-letter country code (ISO 3166), e.g. CH.")
        if site.get("purpose") not in SITE_PURPOSES:
            errors.append(f"sites.{name}.purpose: {site.get('purpose')!r} is not one of {', '.join(SITE_PURPOSES)}.")

    # Zones: the four zones, each with its protection level and the reason for it (SEG).
    zones = topology.get("zones") or {}
    for name, zone in zones.items():
        zone = zone or {}
        if name not in ZONES:
            errors.append(f"zones.{name} is not a zone of the reference architecture ({', '.join(ZONES)}).")
        _unknown_keys(f"zones.{name}", zone, ZONE_KEYS, errors)
        if zone.get("protection") not in PROTECTION_LEVELS:
            errors.append(f"zones.{name}.protection: {zone.get('protection')!r} is not one of {', '.join(PROTECTION_LEVELS)}.")
        if not str(zone.get("reason", "")).strip():
            errors.append(f"zones.{name}.reason is missing: say in one line why the zone needs that protection (SEG).")
    for name in ZONES:
        if name not in zones:
            errors.append(f"zones.{name} is missing: declare it with its protection level and reason.")

    # Hosts.
    hosts = topology.get("hosts") or {}
    if not hosts:
        errors.append("hosts is empty: declare the environment's hosts.")
    seen_addresses: dict[str, str] = {}
    for name, host in hosts.items():
        host = host or {}
        where = f"hosts.{name}"
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,62}", str(name)):
            errors.append(f"{where}: the host name must be lower case letters, digits and '-', starting with a letter.")
        _unknown_keys(where, host, HOST_KEYS, errors)
        if "site" not in host:
            errors.append(f"{where}.site is missing: say which site ({', '.join(sites)}) the host is in.")
        elif host["site"] not in sites:
            errors.append(f"{where}.site: {host['site']!r} is not a declared site ({', '.join(sites)}): declare it under sites or fix the name.")
        zone = host.get("zone")
        if zone is None or zone == []:
            errors.append(f"{where}.zone is missing: every host sits in exactly one zone ({', '.join(ZONES)}).")
        elif isinstance(zone, list):
            if len(zone) > 1:
                errors.append(f"{where}.zone: the host is in {len(zone)} zones ({', '.join(map(str, zone))}); a host sits in exactly one zone: split its functions over two hosts or pick one zone.")
            else:
                errors.append(f"{where}.zone: write the zone as a name, not a list: zone: {zone[0]}.")
        elif zone not in zones:
            errors.append(f"{where}.zone: {zone!r} is not a declared zone ({', '.join(zones)}).")
        functions = _as_list(host.get("functions"))
        if not functions:
            errors.append(f"{where}.functions is missing: say what the host does ({', '.join(FUNCTIONS)}).")
        for function in functions:
            if function not in FUNCTIONS:
                errors.append(f"{where}.functions: {function!r} is not a known function ({', '.join(FUNCTIONS)}).")
        for kind in ("underlay", "overlay"):
            if kind not in host:
                errors.append(f"{where}.{kind} is missing: give the host's {kind} address in ranges.{kind}.")
        for kind in ADDRESS_KINDS:
            if kind not in host:
                continue
            try:
                address = ipaddress.ip_address(str(host[kind]))
            except ValueError:
                errors.append(f"{where}.{kind}: {host[kind]!r} is not an IP address.")
                continue
            if kind in nets and address not in nets[kind]:
                errors.append(f"{where}.{kind}: {address} is outside ranges.{kind} ({nets[kind]}): pick an address in it.")
            if str(address) in seen_addresses:
                errors.append(f"{where}.{kind}: {address} is already {seen_addresses[str(address)]}'s address: addresses are unique.")
            else:
                seen_addresses[str(address)] = name

    def hosts_with(function: str) -> list[str]:
        return sorted(n for n, h in hosts.items() if function in _as_list((h or {}).get("functions")))

    def site_of(host: str):
        return (hosts.get(host) or {}).get("site")

    # HA: paired functions spread over different sites.
    for function, label in PAIRED_FUNCTIONS.items():
        members = hosts_with(function)
        if len(members) < 2:
            errors.append(f"hosts: {len(members)} host(s) with function {function!r}; the platform needs two {label}, one per site (HA).")
            continue
        member_sites = {site_of(m) for m in members}
        if len(member_sites) < 2:
            errors.append(
                f"hosts.{members[-1]}.site: all {label} ({', '.join(members)}) are in site {site_of(members[0])}; "
                f"HA needs them in different sites: move {members[-1]} to another site."
            )

    # LOC: data-holding hosts only in allowed jurisdictions.
    for name, host in hosts.items():
        host = host or {}
        held = [f for f in _as_list(host.get("functions")) if f in DATA_FUNCTIONS]
        site = sites.get(host.get("site")) or {}
        if held and allowed and site.get("jurisdiction") not in allowed:
            errors.append(
                f"hosts.{name}.site: {name} holds data ({', '.join(held)}) but site {host.get('site')} is in "
                f"{site.get('jurisdiction')}, outside jurisdictions_allowed ({', '.join(allowed)}) (LOC): "
                "move it to a site in an allowed jurisdiction."
            )

    # Quorum: a witness in a third site, neither of the database servers' sites.
    witnesses = hosts_with("witness")
    db_sites = {site_of(h) for h in hosts_with("db")}
    if not witnesses:
        errors.append("hosts: no host has function 'witness'; quorum needs a witness in a third site (DR): add it to a host of that site.")
    elif not any(site_of(w) not in db_sites and (sites.get(site_of(w)) or {}).get("purpose") == "witness" for w in witnesses):
        errors.append(
            f"hosts.{witnesses[0]}.site: the witness is in site {site_of(witnesses[0])}, which is not a third site "
            f"(database sites: {', '.join(sorted(map(str, db_sites)))}; it must be a site with purpose 'witness'): move it."
        )

    # Operators: where the operators connect from (the only sources of the bastion's SSH, SEG).
    operators = _as_list(topology.get("operators"))
    for index, cidr in enumerate(operators):
        try:
            ipaddress.ip_network(str(cidr), strict=True)
        except ValueError as exc:
            errors.append(f"operators[{index}]: {cidr!r} is not a network in CIDR form ({exc}): e.g. 198.51.100.0/28.")
    for index, flow in enumerate(topology.get("flows") or []):
        if (flow or {}).get("from") == "operators" and not operators:
            errors.append(
                f"flows[{index}].from is 'operators' but the topology has no operators: list the operators' "
                "address ranges (operators: [CIDR, ...]) so that only they reach it."
            )

    # Ends: zones, functions, hosts and the special ends.
    ends = set(zones) | set(FUNCTIONS) | set(SPECIAL_ENDS) | set(hosts)

    # Egress: each host's own needs outside the platform (package updates, time, DNS), by declared paths.
    for index, need in enumerate(topology.get("egress") or []):
        need = need or {}
        where = f"egress[{index}]"
        _unknown_keys(where, need, EGRESS_KEYS, errors)
        target = str(need.get("to", "")).strip()
        if not target:
            errors.append(f"{where}.to is missing: give the address, network or DNS name of the declared path (e.g. the update proxy).")
        elif not re.fullmatch(r"[A-Za-z0-9.-]+", target.split("/")[0]):
            errors.append(f"{where}.to: {target!r} is not an address, a network or a DNS name.")
        for end in _as_list(need.get("hosts", "all")):
            if end not in ends - set(OUTSIDE_ENDS):
                errors.append(f"{where}.hosts: {end!r} is not a zone, a function, a host or 'all'.")
        if need.get("proto") not in ("tcp", "udp"):
            errors.append(f"{where}.proto: {need.get('proto')!r} is not tcp or udp.")
        if need.get("service") not in EGRESS_SERVICES:
            errors.append(f"{where}.service: {need.get('service')!r} is not one of {', '.join(EGRESS_SERVICES)}: say what the path serves.")
        ports = _as_list(need.get("ports"))
        if not ports:
            errors.append(f"{where}.ports is missing: a declared path names its port(s).")
        for port in ports:
            if not isinstance(port, int) or not 0 < port < 65536:
                errors.append(f"{where}.ports: {port!r} is not a port number (1-65535).")
        if not str(need.get("purpose", "")).strip():
            errors.append(f"{where}.purpose is missing: say in a few words what the hosts need it for.")
        for rid in _as_list(need.get("requirements")):
            if rid not in REQUIREMENT_IDS:
                errors.append(f"{where}.requirements: {rid!r} is not a requirement ID ({', '.join(REQUIREMENT_IDS)}).")

    # Flows.
    flows = topology.get("flows") or []
    if not flows:
        errors.append("flows is empty: the flow matrix lists every allowed flow; nothing else may flow (SEG).")
    for index, flow in enumerate(flows):
        flow = flow or {}
        where = f"flows[{index}]"
        _unknown_keys(where, flow, FLOW_KEYS, errors)
        for key in ("from", "to"):
            end = flow.get(key)
            if end not in ends:
                errors.append(
                    f"{where}.{key}: {end!r} is not a zone, a function, a host or one of {', '.join(SPECIAL_ENDS)}: "
                    f"use one of the zones ({', '.join(zones)}) or functions ({', '.join(FUNCTIONS)})."
                )
        if flow.get("to") in OUTSIDE_ENDS:
            errors.append(f"{where}.to: flows towards {flow.get('to')} are host needs (egress: updates, time), not zone flows.")
        if flow.get("from") in OUTSIDE_ENDS and flow.get("to") in ends:
            exposed = [h for h in sorted(hosts) if flow.get("to") in groups_of(topology, h)]
            for name in exposed:
                if not (hosts.get(name) or {}).get("public"):
                    errors.append(
                        f"{where}.to: {flow.get('to')!r} includes {name}, which has no public address: flows from "
                        f"{flow.get('from')} arrive on public addresses; give hosts.{name}.public or narrow the flow."
                    )
        proto = flow.get("proto")
        if proto not in PROTOCOLS:
            errors.append(f"{where}.proto: {proto!r} is not one of {', '.join(PROTOCOLS)}.")
        ports = _as_list(flow.get("ports"))
        if proto in ("tcp", "udp"):
            if not ports:
                errors.append(f"{where}.ports is missing: a {proto} flow names its port(s).")
            for port in ports:
                if not isinstance(port, int) or not 0 < port < 65536:
                    errors.append(f"{where}.ports: {port!r} is not a port number (1-65535).")
        elif ports:
            errors.append(f"{where}.ports: a {proto} flow has no ports; remove them.")
        if not str(flow.get("purpose", "")).strip():
            errors.append(f"{where}.purpose is missing: say in a few words why this flow exists.")
        requirements = _as_list(flow.get("requirements"))
        if not requirements:
            errors.append(f"{where}.requirements is missing: name the requirement IDs this flow serves (e.g. [HA]).")
        for rid in requirements:
            if rid not in REQUIREMENT_IDS:
                errors.append(f"{where}.requirements: {rid!r} is not a requirement ID ({', '.join(REQUIREMENT_IDS)}).")
    return errors


def check(path: Path, inventories: Path | None = None) -> dict:
    """Load and validate one environment against the others; raise TopologyError when wrong."""
    path = Path(path)
    topology = load(path)
    root = inventories if inventories is not None else path.parent.parent
    others = {env: t for env, t in load_all(root).items() if env != path.parent.name}
    errors = validate(topology, others)
    if path.parent.name != topology.get("environment") and topology.get("environment") in ENVIRONMENTS:
        errors.append(
            f"environment: {topology.get('environment')!r} but the file is in inventories/{path.parent.name}/: "
            "an inventory describes the environment it is named after."
        )
    if errors:
        raise TopologyError(path, errors)
    return topology


# --- derived views --------------------------------------------------------------------------------


def groups_of(topology: dict, host: str) -> set[str]:
    """Names a flow end may use that include ``host``: its zone, functions, own name, 'all'."""
    spec = topology["hosts"][host] or {}
    zone = spec.get("zone") if isinstance(spec.get("zone"), str) else None
    return {zone, host, "all", *(str(f) for f in _as_list(spec.get("functions")))} - {None}


def members(topology: dict, end: str) -> list[str]:
    """Hosts a flow end stands for (empty for 'internet')."""
    return sorted(h for h in topology["hosts"] if end in groups_of(topology, h))


def flows(topology: dict) -> list[Flow]:
    return [
        Flow(
            src=f["from"], dst=f["to"], proto=f["proto"], ports=tuple(_as_list(f.get("ports"))),
            purpose=str(f["purpose"]).strip(), requirements=tuple(_as_list(f["requirements"])),
        )
        for f in topology.get("flows") or []
    ]


def main(argv: list[str] | None = None) -> int:
    """``python -m rempart topology [ENV ...]``: validate environments (all by default)."""
    names = argv or sorted(load_all())
    status = 0
    for name in names:
        path = INVENTORIES / name / TOPOLOGY_FILE
        try:
            check(path)
        except FileNotFoundError:
            print(f"topology: {path} does not exist", file=sys.stderr)
            status = 1
        except TopologyError as exc:
            print(f"topology: {exc}", file=sys.stderr)
            status = 1
        else:
            print(f"topology: {name}: valid")
    return status


# --- documentation ------------------------------------------------------------------------------------


def _md(text) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def render_page(topologies: dict[str, dict]) -> str:
    """docs/topology.md: zones, flow matrix and every environment's sites and hosts."""
    reference = next(iter(topologies.values()))
    lines = [
        "<!-- Generated by `make docs` from inventories/reference.yml and inventories/*/topology.yml: do not edit. -->",
        "",
        "# Topology",
        "",
        "Sites, zones, hosts and the flow matrix are written once per environment, in",
        "`inventories/<env>/topology.yml` (zones and flows shared in `inventories/reference.yml`), and",
        "validated before any run. Everything below is generated from those files.",
        "",
        "## Zones (SEG)",
        "",
        "Each host sits in exactly one zone; the zone's protection level follows from what it holds.",
        "",
        "| Zone | Protection | Why |",
        "|---|---|---|",
    ]
    for name, zone in reference["zones"].items():
        lines.append(f"| `{name}` | {zone['protection']} | {_md(zone['reason'])} |")
    lines += [
        "",
        "## Flow matrix (SEG)",
        "",
        "Nothing else may flow. Ends are zones, functions or hosts; `internet` is anything outside the",
        "platform, `all` every host of the environment.",
        "",
        "| From | To | Protocol | Ports | Purpose | Requirements |",
        "|---|---|---|---|---|---|",
    ]
    for flow in flows(reference):
        ports = ", ".join(map(str, flow.ports)) or "–"
        lines.append(
            f"| `{flow.src}` | `{flow.dst}` | {flow.proto} | {ports} | {_md(flow.purpose)} | {', '.join(flow.requirements)} |"
        )
    lines += _admission_section(next(iter(topologies.items())))
    lines += ["", "## Functions", "", "| Function | What the host does |", "|---|---|"]
    lines += [f"| `{name}` | {text} |" for name, text in FUNCTIONS.items()]
    for env, topo in topologies.items():
        identity = topo["identity"]
        lines += [
            "",
            f"## Environment `{env}`",
            "",
            f"Address ranges: {', '.join(f'{kind} `{cidr}`' for kind, cidr in topo['ranges'].items())}. "
            f"CA: {identity['ca_name']}; vault id `{identity['vault_id']}`; SSH key `{identity['ssh_key_name']}`. "
            f"Data may be hosted in: {', '.join(topo['jurisdictions_allowed'])}.",
            "",
            "| Site | Jurisdiction | Purpose | Description |",
            "|---|---|---|---|",
        ]
        for name, site in topo["sites"].items():
            lines.append(f"| `{name}` | {site['jurisdiction']} | {site['purpose']} | {_md(site.get('description', ''))} |")
        operators = ", ".join(f"`{cidr}`" for cidr in _as_list(topo.get("operators"))) or "none declared"
        lines += ["", f"Operators connect from: {operators}."]
        if topo.get("egress"):
            lines += [
                "",
                "Declared paths out of the platform (each host's own needs; the firewall opens nothing else):",
                "",
                "| Hosts | Service | To | Protocol | Ports | Purpose |",
                "|---|---|---|---|---|---|",
            ]
            for need in topo["egress"]:
                hosts = ", ".join(f"`{h}`" for h in _as_list(need.get("hosts", "all")))
                ports = ", ".join(map(str, _as_list(need["ports"])))
                lines.append(
                    f"| {hosts} | {need['service']} | `{need['to']}` | {need['proto']} | {ports} | {_md(need['purpose'])} |"
                )
        lines += ["", "| Host | Site | Zone | Functions | Underlay | Overlay | Public |", "|---|---|---|---|---|---|---|"]
        for name, host in topo["hosts"].items():
            lines.append(
                f"| `{name}` | {host['site']} | {host['zone']} | {', '.join(_as_list(host['functions']))} "
                f"| {host['underlay']} | {host['overlay']} | {host.get('public', '–')} |"
            )
    lines.append("")
    return "\n".join(lines)


def firewall_filters():
    """The firewall role's rule derivation (roles/firewall/filter_plugins/firewall.py), the one the hosts use."""
    import importlib.util  # noqa: PLC0415

    spec = importlib.util.spec_from_file_location("rempart_firewall_filters", REPO / "roles/firewall/filter_plugins/firewall.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _admission_section(named: tuple[str, dict]) -> list[str]:
    """What each host of one environment admits and sends, as the firewall role renders it."""
    env, topo = named
    filters = firewall_filters()
    addresses = {}
    for name, host in topo["hosts"].items():
        for kind in ADDRESS_KINDS:
            if host.get(kind):
                addresses[f"{host[kind]}/32"] = name

    def peers(rule) -> str:
        if rule["peers"] is None:
            return "anyone"
        operators = {str(ipaddress.ip_network(str(c))) for c in _as_list(topo.get("operators"))}
        return ", ".join(addresses.get(p, f"operators {p}" if p in operators else p) for p in rule["peers"])

    def ports(rule) -> str:
        return rule["proto"] + (" " + ", ".join(map(str, rule["ports"])) if rule["ports"] else "")

    lines = [
        "",
        "## What each host admits (SEG)",
        "",
        f"Derived from the flow matrix by the firewall role, shown for the `{env}` environment (the others differ",
        "only in addresses). Inside the platform everything runs over the WireGuard overlay; the private",
        "underlay carries WireGuard between the mesh's peers and nothing else; the declared `egress` paths",
        "are added on every host. Everything else is dropped and counted, in and out.",
        "",
        "| Host | Admits (from: what) | Sends (to: what) |",
        "|---|---|---|",
    ]
    bare = {**topo, "egress": []}
    for host in topo["hosts"]:
        rules = filters.firewall_rules(bare, host)
        inbound = [f"{peers(r)} ({r['interface']}): {ports(r)}" for r in rules if r["direction"] == "in" and r["interface"] != "underlay"]
        outbound = [f"{peers(r)}: {ports(r)}" for r in rules if r["direction"] == "out" and r["interface"] != "underlay"]
        lines.append(f"| `{host}` | {'<br>'.join(inbound) or '–'} | {'<br>'.join(outbound) or '–'} |")
    return lines
