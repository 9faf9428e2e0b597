"""The firewall seen from outside: flows of the matrix open, everything else closed, the underlay
carries WireGuard only, drops are counted (and reach the node exporter), a bad ruleset never replaces a good one, and a ruleset
that would cut the applying session is taken back."""

from __future__ import annotations

import re
import socket
import time

import pytest

from rempart import collectors, scenario
from rempart import topology as model

pytestmark = pytest.mark.SEG

testinfra_hosts, TOPOLOGY = scenario.load(__file__)
HOSTS = TOPOLOGY["hosts"]
# Services and wiring as the scenario has them: the lab topology's (see .config/molecule/config.yml).
LAB = model.load(model.INVENTORIES / "lab" / model.TOPOLOGY_FILE)
SSH, POSTGRESQL, WIREGUARD = (model.port(LAB, name) for name in ("ssh", "postgresql", "wireguard"))
WG = LAB["wiring"]["overlay_interface"]
# A port no service uses, next to PostgreSQL's.
UNUSED = next(p for p in range(POSTGRESQL + 1, 65536)
              if all(p not in model.as_list(s.get("ports")) for s in LAB["services"].values()))
METRICS = collectors.names("firewall")
# Ports with a listener on every host during the tests: one the matrix opens (app -> db), one it does not.
LISTENED = (POSTGRESQL, UNUSED)


def node(name: str):
    return scenario.node(name)


def connects(src: str, address: str, port: int) -> bool:
    """A TCP connection from ``src`` to ``address``:``port`` completes (drops show as a timeout)."""
    cmd = f"timeout 3 bash -c 'exec 3<>/dev/tcp/{address}/{port}'"
    return node(src).run(cmd).rc == 0


def reaches(src: str, address: str, port: int) -> bool:
    """Like connects, for a path that must be open: tried again once after 5 s.

    Over the overlay, the first packet after a quiet spell waits for a WireGuard handshake, and a lost
    handshake is sent again after 5 s (REKEY_TIMEOUT), longer than connects waits.
    """
    if connects(src, address, port):
        return True
    time.sleep(5)
    return connects(src, address, port)


def counter(name: str, which: str) -> int:
    out = node(name).check_output(f"nft list counter inet rempart {which}")
    return int(re.search(r"packets (\d+) bytes", out).group(1))


@pytest.fixture(scope="module", autouse=True)
def listeners():
    """A listener on every address of every host, for the ports of LISTENED (sshd is there already)."""
    for name in HOSTS:
        for port in LISTENED:
            node(name).run(
                f"systemd-run --unit fw-test-{port} python3 -m http.server --bind 0.0.0.0 {port} "
                f"|| systemctl restart fw-test-{port}"
            )
    for name in HOSTS:
        for port in LISTENED:
            assert node(name).run(f"timeout 5 bash -c 'until ss -ltn | grep -q :{port}; do sleep 0.2; done'").rc == 0
    yield
    for name in HOSTS:
        for port in LISTENED:
            node(name).run(f"systemctl stop fw-test-{port}")


def test_default_deny_everywhere(host):
    for chain in ("input", "output", "forward"):
        out = host.check_output(f"nft list chain inet rempart {chain}")
        assert "policy drop;" in out, out


def test_ruleset_loads_at_boot(host):
    assert host.service("rempart-firewall").is_enabled
    assert host.run("systemctl restart rempart-firewall").rc == 0
    assert host.run("nft list table inet rempart").rc == 0


def test_allowed_flow_is_open_over_the_overlay_only():
    db = HOSTS["fw-db"]
    assert reaches("fw-app", db["overlay"], POSTGRESQL), "app -> db (postgresql) is in the matrix"
    assert not connects("fw-app", db["underlay"], POSTGRESQL), "the underlay carries WireGuard only"


def test_only_wireguard_itself_may_use_the_underlay():
    """Even towards WireGuard's port, a datagram from another program is refused at the source."""
    db = HOSTS["fw-db"]
    send = (
        "python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
        f"s.sendto(b\"clear\", (\"{db['underlay']}\", {WIREGUARD}))'"
    )
    result = node("fw-app").run(send)
    assert result.rc != 0 and "PermissionError" in result.stderr, result.stderr


def test_flows_not_in_the_matrix_are_closed():
    app, db = HOSTS["fw-app"], HOSTS["fw-db"]
    assert not connects("fw-app", db["overlay"], UNUSED), "a port no flow names"
    assert not connects("fw-db", app["overlay"], POSTGRESQL), "the reverse direction of a flow"
    assert not connects("fw-bastion", db["overlay"], POSTGRESQL), "a flow from another zone"


def test_ssh_only_from_the_bastion_over_the_overlay():
    app, db = HOSTS["fw-app"], HOSTS["fw-db"]
    assert reaches("fw-bastion", app["overlay"], SSH)
    assert reaches("fw-bastion", db["overlay"], SSH)
    assert not connects("fw-app", db["overlay"], SSH)
    assert not connects("fw-bastion", db["underlay"], SSH)


def test_public_side_admits_the_operators_only_on_their_port():
    bastion = HOSTS["fw-bastion"]
    # This test runs on the public network's gateway, the operators' range.
    with socket.create_connection((bastion["public"], SSH), timeout=3):
        pass
    with pytest.raises(OSError):
        socket.create_connection((bastion["public"], POSTGRESQL), timeout=3)


def test_icmp_follows_the_matrix():
    bastion, db = HOSTS["fw-bastion"], HOSTS["fw-db"]
    # An allowed echo: until one reply, for up to 12 s (a first handshake may need WireGuard's retry).
    assert node("fw-bastion").run(f"ping -c 1 -w 12 {db['overlay']}").rc == 0
    assert node("fw-app").run(f"ping -c 1 -W 2 {db['overlay']}").rc != 0
    assert node("fw-app").run(f"ping -c 1 -W 2 {db['underlay']}").rc != 0
    assert node("fw-db").run(f"ping -c 1 -W 2 {bastion['overlay']}").rc != 0


def test_drops_are_counted_and_rate_limited_logs_are_configured():
    db = HOSTS["fw-db"]
    before_underlay, before_out = counter("fw-db", "underlay_dropped"), counter("fw-app", "output_dropped")
    # From the underlay network's gateway (this machine): not a peer, and not WireGuard.
    with pytest.raises(OSError):
        socket.create_connection((db["underlay"], SSH), timeout=2)
    connects("fw-app", HOSTS["fw-bastion"]["overlay"], POSTGRESQL)
    assert counter("fw-db", "underlay_dropped") > before_underlay
    assert counter("fw-app", "output_dropped") > before_out
    rules = node("fw-db").check_output("nft list chain inet rempart input")
    assert 'limit rate 10/minute burst 20 packets log prefix "rempart drop in: "' in rules


def test_receiver_holds_when_a_sender_breaks_the_matrix():
    """A compromised app server that opens its own output still meets the database's input rules."""
    db = HOSTS["fw-db"]
    before, over_the_mesh = counter("fw-db", "input_dropped"), counter("fw-db", "overlay_dropped")
    node("fw-app").check_output(f"nft 'insert rule inet rempart output oifname \"{WG}\" tcp dport {UNUSED} accept'")
    try:
        assert not connects("fw-app", db["overlay"], UNUSED)
    finally:
        node("fw-app").check_output("/usr/local/sbin/rempart-firewall apply")
    assert counter("fw-db", "input_dropped") > before
    # Counted apart too: it came from another host over the mesh (the monitoring's FirewallDropsBetweenServers).
    assert counter("fw-db", "overlay_dropped") > over_the_mesh


def test_the_drops_reach_the_node_exporter(host):
    """What the monitoring tier's FirewallDropsBetweenServers, FirewallNotLoaded and FlowPathCut read: a timer writes
    the table's counters and each flow's path every minute; run it now, after a packet out that no flow allows."""
    name = host.backend.get_hostname()
    assert host.service(METRICS["timer"]).is_enabled
    connects(name, HOSTS[next(h for h in HOSTS if h != name)]["overlay"], UNUSED)
    host.run_expect([0], f"systemctl start {METRICS['service']}")
    written = host.file(f"{LAB['wiring']['metrics_textfile_dir']}/rempart_firewall.prom")
    assert written.mode == 0o644
    found = {line.rsplit(" ", 1)[0]: int(line.rsplit(" ", 1)[1]) for line in written.content_string.splitlines()
             if line and not line.startswith("#")}
    assert found["rempart_firewall_loaded"] == 1
    kinds = {"input", "overlay", "output", "forward", "underlay"}
    assert {key.split('"')[1] for key in found if key.startswith("rempart_firewall_dropped_packets_total{")} == kinds
    assert 0 < found['rempart_firewall_dropped_packets_total{counter="output"}'] <= counter(name, "output_dropped")
    # Each flow's path out of the host, a SYN from it (a reset is an open path: no service listens in this scenario).
    paths = {key: value for key, value in found.items() if key.startswith("rempart_flow_path_open{")}
    assert paths == {f'rempart_flow_path_open{{to="{t["to"]}",service="{t["service"]}",port="{t["port"]}"}}': 1
                     for t in model.tcp_flow_targets({**TOPOLOGY, "services": LAB["services"]}, name)}


def test_declared_path_for_updates_works(host):
    result = host.run("apt-get -o Acquire::Retries=0 -qq update")
    assert result.rc == 0, result.stderr


def test_a_ruleset_that_does_not_validate_leaves_the_running_one(host):
    before = host.check_output("nft -s list table inet rempart")
    host.check_output("cp /etc/rempart/firewall.nft /tmp/broken.nft && echo 'chain nonsense {' >> /tmp/broken.nft")
    assert host.run("/usr/local/sbin/rempart-firewall apply /tmp/broken.nft").rc != 0
    assert host.check_output("nft -s list table inet rempart") == before


def test_rules_that_cut_the_session_are_taken_back(host):
    """load-armed restores the previous table unless confirmed: what the role relies on (no lock-out)."""
    marker = 'tcp dport 4444 accept comment "previous rules"'
    host.check_output(f"nft 'add rule inet rempart input {marker}'")
    assert host.run("/usr/local/sbin/rempart-firewall load-armed 2").rc == 0
    assert marker not in host.check_output("nft list chain inet rempart input")
    chain = scenario.eventually(lambda: host.check_output("nft list chain inet rempart input"), lambda out: marker in out, 15, interval=0.5)
    assert marker in chain, "the previous rules did not come back"
    host.check_output("/usr/local/sbin/rempart-firewall apply")


def test_fact_records_what_was_applied(host):
    fact = host.file("/etc/ansible/facts.d/rempart_firewall.fact").content_string
    assert '"underlay"' in fact and '"rules"' in fact
