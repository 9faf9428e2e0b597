"""docs/topology.md, generated from the topology files (``make docs``; stale = CI fails)."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import NamedTuple

import yaml

from rempart.firewall import firewall_rules

from .rules import ADDRESS_KINDS, as_list, members


def _md(text) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _ports(service: dict) -> str:
    return service["proto"] + (" " + ", ".join(map(str, as_list(service.get("ports")))) if service.get("ports") else "")


# Ends of a flow that are not functions of the platform: neither built nor planned.
NEUTRAL_ENDS = {"internet", "operators", "all"}
_SERVICE_READ = re.compile(r"""services(?:\.([a-z][a-z0-9-]*)|\[['"]([a-z][a-z0-9-]*)['"]\])""")
_GROUP_READ = re.compile(r"""groups\[['"]([a-z_]+)['"]\]""")
_HOSTS = re.compile(r"^\s*(?:- )?hosts:\s*(\S+)\s*$", re.M)


_SERVICE_VALUE = re.compile(r"^[a-z][a-z0-9_]*_services?:[ \t]*(.+)$", re.M)
_NAME = re.compile(r"[a-z][a-z0-9-]*")


class Built(NamedTuple):
    """What the code implements today (``what_is_built``)."""

    services: set[str]  # services some role reads from the topology (as a server or a client)
    groups: set[str]  # groups (functions) a playbook targets or a role looks up
    used: dict[str, set[str]]  # per group a play targets ('all' too): the services its roles name


def _role_services(path: Path) -> set[str]:
    """The services a role names: read from the topology, or given by name in its defaults or vars
    (``waf_upstream_service: app``, ``prometheus_scrape_services: [node-exporter]``)."""
    found = set()
    for file in sorted(path.glob("*/*")):
        if file.suffix in (".yml", ".j2") and file.parts[-2] in ("defaults", "vars", "tasks", "templates"):
            text = file.read_text(encoding="utf-8")
            found |= {a or b for a, b in _SERVICE_READ.findall(text)}
            if file.parts[-2] in ("defaults", "vars"):
                for value in _SERVICE_VALUE.findall(text):
                    found |= set(_NAME.findall(value.split("#")[0]))
    return found


def _plays(repo: Path) -> list[tuple[list[str], list[str]]]:
    """(groups, roles) of every play of the playbooks: the groups its ``hosts`` names, the roles it
    applies (``roles:`` or ``include_role``/``import_role`` in its tasks)."""
    found = []
    for path in sorted((repo / "playbooks").glob("*.yml")):
        for play in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            if not isinstance(play, dict) or "hosts" not in play:
                continue
            groups = [part.lstrip("!&") for part in str(play["hosts"]).split(":") if not part.startswith("!")]
            found.append((groups, play_roles(play)))
    return found


def play_roles(play: dict) -> list[str]:
    """The roles a play applies: its ``roles:``, then the ``include_role``/``import_role`` of its tasks."""
    roles = [(r.get("role") or r.get("name")) if isinstance(r, dict) else r for r in play.get("roles") or []]
    for task in play.get("tasks") or []:
        for key in ("ansible.builtin.include_role", "ansible.builtin.import_role", "include_role", "import_role"):
            if isinstance(task, dict) and isinstance(task.get(key), dict):
                roles.append(task[key]["name"])
    return [str(r) for r in roles]


def what_is_built(repo: Path) -> Built:
    """What the code implements today: the services some role reads from the topology (its port, as
    a server or a client), the groups (functions) a playbook targets or a role looks up, and per group
    the services the roles its plays apply name."""
    services, groups = set(), set()
    for path in sorted((repo / "roles").glob("*/*/*")):
        if path.suffix in (".yml", ".j2") and path.parts[-2] in ("defaults", "vars", "tasks", "templates"):
            text = path.read_text(encoding="utf-8")
            services |= {a or b for a, b in _SERVICE_READ.findall(text)}
            groups |= set(_GROUP_READ.findall(text))
    for path in sorted((repo / "playbooks").glob("*.yml")):
        for pattern in _HOSTS.findall(path.read_text(encoding="utf-8")):
            groups |= {part.lstrip("!&") for part in pattern.split(":")}
    named = {role.name: _role_services(role) for role in sorted((repo / "roles").glob("*")) if role.is_dir()}
    used: dict[str, set[str]] = {}
    for play_groups, roles in _plays(repo):
        for group in play_groups:
            used.setdefault(group, set()).update(*(named.get(role, set()) for role in roles))
    return Built(services, groups, used)


def flow_state(flow: dict, services_built: set[str], groups_built: set[str], used: dict[str, set[str]] | None = None) -> str:
    """built: its services are in use and both ends exist, and the sending end's roles name one of
    them (when ``used`` is given); server side built: the receiving end serves them but the sending
    end does not use them yet; planned: nothing of it is built yet."""
    if not set(flow["services"]) & services_built:
        return "planned"
    sends = set(flow["services"]) & ((used or {}).get(flow["from"], set()) | (used or {}).get("all", set()))
    source = flow["from"] in NEUTRAL_ENDS or (flow["from"] in groups_built and (used is None or bool(sends)))
    target = flow["to"] in NEUTRAL_ENDS or flow["to"] in groups_built
    if source and target:
        return "built"
    return "server side built" if target else "planned"


def _reached_by(topology: dict, flows: list[dict], zone: str) -> list[str]:
    """Who the flow matrix lets reach a host of ``zone``, with the services: '`app`: `postgresql`'."""
    zone_hosts = {h for h, spec in topology["hosts"].items() if spec.get("zone") == zone}
    found: dict[str, list[str]] = {}
    for flow in flows:
        if zone_hosts & set(members(topology, flow["to"])):
            services = found.setdefault(flow["from"], [])
            services += [s for s in flow["services"] if s not in services]
    return [f"`{source}`: " + ", ".join(f"`{s}`" for s in services) for source, services in found.items()]


def render_page(topologies: dict[str, dict], reference: dict, built: tuple[set[str], set[str]] | None = None) -> str:
    """Vocabulary, services, zones, flow matrix (``reference``) and every environment's sites and hosts;
    ``built`` (``what_is_built``) marks each flow as built or planned."""
    services = reference["services"]
    lines = [
        "<!-- Generated by `make docs` from inventories/reference.yml and inventories/*/topology.yml: do not edit. -->",
        "",
        "# Topology",
        "",
        "Services, functions, zones, sites, hosts and the flow matrix are written once per environment, in",
        "`inventories/<env>/topology.yml` (the shared part in `inventories/reference.yml`), and validated",
        "before any run against `schema/topology.schema.json` and the rules of `rempart/topology/rules.py`.",
        "Everything below is generated from those files.",
        "",
        "## Services",
        "",
        "Every network service of the platform, today's tiers and those to come. Flows and declared paths",
        "name services; ports are written here and nowhere else. *Public*: may be offered to the internet.",
        "",
        "| Service | Protocol and ports | TLS | Public | Purpose | Requirements |",
        "|---|---|---|---|---|---|",
    ]
    for name, service in services.items():
        lines.append(
            f"| `{name}` | {_ports(service)} | {'yes' if service['tls'] else 'no'} | {'yes' if service.get('public') else 'no'} "
            f"| {_md(service['purpose'])} | {', '.join(service['requirements'])} |"
        )
    lines += [
        "",
        "## Zones (SEG)",
        "",
        "Each host sits in exactly one zone; the zone's protection level follows from what it holds. *Reached",
        "by* is read from the flow matrix below (with the hosts of the first environment), not written by hand.",
        "",
        "| Zone | Protection | Holds data | Why | Reached by |",
        "|---|---|---|---|---|",
    ]
    first = next(iter(topologies.values()))
    for name, zone in reference["zones"].items():
        reached = _reached_by(first, reference["flows"], name)
        lines.append(f"| `{name}` | {zone['protection']} | {'no' if zone.get('holds_data') is False else 'may'} | {_md(zone['reason'])} "
                     f"| {'<br>'.join(reached) or '–'} |")
    lines += [
        "",
        "## Flow matrix (SEG)",
        "",
        "Nothing else may flow. Ends are zones, functions or hosts; `internet` is anything outside the",
        "platform, `operators` the environment's operators' ranges, `all` every host of the environment.",
        "The firewall admits every flow below already; *State* says what the code serves today: **built**",
        "(a role uses the service and both ends exist), *server side built* (the receiving end serves it,",
        "the sending tier is not built yet) or *planned* (derived from the roles and playbooks).",
        "",
        "| From | To | Services | Purpose | Requirements | State |",
        "|---|---|---|---|---|---|",
    ]
    for flow in reference["flows"]:
        carried = "<br>".join(f"`{s}` ({_ports(services[s])})" for s in flow["services"])
        state = flow_state(flow, *built) if built else "?"
        state = {"built": "**built**"}.get(state, f"*{state}*")
        lines.append(f"| `{flow['from']}` | `{flow['to']}` | {carried} | {_md(flow['purpose'])} | {', '.join(flow['requirements'])} | {state} |")
    lines += [
        "",
        "![The flow matrix as a graph: each function in its zone's row, each flow an arrow with its services; "
        "planned flows dashed](diagrams/flows.svg)",
        "",
        "*Drawn from the flow matrix above when the site is built (`rempart/topology/diagrams.py`).*",
    ]
    lines += _admission_section(next(iter(topologies.items())))
    lines += [
        "",
        "## Functions",
        "",
        "| Function | What the host does | Holds data | Pair over two sites | Reached from outside |",
        "|---|---|---|---|---|",
    ]
    for name, function in reference["functions"].items():
        lines.append(
            f"| `{name}` | {_md(function['description'])} | {'yes' if function.get('holds_data') else 'no'} "
            f"| {_md(function.get('pair', '–'))} | {', '.join(function.get('faces', [])) or '–'} |"
        )
    lines += _environments_section(topologies, reference)
    lines.append("")
    return "\n".join(lines)


def _admission_section(named: tuple[str, dict]) -> list[str]:
    """What each host of one environment admits and sends, as the firewall role renders it."""
    env, topo = named
    addresses = {}
    for name, host in topo["hosts"].items():
        for kind in ADDRESS_KINDS:
            if host.get(kind):
                addresses[f"{host[kind]}/32"] = name
    operators = {str(ipaddress.ip_network(str(c))) for c in as_list(topo.get("operators"))}

    def peers(rule) -> str:
        if rule["peers"] is None:
            return "anyone"
        return ", ".join(addresses.get(p, f"operators {p}" if p in operators else p) for p in rule["peers"])

    def ports(rule) -> str:
        return rule["proto"] + (" " + ", ".join(map(str, rule["ports"])) if rule["ports"] else "")

    lines = [
        "",
        "## What each host admits (SEG)",
        "",
        f"Derived from the flow matrix by the firewall role, shown for the `{env}` environment (the others",
        "differ in addresses, operators' ranges and declared paths). Inside the platform everything runs",
        "over the WireGuard overlay; the private underlay carries WireGuard between the mesh's peers and",
        "nothing else; the declared `egress` paths are added on every host. Everything else is dropped and",
        "counted, in and out.",
        "",
        "| Host | Admits (from: what) | Sends (to: what) |",
        "|---|---|---|",
    ]
    bare = {**topo, "egress": []}
    for host in topo["hosts"]:
        rules = firewall_rules(bare, host)
        inbound = [f"{peers(r)} ({r['interface']}): {ports(r)}" for r in rules if r["direction"] == "in" and r["interface"] != "underlay"]
        outbound = [f"{peers(r)}: {ports(r)}" for r in rules if r["direction"] == "out" and r["interface"] != "underlay"]
        lines.append(f"| `{host}` | {'<br>'.join(inbound) or '–'} | {'<br>'.join(outbound) or '–'} |")
    return lines


def _environment_facts(topo: dict, reference: dict) -> dict[str, str]:
    """What an environment sets, one line each, comparable between environments."""
    identity = topo["identity"]
    facts = {f"Range `{kind}`": f"`{cidr}`" for kind, cidr in topo["ranges"].items()}
    facts["CA"] = _md(identity["ca_name"])
    facts["Vault id"] = f"`{identity['vault_id']}`"
    facts["SSH key"] = f"`{identity['ssh_key_name']}`"
    facts["Data may be hosted in"] = ", ".join(topo["jurisdictions_allowed"])
    facts["Sites"] = "<br>".join(f"`{name}`: {site['purpose']}, {site['jurisdiction']}" for name, site in topo["sites"].items())
    facts["Operators connect from"] = ", ".join(f"`{cidr}`" for cidr in as_list(topo.get("operators"))) or "none declared"
    for function, entry in (topo.get("floating") or {}).items():
        names = ", ".join(as_list(entry.get("names", [])))
        facts[f"Public address of `{function}`"] = f"`{entry.get('public', '?')}`" + (f" ({names})" if names else "")
        resolvers = ", ".join(f"`{resolver}`" for resolver in as_list(entry.get("resolvers", [])))
        facts[f"DNS servers asked for `{function}`'s names"] = resolvers or "none (no names)"
    own = {n: s for n, s in topo["services"].items() if s != reference["services"].get(n)}
    facts["Services given differently from the reference"] = "<br>".join(f"`{n}`: {_ports(s)}" for n, s in own.items()) or "none"
    facts["Paths out of the platform (time, packages)"] = "<br>".join(
        f"{', '.join(f'`{h}`' for h in as_list(need.get('hosts', 'all')))} → `{need['to']}`: "
        + ", ".join(f"`{s}` ({_ports(topo['services'][s])})" for s in need["services"])
        for need in topo.get("egress", [])) or "none"
    return facts


def _environments_section(topologies: dict[str, dict], reference: dict) -> list[str]:
    """The environments side by side: what differs between them as a table with one column each, what
    is the same once; every host once, with its addresses in each environment."""
    envs = list(topologies)
    facts = {env: _environment_facts(topo, reference) for env, topo in topologies.items()}
    keys = list(dict.fromkeys(key for env in envs for key in facts[env]))
    differ = [k for k in keys if len({facts[env].get(k, "–") for env in envs}) > 1]
    same = [k for k in keys if k not in differ]
    header = "| | " + " | ".join(f"`{env}`" for env in envs) + " |"
    lines = [
        "",
        "## Environments side by side (ENV)",
        "",
        "The environments share the reference (services, zones, flow matrix) and differ only where the",
        "table says; each row is read from `inventories/<env>/topology.yml`.",
        "",
        header,
        "|---|" + "---|" * len(envs),
    ]
    lines += [f"| {k} | " + " | ".join(facts[env].get(k, "–") for env in envs) + " |" for k in differ]
    if same:
        lines += ["", "The same in every environment:", ""]
        lines += [f"- {k}: {facts[envs[0]][k]}" for k in same]
    hosts = list(dict.fromkeys(name for topo in topologies.values() for name in topo["hosts"]))
    lines += ["", "Every host, with its addresses in each environment (underlay, overlay, public):", "",
              "| Host | Site | Zone | Functions | " + " | ".join(f"`{env}`" for env in envs) + " |",
              "|---|---|---|---|" + "---|" * len(envs)]
    for name in hosts:
        placement = []
        for key in ("site", "zone", "functions"):
            values = {env: ", ".join(as_list(topo["hosts"][name][key])) for env, topo in topologies.items() if name in topo["hosts"]}
            placement.append(next(iter(values.values())) if len(set(values.values())) == 1
                             else "<br>".join(f"{env}: {value}" for env, value in values.items()))
        cells = []
        for topo in topologies.values():
            host = topo["hosts"].get(name)
            cells.append("absent" if host is None else
                         "<br>".join(str(host[key]) for key in ("underlay", "overlay", "public") if host.get(key)))
        lines.append(f"| `{name}` | " + " | ".join(placement) + " | " + " | ".join(cells) + " |")
    for env in envs:
        lines += ["", f"### Network of `{env}`", "",
                  f"![Network of environment {env}: its sites as columns, its zones as rows, each host with its functions "
                  f"and overlay address](diagrams/network-{env}.svg)"]
    return lines
