"""The lab is the reference topology, built by `make lab` from the lab inventory alone."""

from __future__ import annotations

import pytest
from conftest import LAB_DIR, docker_inspect, ssh
from cryptography import x509

from rempart import topology as model

LAB_HOSTS = sorted(model.load(model.INVENTORIES / "lab" / model.TOPOLOGY_FILE)["hosts"])


@pytest.mark.parametrize("host", LAB_HOSTS)
def test_host_answers_over_ssh_through_the_bastion(host):
    result = ssh(host, "hostname")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == host


def test_only_the_bastion_is_reached_directly(lab_topology):
    config = (LAB_DIR / "ssh_config").read_text(encoding="utf-8")
    blocks = {block.split()[0]: block for block in config.split("Host ")[1:]}
    for host, spec in lab_topology["hosts"].items():
        direct = "ProxyCommand" not in blocks[host]
        assert direct == ("bastion" in spec["functions"]), blocks[host]


@pytest.mark.parametrize("host", LAB_HOSTS)
def test_machine_has_exactly_the_addresses_of_the_topology(host, lab_topology):
    spec = lab_topology["hosts"][host]
    networks = docker_inspect(host)["NetworkSettings"]["Networks"]
    addresses = {name: net["IPAddress"] for name, net in networks.items()}
    expected = {"rempart-lab-private": str(spec["underlay"])}
    if spec.get("public"):
        expected["rempart-lab-public"] = str(spec["public"])
    assert addresses == expected


def test_client_is_on_the_public_network_only(lab_topology):
    networks = docker_inspect("client")["NetworkSettings"]["Networks"]
    assert list(networks) == ["rempart-lab-public"]


def test_endpoints_contract(endpoints, lab_topology):
    assert endpoints["environment"] == "lab"
    assert endpoints["ssh"]["bastion"] == str(lab_topology["hosts"]["bastion1"]["public"])
    assert isinstance(endpoints["urls"], dict)
    ca = x509.load_pem_x509_certificate((LAB_DIR / "ca.crt").read_bytes())
    assert ca.subject.rfc4514_string() == f"CN={lab_topology['identity']['ca_name']}"
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


@pytest.mark.parametrize("host", LAB_HOSTS)
def test_host_is_converged_with_the_base_tier(host):
    result = ssh(host, "systemctl is-active chrony && id -nG labops && test -s /var/log/journal/*/system.journal && echo ok")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sysadmins" in result.stdout and result.stdout.strip().endswith("ok")
