"""The platform's topology, one file per environment: ``inventories/<env>/topology.yml``.

Vocabulary, services, sites, zones, hosts and the flow matrix are written there once (the shared part
in ``inventories/reference.yml``, which each environment ``extends``). The inventory plugin
(``plugins/inventory/rempart_topology.py``) turns the file into Ansible groups and host variables;
every role (firewall, WireGuard, sshd, monitoring, lab containers, docs tables) derives its facts from it.

``check()`` reads a file and refuses it, before any host is touched, with messages that name the file,
the line, the place (``hosts.db1.underlay``) and the fix: first its shape (``schema/topology.schema.json``),
then the rules of ``rules.py``, alone and against the other environments. Never a traceback.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from . import rules, schema
from .rules import ADDRESS_KINDS, OUTSIDE_ENDS, OUTSIDE_PROBE_SERVICE, SPECIAL_ENDS, as_list, groups_of, hosts_with, members
from .source import Source, TopologyError, display, locate, merge, read

REPO = Path(__file__).resolve().parents[2]
INVENTORIES = REPO / "inventories"
TOPOLOGY_FILE = "topology.yml"

ENVIRONMENTS = schema.enum("properties", "environment")
REQUIREMENT_IDS = schema.enum("$defs", "requirement")
PROTOCOLS = schema.enum("$defs", "service", "properties", "proto")

__all__ = [
    "ADDRESS_KINDS", "ENVIRONMENTS", "INVENTORIES", "OUTSIDE_ENDS", "OUTSIDE_PROBE_SERVICE", "PROTOCOLS", "REQUIREMENT_IDS", "SPECIAL_ENDS",
    "TOPOLOGY_FILE", "Flow", "Opening", "TopologyError", "as_list", "check", "flows", "groups_of", "hosts_with",
    "clients", "entry_name", "inventory_groups", "load", "outside_probers", "load_all", "members", "openings", "port", "reached", "read", "validate",
]


@dataclass(frozen=True)
class Flow:
    src: str
    dst: str
    services: tuple[str, ...]
    purpose: str
    requirements: tuple[str, ...]


@dataclass(frozen=True)
class Opening:
    """One service of one flow: what a firewall opens for it."""

    index: int
    src: str
    dst: str
    service: str
    proto: str
    ports: tuple[int, ...]
    purpose: str


def sources(path: Path) -> list[Source]:
    """The file and the one it extends, each as read (shape errors of either raise TopologyError)."""
    own = read(path)
    found = [own]
    errors = [locate(message, [own]) for message in schema.shape_errors(own.data)]
    base_name = own.data.get("extends")
    if base_name and isinstance(base_name, str):
        base_path = (Path(path).parent / base_name).resolve()
        if not base_path.is_file():
            errors.append(locate(f"extends: {base_name!r} does not exist next to {Path(path).name}: fix the path.", [own]))
        else:
            base = read(base_path)
            found.append(base)
            errors += [locate(message, [base]) for message in schema.shape_errors(base.data)]
    if errors:
        raise TopologyError(display(path), errors)
    return found


def load(path: Path) -> dict:
    """One environment's topology, on top of the file it ``extends``; its shape checked, not its rules."""
    return _merged(sources(Path(path)))


def _merged(found: list[Source]) -> dict:
    """The environment's file on top of the one it extends (or alone)."""
    return merge(found[1].data, found[0].data) if len(found) > 1 else dict(found[0].data)


def load_all(inventories: Path = INVENTORIES) -> dict[str, dict]:
    """Every environment's topology whose file can be read, by environment name (the folder's name)."""
    found = {}
    for path in sorted(Path(inventories).glob(f"*/{TOPOLOGY_FILE}")):
        try:
            found[path.parent.name] = load(path)
        except TopologyError:
            continue  # reported when that environment itself is checked
    return found


def validate(topology: dict, others: dict[str, dict] | None = None) -> list[str]:
    """Every problem of a merged ``topology``; ``others`` are the other environments' topologies, by name."""
    errors = schema.shape_errors(topology) + schema.missing_keys(topology)
    if errors:
        return errors
    env = topology["environment"]
    others = {name: other for name, other in (others or {}).items() if name != env and other.get("environment") != env}
    for _family, check_family in rules.FAMILIES:
        errors += check_family(topology, others)
    return errors


def check(path: Path, inventories: Path | None = None) -> dict:
    """Read and validate one environment against the others; raise TopologyError when wrong."""
    path = Path(path)
    found = sources(path)
    topology = _merged(found)
    root = Path(inventories) if inventories is not None else path.parent.parent
    others = {env: t for env, t in load_all(root).items() if env != path.parent.name}
    errors = validate(topology, others)
    environment = topology.get("environment")
    if not errors and path.parent.name != environment:
        errors.append(
            f"environment: {environment!r} but the file is in inventories/{path.parent.name}/: "
            "an inventory describes the environment it is named after."
        )
    if errors:
        raise TopologyError(display(path), [locate(message, found) for message in errors])
    return topology


# --- derived views --------------------------------------------------------------------------------


def flows(topology: dict) -> list[Flow]:
    return [
        Flow(src=f["from"], dst=f["to"], services=tuple(f["services"]), purpose=" ".join(str(f["purpose"]).split()),
             requirements=tuple(as_list(f["requirements"])))
        for f in topology.get("flows") or []
    ]


def openings(topology: dict) -> list[Opening]:
    """Each (flow, service) of the matrix with its protocol and ports, in the matrix's order."""
    found = []
    for index, flow in enumerate(flows(topology)):
        for name in flow.services:
            service = topology["services"][name]
            found.append(Opening(index, flow.src, flow.dst, name, service["proto"], tuple(as_list(service.get("ports"))), flow.purpose))
    return found


def entry_name(entry: dict) -> str:
    """The name a citizen asks a public entry point (an item of ``floating``) for: its first DNS name, else its
    address. Redirects, the entry's certificate, its probes and the lab's URL all use this one."""
    return str((list(entry.get("names") or []) + [entry["public"]])[0])


def inventory_groups(topology: dict, host: str) -> list[str]:
    """The inventory groups that hold ``host`` (what a play's ``hosts:`` names): its environment's, its zone,
    its site's and its functions. The inventory plugin makes them; the lab's images derive from them."""
    spec = topology["hosts"][host]
    wiring = topology["wiring"]
    return [
        wiring["environment_group_prefix"] + topology["environment"],
        spec["zone"],
        wiring["site_group_prefix"] + spec["site"],
        *(str(function) for function in spec["functions"]),
    ]


def outside_probers(topology: dict, host: str | None = None) -> list[str]:
    """The outside probers: machines off the platform (another provider, another network) that ask the public
    entry points as a citizen does, each the end (``to``) of a declared path out that carries the blackbox
    exporter's service; with ``host``, those the path lets that host read (the monitoring hosts)."""
    found = set()
    for need in topology.get("egress") or []:
        if OUTSIDE_PROBE_SERVICE not in need["services"]:
            continue
        if host is None or any(host in members(topology, end) for end in as_list(need.get("hosts", "all"))):
            found.add(str(need["to"]))
    return sorted(found)


def port(topology: dict, service: str) -> int:
    """The (first) port of a named service: port(topology, 'wireguard')."""
    return int(as_list(topology["services"][service].get("ports"))[0])


def clients(topology: dict, host: str, service: str) -> list[str]:
    """Hosts other than ``host`` that the flow matrix lets reach ``host`` with ``service``.

    What a server admits at its own level (PostgreSQL's pg_hba, for example) derives from the same
    matrix as the firewall in front of it: clients('db1', 'postgresql') is the app servers and db2.
    """
    found = set()
    for flow in flows(topology):
        if service in flow.services and host in members(topology, flow.dst):
            found.update(members(topology, flow.src))
    return sorted(found - {host})


def reached(topology: dict, host: str, service: str) -> list[str]:
    """Hosts that the flow matrix lets ``host`` reach with ``service``, ``host`` itself included when a
    flow's end holds it: what a client derives its targets from (reached('mon1', 'node-exporter') is
    every host, mon1 too, as the matrix's monitoring to all says)."""
    found = set()
    for flow in flows(topology):
        if service in flow.services and host in members(topology, flow.src):
            found.update(members(topology, flow.dst))
    return sorted(found)


def tcp_flow_targets(topology: dict, host: str) -> list[dict]:
    """Every other host the flow matrix lets ``host`` reach with a TCP service, once per service and port:
    ``{"to", "service", "address", "port"}`` (the overlay address), in order. What the firewall's collector
    probes across the mesh, one path per flow."""
    found = {}
    for flow in topology.get("flows") or []:  # only the ends and services: a role's scenario may give no purpose
        if host not in members(topology, flow["from"]):
            continue
        for service in flow["services"]:
            spec = topology["services"][service]
            if spec.get("proto") != "tcp":
                continue
            for target in set(members(topology, flow["to"])) - {host}:
                for number in as_list(spec.get("ports")):
                    found[(target, service, number)] = {"to": target, "service": service,
                                                        "address": topology["hosts"][target]["overlay"], "port": number}
    return [found[key] for key in sorted(found)]


def tcp_destinations(topology: dict, host: str) -> list[str]:
    """``address:port`` on the overlay of every other host that the flow matrix lets ``host`` reach with
    a TCP service: what a relay on ``host`` (the bastion's SSH, for the operators' tunnels) may
    forward to, and nothing else."""
    return sorted({f"{t['address']}:{t['port']}" for t in tcp_flow_targets(topology, host)})


def main(argv: list[str] | None = None) -> int:
    """``python -m rempart topology [ENV|FILE ...]``: validate environments (all by default)."""
    targets = argv or sorted(p.parent.name for p in INVENTORIES.glob(f"*/{TOPOLOGY_FILE}"))
    status = 0
    for target in targets:
        path = Path(target) if target.endswith((".yml", ".yaml")) else INVENTORIES / target / TOPOLOGY_FILE
        try:
            check(path)
        except TopologyError as exc:
            print(f"topology: {exc}", file=sys.stderr)
            status = 1
        else:
            print(f"topology: {display(path)}: valid")
    return status
