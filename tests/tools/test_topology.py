"""The topology is refused, before any host is touched, for each class of mistake: its shape (schema),
then the rules (rempart/topology/rules.py), with one message per problem naming the place and the fix."""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rempart import topology as model

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.SEG


@pytest.fixture
def lab() -> dict:
    return copy.deepcopy(model.load(model.INVENTORIES / "lab" / model.TOPOLOGY_FILE))


@pytest.fixture
def others() -> dict:
    return {env: t for env, t in model.load_all().items() if env != "lab"}


@pytest.fixture
def inventories(tmp_path) -> Path:
    """A copy of the inventories to break."""
    shutil.copytree(model.INVENTORIES, tmp_path / "inventories")
    return tmp_path / "inventories"


def errors_of(topology: dict, others: dict | None = None) -> list[str]:
    return model.validate(topology, others or {})


def refused(path: Path) -> list[str]:
    with pytest.raises(model.TopologyError) as caught:
        model.check(path)
    return caught.value.errors


def flow(**given) -> dict:
    return {"purpose": "a test flow", "requirements": ["SEG"], **given}


@pytest.mark.parametrize("env", sorted(model.load_all()))
def test_every_shipped_environment_is_valid(env):
    model.check(model.INVENTORIES / env / model.TOPOLOGY_FILE)


# --- shape: file, line, place and fix; never a traceback ---------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "topology.yml: the file is empty: a topology is a mapping"),
        ("just a string\n", "topology.yml:1: the file holds a string, not a mapping"),
        ("- a\n- b\n", "topology.yml:1: the file holds a list, not a mapping"),
        ("hosts: {a: 1\nsites: [\n", "topology.yml:2: this is not valid YAML"),
        ("plugin: rempart_topology\nenvironment: lab\nenvironment: dev\n",
         "topology.yml:3: environment is given twice (first on line 2): YAML keeps only the last one; remove one of them."),
        (b"\xff\xfe".decode("latin-1"), "topology.yml: the file cannot be read"),
    ],
    ids=["empty", "scalar", "list", "syntax", "duplicate-key", "not-utf8"],
)
def test_unreadable_files_are_refused_with_file_and_line(inventories, text, expected):
    path = inventories / "lab" / model.TOPOLOGY_FILE
    path.write_bytes(text.encode("latin-1") if expected.endswith("cannot be read") else text.encode())
    (error,) = refused(path)
    assert expected in error, error


def test_shape_errors_name_file_line_place_and_fix(inventories):
    path = inventories / "lab" / model.TOPOLOGY_FILE
    text = path.read_text()
    text = text.replace("underlay: 10.231.0.31,", "underlay: true,")
    text = text.replace("  dc3: {jurisdiction: CH,", "  dc3: {jurisdiction: CH, colour: red,")
    text = text.replace("hosts:\n", "hosts:\n  web1: [edge]\n")
    path.write_text(text)
    lines = text.splitlines()
    line_of = {key: next(i + 1 for i, line in enumerate(lines) if key in line) for key in ("underlay: true", "colour", "web1")}
    errors = refused(path)
    assert any(e.endswith(f"inventories/lab/topology.yml:{line_of['underlay: true']}: hosts.db1.underlay: True is a boolean where "
                          "a string belongs: give the host's IPv4 address on the private underlay, inside ranges.underlay.")
               for e in errors), errors
    assert any(e.endswith(f"topology.yml:{line_of['colour']}: sites.dc3.colour is not a known key (known: description, jurisdiction, purpose): "
                          "fix the spelling or remove it.") for e in errors), errors
    assert any(f"topology.yml:{line_of['web1']}: hosts.web1: ['edge'] is a list where a mapping belongs" in e for e in errors), errors


def test_a_boolean_is_not_a_port(lab):
    lab["services"]["ssh"]["ports"] = [True]
    assert errors_of(lab) == ["services.ssh.ports[0]: True is a boolean where a whole number belongs: give a port number (1-65535)."]


def test_a_port_out_of_range(lab):
    lab["services"]["ssh"]["ports"] = [70000]
    assert errors_of(lab) == ["services.ssh.ports[0]: 70000 is not a port number (1-65535): fix it."]


def test_a_reference_file_error_names_the_reference(inventories):
    path = inventories / "reference.yml"
    path.write_text(path.read_text().replace("  ssh: {proto: tcp,", "  ssh: {proto: sctp,"))
    (error,) = refused(inventories / "lab" / model.TOPOLOGY_FILE)
    assert "inventories/reference.yml:" in error and "services.ssh.proto: 'sctp' is not one of tcp, udp, vrrp, icmp" in error


def test_missing_top_level_key(lab):
    del lab["identity"]
    assert errors_of(lab) == ["identity is missing: give the environment's own CA, vault id and SSH key (ENV)."]


def test_misspelt_key(lab):
    lab["hosts"]["app1"]["undelray"] = lab["hosts"]["app1"].pop("underlay")
    assert errors_of(lab) == [
        "hosts.app1.undelray is not a known key (known: description, functions, overlay, public, site, underlay, zone): "
        "fix the spelling or remove it.",
        "hosts.app1.underlay is missing: give the host's IPv4 address on the private underlay, inside ranges.underlay.",
    ]


def test_host_in_two_zones(lab):
    lab["hosts"]["mon1"]["zone"] = ["mgmt", "data"]
    assert errors_of(lab) == [
        "hosts.mon1.zone: ['mgmt', 'data'] is a list where a string belongs: give the one zone the host sits in, "
        "written as a name (zone: data)."
    ]


def test_no_input_raises_anything_but_a_topology_error(lab):
    """Every kind of place of the lab topology (every key; two entries of each collection) replaced, one at a
    time, by each wrong kind of value: messages, never an exception."""
    def places(node, where=()):
        yield where
        children = list(node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ())
        if where and where[-1] in ("hosts", "services", "flows", "functions", "sites", "zones", "egress"):
            children = children[:2]
        for key, child in children:
            yield from places(child, (*where, key))

    count = 0
    for where in list(places(lab))[1:]:
        for wrong in (None, [], {}, "x", True, -1, "10.0.0.0/8", {"x": 1}):
            broken = copy.deepcopy(lab)
            node = broken
            for step in where[:-1]:
                node = node[step]
            node[where[-1]] = wrong
            errors = errors_of(broken)
            assert all(isinstance(e, str) for e in errors)
            count += 1
    assert count > 500


# --- names -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "name", "other"),
    [("hosts", "db", "functions"), ("hosts", "data", "zones"), ("sites", "internet", "special flow ends"), ("zones", "waf", "functions")],
)
def test_a_name_means_one_thing(lab, kind, name, other):
    if kind == "hosts":
        lab["hosts"][name] = lab["hosts"].pop("app2")
    elif kind == "sites":
        lab["sites"][name] = lab["sites"].pop("dc3")
        lab["hosts"]["mon1"]["site"] = name
    else:
        lab["zones"][name] = lab["zones"].pop("edge")
        for host in ("waf1", "waf2"):
            lab["hosts"][host]["zone"] = name
    errors = [e for e in errors_of(lab) if e.startswith(f"{kind}.{name}:")]
    assert errors == [
        f"{kind}.{name}: {name!r} is also the name of one of the {other}; flow ends, groups and files would mix them up: "
        f"rename the {kind[:-1]}."
    ]


def test_names_use_a_restricted_alphabet(lab):
    lab["hosts"]["App_1"] = lab["hosts"].pop("app1")
    assert errors_of(lab) == [
        "hosts.App_1: the name 'App_1' is not a host name of lower-case letters, digits and '-', starting with a letter: rename it."
    ]


@pytest.mark.parametrize("text", ['Web "entry"', "{{ lookup('pipe', 'id') }}", "two\nlines", "a `c`", "x" * 161, " ", "$HOME"])
def test_text_rendered_into_configs_is_plain(lab, text):
    lab["flows"][0]["purpose"] = text
    assert errors_of(lab) == [
        f"flows[0].purpose: {text!r} is not why this flow exists, in one line: fix it."
    ]


# --- addresses ---------------------------------------------------------------------------------------


def test_address_outside_the_environment_range(lab):
    lab["hosts"]["db2"]["overlay"] = "10.99.0.32"
    assert errors_of(lab) == ["hosts.db2.overlay: 10.99.0.32 is outside ranges.overlay (10.232.0.0/24): pick an address in it."]


@pytest.mark.parametrize(("address", "which"), [("10.232.0.0", "network"), ("10.232.0.255", "broadcast")])
def test_network_and_broadcast_addresses_are_not_host_addresses(lab, address, which):
    lab["hosts"]["db2"]["overlay"] = address
    assert errors_of(lab) == [
        f"hosts.db2.overlay: {address} is the {which} address of ranges.overlay (10.232.0.0/24), not a host address: pick another."
    ]


def test_duplicate_address(lab):
    lab["hosts"]["app2"]["underlay"] = lab["hosts"]["app1"]["underlay"]
    assert errors_of(lab) == ["hosts.app2.underlay: 10.231.0.21 is already app1's address: addresses are unique."]


def test_public_address_only_where_the_outside_is_faced(lab):
    lab["hosts"]["db1"]["public"] = "10.233.0.31"
    assert errors_of(lab) == [
        "hosts.db1.public: db1 has a public address but none of its functions (db, etcd) faces the internet or the "
        "operators: remove the address (it reaches the outside through the mesh only)."
    ]


def test_public_address_never_in_the_operators_range(lab):
    lab["operators"] = ["10.233.0.0/28"]
    assert errors_of(lab) == [
        "hosts.bastion1.public: 10.233.0.5 lies in the operators' range 10.233.0.0/28: a host is not an operator; pick another address.",
        "hosts.waf1.public: 10.233.0.11 lies in the operators' range 10.233.0.0/28: a host is not an operator; pick another address.",
        "hosts.waf2.public: 10.233.0.12 lies in the operators' range 10.233.0.0/28: a host is not an operator; pick another address.",
    ]


def test_ipv6_is_refused_with_the_reason(lab):
    lab["hosts"]["db2"]["overlay"] = "fd00::32"
    assert errors_of(lab) == [
        "hosts.db2.overlay: fd00::32 is an IPv6 address; the firewall writes IPv4 rules only: give an IPv4 address."
    ]


def test_ranges_overlapping_another_environment(lab, others):
    lab["ranges"]["public"] = "192.0.2.128/26"  # the dev environment's public range
    for index, host in enumerate(h for h in lab["hosts"].values() if "public" in h):
        host["public"] = f"192.0.2.{150 + index}"
    lab["floating"]["waf"]["public"] = "192.0.2.149"
    assert errors_of(lab, others) == [
        "ranges.public (192.0.2.128/26) overlaps the dev environment's ranges.public (192.0.2.128/26): "
        "environments are separated (ENV), give lab its own ranges."
    ]


# --- dangerous flows ---------------------------------------------------------------------------------


@pytest.mark.parametrize("service", ["ssh", "vrrp", "patroni-api", "node-exporter", "etcd-client", "postgresql"])
def test_management_and_data_services_never_from_the_internet(lab, service):
    lab["flows"].append(flow(**{"from": "internet", "to": "waf", "services": [service]}))
    n = len(lab["flows"]) - 1
    assert errors_of(lab) == [
        f"flows[{n}].services: {service!r} is not a public service and may never be reached from the internet "
        "(management, data and internal services stay inside): remove it from this flow."
    ]


def test_ssh_from_the_operators_enters_at_the_bastion_only(lab):
    lab["flows"].append(flow(**{"from": "operators", "to": "edge", "services": ["ssh"]}))
    n = len(lab["flows"]) - 1
    assert f"flows[{n}].to: SSH from the operators enters at the bastion only, but 'edge' includes waf1, waf2: narrow the flow to: bastion." in errors_of(lab)


def test_ssh_inside_comes_from_the_bastion_only(lab):
    lab["flows"].append(flow(**{"from": "app", "to": "db", "services": ["ssh"]}))
    n = len(lab["flows"]) - 1
    assert errors_of(lab) == [
        f"flows[{n}].from: SSH inside the platform comes from the bastion only, but 'app' includes app1, app2: make the flow from: bastion."
    ]


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "10.0.0.0/8"])
def test_operators_ranges_are_specific(lab, cidr):
    lab["operators"] = [cidr]
    assert (
        f"operators[0]: {cidr} is wider than policy.operators_widest_prefix (/24) allows: list the operators' own ranges, "
        "or state a wider policy in this environment's topology.yml."
    ) in errors_of(lab)


def test_egress_destinations_are_specific(lab):
    lab["egress"].append({"to": "0.0.0.0/0", "services": ["dns"], "purpose": "anything", "requirements": ["HARD"]})
    assert errors_of(lab) == [
        f"egress[{len(lab['egress']) - 1}].to: 0.0.0.0/0 is wider than policy.egress_widest_prefix (/28) allows: name the server "
        "(its address), or state a wider policy in this environment's topology.yml."
    ]


def test_an_outside_prober_is_the_end_of_a_path_out_that_carries_the_blackbox_exporter_s_service(lab):
    monitor = model.members(lab, "monitoring")[0]
    probers = model.outside_probers(lab)
    assert probers and model.outside_probers(lab, monitor) == probers
    assert model.outside_probers(lab, "app1") == []  # the path is the monitoring hosts'
    lab["egress"].append({"to": "10.233.0.251", "services": ["dns"], "purpose": "a resolver", "requirements": ["HARD"]})
    lab["egress"].append({"to": "prober2.example.net", "hosts": ["app1", "monitoring"], "services": ["blackbox-exporter"],
                          "purpose": "a second prober", "requirements": ["MON"]})
    assert errors_of(lab) == []
    assert model.outside_probers(lab) == sorted([*probers, "prober2.example.net"])
    assert model.outside_probers(lab, "app1") == ["prober2.example.net"]
    # one machine that the monitoring hosts read, not a network
    lab["egress"].append({"to": "10.233.0.240/28", "hosts": "monitoring", "services": ["blackbox-exporter"],
                          "purpose": "probers", "requirements": ["MON"]})
    assert errors_of(lab) == [
        f"egress[{len(lab['egress']) - 1}].to: 10.233.0.240/28 is a network, but a path carrying blackbox-exporter leads to an "
        "outside prober, one machine that the monitoring hosts read: give its address or DNS name."
    ]


def test_the_inventory_groups_of_a_host_are_its_environment_s_zone_site_and_functions(lab):
    assert model.inventory_groups(model.check(model.INVENTORIES / "lab" / model.TOPOLOGY_FILE), "db1") == [
        "env_lab", "data", "site_dc1", "db", "etcd"]


def test_a_flow_names_known_services_once(lab):
    lab["flows"].append(flow(**{"from": "app", "to": "db", "services": ["postgres"]}))
    lab["flows"].append(flow(**{"from": "app", "to": "db", "services": ["postgresql", "postgresql"]}))
    n = len(lab["flows"])
    errors = errors_of(lab)
    assert errors == [f"flows[{n - 1}].services: ['postgresql', 'postgresql'] lists an item twice: remove the repeat."]
    lab["flows"].pop()
    assert errors_of(lab)[0].startswith(f"flows[{n - 2}].services: 'postgres' is not a declared service (ssh, wireguard,")


def test_two_services_never_share_a_port(lab):
    lab["services"]["status-page"]["ports"] = [model.port(lab, "app")]
    assert errors_of(lab) == ["services.status-page.ports: tcp 8443 is already service app's: give each service its own port."]


def test_flow_naming_an_unknown_end(lab):
    lab["flows"].append(flow(**{"from": "app", "to": "dbs", "services": ["postgresql"]}))
    (error,) = errors_of(lab)
    assert error.startswith(f"flows[{len(lab['flows']) - 1}].to: 'dbs' is not a zone, a function, a host or one of internet, operators, all")


def test_flow_from_outside_to_a_host_without_public_address(lab):
    lab["flows"].append(flow(**{"from": "internet", "to": "app", "services": ["https"]}))
    n = len(lab["flows"]) - 1
    assert errors_of(lab) == [
        f"flows[{n}].to: 'app' includes {host}, which has no public address: flows from internet arrive on public "
        f"addresses; give hosts.{host}.public or narrow the flow."
        for host in ("app1", "app2")
    ]


def test_flow_from_operators_needs_their_ranges(lab):
    del lab["operators"]
    index = next(i for i, f in enumerate(lab["flows"]) if f["from"] == "operators")
    assert errors_of(lab) == [
        f"flows[{index}].from is 'operators' but the topology has no operators: list the operators' address ranges "
        "(operators: [CIDR, ...]) so that only they reach it."
    ]


def test_operators_must_be_networks(lab):
    lab["operators"] = ["10.233.0.1/24"]
    (error,) = errors_of(lab)
    assert error.startswith("operators[0]: '10.233.0.1/24' is not a network in CIDR form")


# --- placement ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("function", "label", "host"), [("app", "app servers", "app2"), ("waf", "WAFs", "waf2")])
def test_pair_in_one_site(lab, function, label, host):
    lab["hosts"][host]["site"] = "dc1"
    first = host[:-1] + "1"
    assert errors_of(lab) == [
        f"hosts.{host}.site: all {label} ({first}, {host}) are in site dc1; HA needs them in different sites: move {host} to another site."
    ]


def test_quorum_is_odd_and_at_least_three(lab):
    lab["hosts"]["mon1"]["functions"].remove("etcd")
    assert errors_of(lab) == [
        "hosts: 2 host(s) with function 'etcd' (db1, db2); the quorum needs an odd number, at least three, spread over "
        "three sites: add or remove a member."
    ]


def test_quorum_survives_the_loss_of_any_site(lab):
    lab["hosts"]["db2"]["site"] = "dc1"
    lab["hosts"]["app2"]["functions"] = ["app"]
    errors = errors_of(lab)
    assert "sites.dc1: 2 of the 3 etcd members are in site dc1; losing it would lose the majority (HA): spread the " \
        "members so that no site holds half or more." in errors


def test_witness_site_holds_no_database(lab):
    lab["hosts"]["db2"]["site"] = "dc3"
    assert "hosts.db2.site: db2 is a database server in the witness site dc3: the witness site holds no database; move it." in errors_of(lab)


def test_no_witness(lab):
    lab["hosts"]["mon1"]["functions"].remove("witness")
    assert errors_of(lab) == [
        "hosts: no host has function 'witness'; quorum needs a witness in a third site (DR): add it to a host of that site."
    ]


@pytest.mark.DR
def test_backups_off_the_database_hosts_and_their_site(lab):
    lab["hosts"]["mon1"]["functions"].remove("backup_repository")
    lab["hosts"]["db1"]["functions"].append("backup_repository")
    assert errors_of(lab) == [
        "hosts.db1.functions: db1 is both a database server and its backup repository: put the backups on another host (DR)."
    ]
    lab["hosts"]["db1"]["functions"].remove("backup_repository")
    lab["hosts"]["app1"]["functions"].append("backup_repository")
    assert errors_of(lab) == [
        "hosts.app1.site: the backup repository is in site dc1, with the database(s) it protects (db1): a site lost would "
        "take both; move it to another site (DR)."
    ]


def test_at_least_one_bastion(lab):
    lab["hosts"]["bastion1"]["functions"] = ["monitoring"]
    errors = errors_of(lab)
    assert "hosts: no host has function 'bastion'; SSH enters the platform through a bastion only (SEG): add one." in errors


def test_data_never_in_the_edge_zone(lab):
    lab["hosts"]["waf1"]["functions"].append("log_collector")
    assert errors_of(lab) == [
        "hosts.waf1.zone: waf1 holds data (log_collector) but zone edge may hold none: move the function to a host of another zone."
    ]


@pytest.mark.LOC
def test_data_holding_host_outside_allowed_jurisdictions(lab):
    lab["sites"]["dc3"]["jurisdiction"] = "US"
    assert errors_of(lab) == [
        "hosts.mon1.site: mon1 holds data (log_collector, backup_repository) but site dc3 is in US, outside "
        "jurisdictions_allowed (CH) (LOC): move it to a site in an allowed jurisdiction."
    ]


# --- identity and environments -----------------------------------------------------------------------


@pytest.mark.parametrize(("key", "value", "theirs"), [("vault_id", "prod", "prod"), ("ca_name", "REMPART PROD  CA", "Rempart prod CA")])
def test_identity_is_unique_across_environments_whatever_the_case(lab, others, key, value, theirs):
    lab["identity"][key] = value
    assert errors_of(lab, others) == [
        f"identity.{key}: {value!r} is also the prod environment's ({theirs!r}): environments must not share a {key} (ENV), "
        "even in another case."
    ]


def test_inventory_folder_and_environment_must_agree(inventories):
    path = inventories / "dev" / model.TOPOLOGY_FILE
    path.write_text(path.read_text().replace("environment: dev", "environment: test"))
    assert any("but the file is in inventories/dev/" in e for e in refused(path))


# --- through Ansible ---------------------------------------------------------------------------------


def ansible_inventory(path: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    venv_bin = Path(sys.executable).parent
    return subprocess.run(
        [str(venv_bin / "ansible-inventory"), "-i", str(path.parent), "--list"],
        capture_output=True, text=True, check=False, cwd=REPO,
        env={"ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "PATH": f"{venv_bin}:/usr/bin:/bin", "HOME": str(tmp_path)},
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("db2: {site: dc2", "db2: {site: dc1"), "hosts.db2.site: all database servers (db1, db2) are in site dc1"),
        (("hosts:\n", "hosts: [\n"), "this is not valid YAML"),
        (("environment: lab\n", "environment: lab\nenvironment: lab\n"), "environment is given twice"),
    ],
    ids=["rule", "syntax", "duplicate"],
)
def test_broken_inventory_stops_ansible_with_the_validators_message_only(inventories, tmp_path, change, message):
    path = inventories / "lab" / model.TOPOLOGY_FILE
    path.write_text(path.read_text().replace(*change, 1))
    result = ansible_inventory(path, tmp_path)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    # No other inventory plugin tried the file and added its own failure.
    assert "with 'yaml' plugin" not in result.stderr and "with 'ini' plugin" not in result.stderr


def test_schema_is_published_and_named_by_every_topology_file():
    schema_file = REPO / "schema" / "topology.schema.json"
    assert schema_file.is_file()
    for path in [model.INVENTORIES / "reference.yml", *model.INVENTORIES.glob(f"*/{model.TOPOLOGY_FILE}")]:
        first = path.read_text().splitlines()[0]
        target = first.split("$schema=", 1)[-1]
        assert first.startswith("# yaml-language-server: $schema="), path
        assert (path.parent / target).resolve() == schema_file, path


@pytest.mark.parametrize("extends", ["[../reference.yml]", "../nowhere.yml", "../lab"])
def test_a_wrong_extends_is_refused(inventories, extends):
    path = inventories / "lab" / model.TOPOLOGY_FILE
    path.write_text(path.read_text().replace("extends: ../reference.yml", f"extends: {extends}"))
    errors = refused(path)
    assert errors and all("topology.yml:" in e and "extends" in e for e in errors), errors


@pytest.mark.HA
def test_a_pair_facing_the_internet_needs_a_floating_address(lab):
    del lab["floating"]
    assert any(e.startswith("floating: the WAFs") and "floating.waf.public" in e for e in errors_of(lab))


@pytest.mark.HA
@pytest.mark.parametrize(("address", "expected"), [
    ("10.233.0.11", "already waf1's public address"),
    ("10.232.0.10", "not a host address of ranges.public"),
    ("10.233.0.255", "not a host address of ranges.public"),
])
def test_a_floating_address_is_an_unused_public_address(lab, address, expected):
    lab["floating"]["waf"]["public"] = address
    assert any(e.startswith("floating.waf.public") and expected in e for e in errors_of(lab)), errors_of(lab)


@pytest.mark.HA
def test_only_a_pair_facing_the_outside_floats(lab):
    lab["floating"]["db"] = {"public": "10.233.0.20"}
    lab["floating"]["nothing"] = {"public": "10.233.0.21"}
    found = errors_of(lab)
    assert any(e.startswith("floating.db: db is not a pair that faces the outside") for e in found), found
    assert any(e.startswith("floating.nothing: 'nothing' is not a function") for e in found), found


@pytest.mark.MON
@pytest.mark.parametrize(("names", "resolvers", "expected"), [
    (["eservice.lab.example"], None, "floating.waf: names without resolvers: add floating.waf.resolvers"),
    (None, ["192.0.2.53"], "floating.waf.resolvers: the entry has no names to ask them for"),
    (["eservice.lab.example"], ["10.233.0.11"], "floating.waf.resolvers: 10.233.0.11 is waf1's public address"),
    (["eservice.lab.example"], ["2001:db8::53"], "floating.waf.resolvers: 2001:db8::53 is not an IPv4 address"),
])
def test_an_entry_s_names_are_asked_from_dns_servers_off_the_platform(lab, names, resolvers, expected):
    """The outside probers ask the entry's names (category internet): from the DNS servers the entry names."""
    for key, value in (("names", names), ("resolvers", resolvers)):
        if value is not None:
            lab["floating"]["waf"][key] = value
    assert any(e.startswith(expected) for e in errors_of(lab)), errors_of(lab)
    lab["floating"]["waf"].update(names=["eservice.lab.example"], resolvers=["192.0.2.53"])
    assert errors_of(lab) == []


@pytest.mark.SEG
def test_a_host_may_relay_to_what_the_flows_let_it_reach_and_nothing_else(lab):
    """The bastion's SSH relays (PermitOpen) derive from tcp_destinations: the SSH port of every other
    host and the monitoring UIs (the flow bastion -> monitoring); no UDP service, and never itself."""
    hosts = lab["hosts"]
    monitor = model.members(lab, "monitoring")[0]
    found = model.tcp_destinations(lab, "bastion1")
    ssh = {f"{spec['overlay']}:{model.port(lab, 'ssh')}" for name, spec in hosts.items() if name != "bastion1"}
    assert ssh <= set(found)
    assert {f"{hosts[monitor]['overlay']}:{model.port(lab, s)}" for s in ("prometheus", "alertmanager")} <= set(found)
    assert not [d for d in found if d.startswith(hosts["bastion1"]["overlay"] + ":")]
    assert f"{hosts[monitor]['overlay']}:{model.port(lab, 'node-exporter')}" not in found
    assert not [d for d in found if d.endswith(f":{model.port(lab, 'wireguard')}")]


@pytest.mark.MON
def test_each_tcp_flow_out_of_a_host_is_one_target_per_host_service_and_port(lab):
    """The firewall's collector probes each flow's path (rempart_flow_targets): an app server reaches both database
    servers' PostgreSQL and the log collector's RELP, nothing else, never itself; no UDP service anywhere."""
    hosts = lab["hosts"]
    app = model.members(lab, "app")[0]
    found = model.tcp_flow_targets(lab, app)
    expected = [(db, "postgresql") for db in model.members(lab, "db")] + [(c, "relp") for c in model.members(lab, "log_collector")]
    assert sorted((t["to"], t["service"]) for t in found) == sorted(expected)
    assert all(t["address"] == hosts[t["to"]]["overlay"] and t["port"] == model.port(lab, t["service"]) for t in found)
    everywhere = [t for host in hosts for t in model.tcp_flow_targets(lab, host)]
    assert not [t for t in everywhere if lab["services"][t["service"]]["proto"] != "tcp"]
    assert not [host for host in hosts for t in model.tcp_flow_targets(lab, host) if t["to"] == host]
    assert model.tcp_destinations(lab, app) == sorted(f"{t['address']}:{t['port']}" for t in found)


def test_an_entry_point_is_asked_for_by_its_first_name_else_its_address():
    """One rule for the name a citizen asks (redirects, the entry's certificate, its probes, the lab's URL)."""
    assert model.entry_name({"public": "192.0.2.130", "names": ["eservice.example.ch", "www.example.ch"]}) == "eservice.example.ch"
    assert model.entry_name({"public": "10.233.0.10"}) == "10.233.0.10"
    assert model.entry_name({"public": "10.233.0.10", "names": []}) == "10.233.0.10"
