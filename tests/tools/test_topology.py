"""The topology validator refuses each kind of broken inventory with a message naming the place and the fix."""

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


@pytest.fixture
def lab() -> dict:
    return copy.deepcopy(model.load(model.INVENTORIES / "lab" / model.TOPOLOGY_FILE))


@pytest.fixture
def others() -> dict:
    return {env: t for env, t in model.load_all().items() if env != "lab"}


def errors_of(topology: dict, others: dict | None = None) -> list[str]:
    return model.validate(topology, others or {})


@pytest.mark.parametrize("env", sorted(model.load_all()))
def test_every_shipped_environment_is_valid(env):
    model.check(model.INVENTORIES / env / model.TOPOLOGY_FILE)


def test_unknown_site(lab):
    lab["hosts"]["app2"]["site"] = "dc9"
    assert errors_of(lab) == [
        "hosts.app2.site: 'dc9' is not a declared site (dc1, dc2, dc3): declare it under sites or fix the name."
    ]


def test_unknown_zone(lab):
    lab["hosts"]["app1"]["zone"] = "dmz"
    assert errors_of(lab) == ["hosts.app1.zone: 'dmz' is not a declared zone (edge, app, data, mgmt)."]


def test_host_in_no_zone(lab):
    del lab["hosts"]["db1"]["zone"]
    assert errors_of(lab) == ["hosts.db1.zone is missing: every host sits in exactly one zone (edge, app, data, mgmt)."]


def test_host_in_two_zones(lab):
    lab["hosts"]["mon1"]["zone"] = ["mgmt", "data"]
    (error,) = errors_of(lab)
    assert error.startswith("hosts.mon1.zone: the host is in 2 zones (mgmt, data); a host sits in exactly one zone")


def test_duplicate_address(lab):
    lab["hosts"]["app2"]["underlay"] = lab["hosts"]["app1"]["underlay"]
    assert errors_of(lab) == ["hosts.app2.underlay: 10.231.0.21 is already app1's address: addresses are unique."]


def test_address_outside_the_environment_range(lab):
    lab["hosts"]["db2"]["overlay"] = "10.99.0.32"
    assert errors_of(lab) == [
        "hosts.db2.overlay: 10.99.0.32 is outside ranges.overlay (10.232.0.0/24): pick an address in it."
    ]


def test_ranges_overlapping_another_environment(lab, others):
    lab["ranges"]["public"] = "192.0.2.128/26"  # the dev environment's public range
    for index, host in enumerate(h for h in lab["hosts"].values() if "public" in h):
        host["public"] = f"192.0.2.{150 + index}"
    errors = errors_of(lab, others)
    assert errors == [
        "ranges.public (192.0.2.128/26) overlaps the dev environment's ranges.public (192.0.2.128/26): "
        "environments are separated (ENV), give lab its own ranges."
    ]


def test_shared_identity_between_environments(lab, others):
    lab["identity"]["vault_id"] = "prod"
    assert errors_of(lab, others) == [
        "identity.vault_id: 'prod' is also the prod environment's: environments must not share a vault_id (ENV)."
    ]


def test_flow_naming_an_unknown_zone_or_group(lab):
    lab["flows"].append({"from": "app", "to": "dbs", "proto": "tcp", "ports": [5432], "purpose": "typo", "requirements": ["HA"]})
    (error,) = errors_of(lab)
    index = len(lab["flows"]) - 1
    assert error.startswith(f"flows[{index}].to: 'dbs' is not a zone, a function, a host or one of internet, operators, all")


def test_flow_with_bad_port_and_protocol(lab):
    lab["flows"].append({"from": "app", "to": "db", "proto": "tcp", "ports": [70000], "purpose": "x", "requirements": ["HA"]})
    lab["flows"].append({"from": "app", "to": "db", "proto": "sctp", "purpose": "x", "requirements": ["HA"]})
    n = len(lab["flows"])
    assert errors_of(lab) == [
        f"flows[{n - 2}].ports: 70000 is not a port number (1-65535).",
        f"flows[{n - 1}].proto: 'sctp' is not one of tcp, udp, vrrp, icmp.",
    ]


@pytest.mark.parametrize(("function", "label", "host"), [("db", "database servers", "db2"), ("app", "app servers", "app2"), ("waf", "WAFs", "waf2")])
def test_pair_in_one_site(lab, function, label, host):
    lab["hosts"][host]["site"] = "dc1"
    first = host[:-1] + "1"
    assert errors_of(lab) == [
        f"hosts.{host}.site: all {label} ({first}, {host}) are in site dc1; HA needs them in different sites: move {host} to another site."
    ]


def test_data_holding_host_outside_allowed_jurisdictions(lab):
    lab["sites"]["dc3"]["jurisdiction"] = "US"
    assert errors_of(lab) == [
        "hosts.mon1.site: mon1 holds data (log_collector, backup_repository) but site dc3 is in US, outside "
        "jurisdictions_allowed (CH) (LOC): move it to a site in an allowed jurisdiction."
    ]


def test_no_witness(lab):
    lab["hosts"]["mon1"]["functions"].remove("witness")
    assert errors_of(lab) == [
        "hosts: no host has function 'witness'; quorum needs a witness in a third site (DR): add it to a host of that site."
    ]


def test_witness_not_in_a_third_site(lab):
    lab["hosts"]["mon1"]["site"] = "dc2"
    assert errors_of(lab) == [
        "hosts.mon1.site: the witness is in site dc2, which is not a third site (database sites: dc1, dc2; "
        "it must be a site with purpose 'witness'): move it."
    ]


def test_misspelt_key(lab):
    lab["hosts"]["app1"]["undelray"] = lab["hosts"]["app1"].pop("underlay")
    assert errors_of(lab) == [
        "hosts.app1.undelray is not a known key (known: description, functions, overlay, public, site, underlay, zone): fix the spelling or remove it.",
        "hosts.app1.underlay is missing: give the host's underlay address in ranges.underlay.",
    ]


def test_zone_without_a_reason(lab):
    lab["zones"]["data"]["reason"] = " "
    assert errors_of(lab) == [
        "zones.data.reason is missing: say in one line why the zone needs that protection (SEG)."
    ]


def test_inventory_folder_and_environment_must_agree(tmp_path):
    shutil.copytree(model.INVENTORIES, tmp_path / "inventories")
    path = tmp_path / "inventories" / "dev" / model.TOPOLOGY_FILE
    data = yaml.safe_load(path.read_text())
    data["environment"] = "test"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(model.TopologyError) as caught:
        model.check(path)
    assert any("but the file is in inventories/dev/" in e for e in caught.value.errors)


def test_broken_inventory_stops_ansible_before_any_host(tmp_path):
    """Through Ansible itself: a broken topology makes the inventory fail to load, with the message."""
    shutil.copytree(model.INVENTORIES, tmp_path / "inventories")
    path = tmp_path / "inventories" / "lab" / model.TOPOLOGY_FILE
    path.write_text(path.read_text().replace("db2: {site: dc2", "db2: {site: dc1"))
    venv_bin = Path(sys.executable).parent
    result = subprocess.run(
        [str(venv_bin / "ansible-inventory"), "-i", str(path.parent), "--list"],
        capture_output=True, text=True, check=False, cwd=REPO,
        env={"ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "PATH": f"{venv_bin}:/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode != 0
    assert "hosts.db2.site: all database servers (db1, db2) are in site dc1" in result.stderr


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


def test_flow_from_outside_to_a_host_without_public_address(lab):
    lab["flows"].append({"from": "internet", "to": "app", "proto": "tcp", "ports": [8443], "purpose": "x", "requirements": ["WAF"]})
    n = len(lab["flows"]) - 1
    assert errors_of(lab) == [
        f"flows[{n}].to: 'app' includes {host}, which has no public address: flows from internet arrive on public "
        f"addresses; give hosts.{host}.public or narrow the flow."
        for host in ("app1", "app2")
    ]


def test_egress_needs_a_path_a_port_and_a_purpose(lab):
    lab["egress"] = [{"to": "", "hosts": "dbs", "proto": "icmp", "ports": [0], "requirements": ["X"]}]
    assert errors_of(lab) == [
        "egress[0].to is missing: give the address, network or DNS name of the declared path (e.g. the update proxy).",
        "egress[0].hosts: 'dbs' is not a zone, a function, a host or 'all'.",
        "egress[0].proto: 'icmp' is not tcp or udp.",
        "egress[0].service: None is not one of updates, time, dns, other: say what the path serves.",
        "egress[0].ports: 0 is not a port number (1-65535).",
        "egress[0].purpose is missing: say in a few words what the hosts need it for.",
        "egress[0].requirements: 'X' is not a requirement ID (" + ", ".join(model.REQUIREMENT_IDS) + ").",
    ]
