"""The etcd cluster of the data tier, seen from its clients (HA, ENC).

Members, addresses and ports come from the topology; every port asks for a certificate of the
environment's CA (role pki) and nothing else.
"""

from __future__ import annotations

import json

import pytest
from conftest import ssh

from rempart import topology as model

pytestmark = pytest.mark.HA

TOPOLOGY = model.check(model.INVENTORIES / "lab" / model.TOPOLOGY_FILE)
MEMBERS = model.members(TOPOLOGY, "etcd")
PKI = TOPOLOGY["wiring"]["pki_dir"]
CLIENT_PORT = model.port(TOPOLOGY, "etcd-client")
PEER_PORT = model.port(TOPOLOGY, "etcd-peer")
TLS = f"--cacert {PKI}/ca.crt --cert {PKI}/host.crt --key {PKI}/private/host.key"


def url(host: str, port: int = CLIENT_PORT) -> str:
    return f"https://{TOPOLOGY['hosts'][host]['overlay']}:{port}"


def etcdctl(host: str, command: str, endpoints: str) -> str:
    result = ssh(host, f"sudo env ETCDCTL_API=3 etcdctl {TLS} --endpoints={endpoints} --command-timeout=5s {command}")
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_every_member_is_healthy_and_the_members_are_the_topology_s():
    endpoints = ",".join(url(host) for host in MEMBERS)
    health = json.loads(etcdctl(MEMBERS[0], "endpoint health -w json", endpoints))
    assert sorted(entry["endpoint"] for entry in health if entry["health"]) == sorted(url(host) for host in MEMBERS)
    members = json.loads(etcdctl(MEMBERS[0], "member list -w json", endpoints))["members"]
    assert {member["name"]: member["peerURLs"] for member in members} == {host: [url(host, PEER_PORT)] for host in MEMBERS}


def test_a_write_on_one_member_is_read_on_another():
    first, last = MEMBERS[0], MEMBERS[-1]
    etcdctl(first, "put /rempart-test/written-on " + first, url(first))
    assert etcdctl(last, "get --print-value-only /rempart-test/written-on", url(last)).strip() == first
    etcdctl(first, "del /rempart-test/written-on", url(first))


@pytest.mark.ENC
@pytest.mark.parametrize("port", [CLIENT_PORT, PEER_PORT])
def test_each_port_refuses_a_client_without_a_certificate_of_the_environment_s_ca(port):
    """Without a certificate, or with one of another CA, the TLS handshake fails; with the host's
    certificate the same request is answered."""
    host, server = MEMBERS[0], MEMBERS[-1]
    target = url(server, port) + ("/health" if port == CLIENT_PORT else "/version")
    curl = f"curl -sS --http1.1 --max-time 5 --cacert {PKI}/ca.crt"
    result = ssh(host, f"""
        {curl} {target} >/dev/null 2>&1 && echo none-accepted || echo none-refused
        d=$(mktemp -d) && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN={host} \
            -keyout $d/k -out $d/c 2>/dev/null
        {curl} --cert $d/c --key $d/k {target} >/dev/null 2>&1 && echo other-ca-accepted || echo other-ca-refused
        rm -rf $d
        sudo {curl} --cert {PKI}/host.crt --key {PKI}/private/host.key {target} >/dev/null && echo own-accepted
    """)
    assert result.stdout.split() == ["none-refused", "other-ca-refused", "own-accepted"], result.stderr


@pytest.mark.SEG
@pytest.mark.parametrize("host", MEMBERS)
def test_members_listen_on_their_overlay_address_only(host):
    listening = ssh(host, f"ss -Htln '( sport = :{CLIENT_PORT} or sport = :{PEER_PORT} )' | awk '{{print $4}}' | sort").stdout.split()
    overlay = TOPOLOGY["hosts"][host]["overlay"]
    assert listening == sorted([f"{overlay}:{CLIENT_PORT}", f"{overlay}:{PEER_PORT}"])
