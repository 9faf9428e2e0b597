"""Segmentation and private links, seen from the hosts and from the wire (SEG, LINK, ENC).

1. Reachability matrix: from every host to every other (overlay and underlay addresses) and from the
   client to the public addresses, every port the flow matrix names plus common ones. The set of
   (source, destination, port) that the firewalls let through must equal what the flow matrix says.
2. Public surface: from the client, only the edge's public services may answer.
3. Nothing in clear: while the tests above run, everything captured between hosts on the underlay is
   WireGuard (UDP on the mesh's port, WireGuard message types).
The capture runs on the engine host's bridge of the underlay network, for the whole module.
"""

from __future__ import annotations

import concurrent.futures
import json
import shlex
import shutil
import struct
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import LAB_DIR, ssh

from rempart import topology as model

pytestmark = [pytest.mark.SEG, pytest.mark.LINK, pytest.mark.ENC]

TOPOLOGY = model.check(model.INVENTORIES / "lab" / model.TOPOLOGY_FILE)
HOSTS = TOPOLOGY["hosts"]
UNDERLAY_NETWORK = "rempart-lab-private"
WIREGUARD_PORT = model.port(TOPOLOGY, "wireguard")
WG = TOPOLOGY["wiring"]["overlay_interface"]
SERVICES = TOPOLOGY["services"].values()
# Besides every port of every service: well-known ports no service of the platform uses (mail, MySQL,
# an alternative HTTP), which must be closed everywhere.
FOREIGN_TCP = (25, 3306, 8080)
COMMON_TCP = tuple(sorted({p for s in SERVICES if s["proto"] == "tcp" for p in s.get("ports", [])} | set(FOREIGN_TCP)))
COMMON_UDP = tuple(sorted({p for s in SERVICES if s["proto"] == "udp" for p in s.get("ports", [])}))
PROBE = (Path(__file__).parent / "probe.py").read_text(encoding="utf-8")
# The client's scan of the public addresses: the well-known ports and every port named above.
PUBLIC_SCAN = sorted(set(range(1, 1025)) | set(COMMON_TCP))


def matrix_ports() -> list[tuple[str, int]]:
    """(proto, port) tried everywhere: every port of the flow matrix, the common ones, and ICMP."""
    named = {(o.proto, port) for o in model.openings(TOPOLOGY) for port in o.ports}
    common = {("tcp", p) for p in COMMON_TCP} | {("udp", p) for p in COMMON_UDP}
    return sorted(named | common) + [("icmp", 0)]


def expected_open() -> set[tuple[str, str, str, int]]:
    """(source, destination address kind + host, proto, port) the flow matrix opens, as seen from the lab."""
    expected = set()
    for opening in model.openings(TOPOLOGY):
        ports = opening.ports or (0,)
        src_end = opening.src
        sources = ["client"] if src_end == "internet" else [] if src_end == "operators" else model.members(TOPOLOGY, src_end)
        kind = "public" if src_end in model.OUTSIDE_ENDS else "overlay"
        for src in sources:
            for dst in model.members(TOPOLOGY, opening.dst):
                if dst != src:
                    expected |= {(src, f"{dst}/{kind}", opening.proto, port) for port in ports}
    # What the probes can see: TCP, UDP and ICMP (not VRRP).
    probed = set(matrix_ports())
    return {triple for triple in expected if (triple[2], triple[3]) in probed}


def run_probe(source: str, targets: list[list], timeout: float = 2.0, workers: int = 64) -> list[list]:
    """Run probe.py on ``source`` (a host, over SSH as the operator; or the client, through the engine)."""
    request = json.dumps({"timeout": timeout, "workers": workers, "targets": targets}) + "\n"
    if source == "client":
        command = ["docker", "exec", "-i", "client", "python3", "-c", PROBE]
    else:
        command = ["ssh", "-F", str(LAB_DIR / "ssh_config"), "-o", "BatchMode=yes", source, "python3 -c " + shlex.quote(PROBE)]
    result = subprocess.run(command, input=request, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, f"probe from {source} failed: {result.stderr}"
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


@pytest.fixture(scope="module", autouse=True)
def capture(tmp_path_factory):
    """tcpdump on the underlay's bridge, host to host only, for the whole module."""
    if not shutil.which("tcpdump"):
        pytest.fail("tcpdump is missing on the engine host: `make engine` installs it (apt-get install tcpdump)")
    network = json.loads(subprocess.run(["docker", "network", "inspect", UNDERLAY_NETWORK], capture_output=True,
                                        text=True, check=True).stdout)[0]
    bridge = network["Options"].get("com.docker.network.bridge.name") or f"br-{network['Id'][:12]}"
    underlay = TOPOLOGY["ranges"]["underlay"]
    path = tmp_path_factory.mktemp("capture") / "underlay.pcap"
    process = subprocess.Popen(
        ["tcpdump", "-i", bridge, "-n", "-s", "128", "-U", "-w", str(path), f"ip and src net {underlay} and dst net {underlay}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    time.sleep(1.5)
    assert process.poll() is None, process.stderr.read().decode()
    state = {"path": path, "process": process}
    yield state
    if process.poll() is None:
        process.terminate()
        process.wait(timeout=10)


def test_reachability_matrix_equals_the_flow_matrix(capture):
    start = time.monotonic()
    ports = matrix_ports()
    jobs = {}
    for src in sorted(HOSTS):
        targets = []
        for dst, spec in sorted(HOSTS.items()):
            if dst == src:
                continue
            targets += [[str(spec["overlay"]), proto, port] for proto, port in ports]
            targets += [[str(spec["underlay"]), proto, port] for proto, port in ports]
        jobs[src] = targets
    jobs["client"] = [[str(spec["public"]), proto, port] for dst, spec in sorted(HOSTS.items()) if spec.get("public")
                      for proto, port in ports]
    by_address = {}
    for name, spec in HOSTS.items():
        for kind in model.ADDRESS_KINDS:
            if spec.get(kind):
                by_address[str(spec[kind])] = f"{name}/{kind}"
    observed, tried, outcomes = set(), 0, Counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = {pool.submit(run_probe, src, targets): src for src, targets in jobs.items()}
        for future in concurrent.futures.as_completed(futures):
            src = futures[future]
            for address, proto, port, outcome in future.result():
                tried += 1
                outcomes[outcome] += 1
                if outcome in ("open", "answers"):
                    observed.add((src, by_address[address], proto, port))
    expected = expected_open()
    # A first packet may wait for a WireGuard handshake: what the matrix allows but did not get through
    # is tried once more, with more time. (Nothing is retried the other way: an open port is a fact.)
    address_of = {end: address for address, end in by_address.items()}
    retry: dict[str, list] = {}
    for src, dst, proto, port in expected - observed:
        retry.setdefault(src, []).append([address_of[dst], proto, port])
    for src, targets in retry.items():
        for address, proto, port, outcome in run_probe(src, targets, timeout=6.0):
            if outcome in ("open", "answers"):
                observed.add((src, by_address[address], proto, port))
    elapsed = time.monotonic() - start
    pairs = sum(len({t[0] for t in targets}) for targets in jobs.values())
    print(f"\nreachability matrix: {len(jobs)} sources, {pairs} (source, address) pairs x {len(ports)} ports "
          f"= {tried} probes in {elapsed:.1f} s ({sum(map(len, retry.values()))} tried again); outcomes {dict(outcomes)}; "
          f"{len(expected)} open as the matrix says")
    capture["matrix"] = {"probes": tried, "pairs": pairs, "ports": len(ports), "seconds": round(elapsed, 1)}
    missing, extra = expected - observed, observed - expected
    if missing or extra:
        table = _zone_table(observed, expected)
        pytest.fail(
            f"the firewalls do not enforce the flow matrix:\n  missing (allowed by the matrix, blocked): "
            f"{sorted(missing)}\n  extra (open, not in the matrix): {sorted(extra)}\n{table}"
        )


def _zone_table(observed: set, expected: set) -> str:
    """(source zone, destination zone) -> ports, observed vs expected, for a human."""
    def zone(name: str) -> str:
        return "internet" if name == "client" else HOSTS[name.split("/")[0]]["zone"]

    def fold(triples: set) -> dict:
        table: dict = {}
        for src, dst, proto, port in triples:
            table.setdefault((zone(src), zone(dst)), set()).add(f"{port}/{proto}" if proto != "icmp" else "icmp")
        return table

    seen, want = fold(observed), fold(expected)
    lines = ["source zone -> destination zone: observed | expected"]
    for key in sorted(set(seen) | set(want)):
        mark = "" if seen.get(key) == want.get(key) else "   <-- differs"
        lines.append(f"  {key[0]:>8} -> {key[1]:<5}: {sorted(seen.get(key, []))} | {sorted(want.get(key, []))}{mark}")
    return "\n".join(lines)


def test_public_surface_is_the_edge_only():
    """From the client (the internet), only the WAFs' 80 and 443 may answer; until the edge exists, nothing."""
    publics = {str(spec["public"]): name for name, spec in HOSTS.items() if spec.get("public")}
    targets = [[address, "tcp", port] for address in publics for port in PUBLIC_SCAN]
    results = run_probe("client", targets, timeout=1.0, workers=256)
    answered = {(publics[address], port) for address, _proto, port, outcome in results if outcome == "answers"}
    public = {p for s in SERVICES if s.get("public") for p in s.get("ports", [])}
    edge = {(name, port) for name in model.members(TOPOLOGY, "waf") for port in public}
    print(f"\npublic surface: {len(targets)} ports tried from the client, answered: {sorted(answered) or 'none'}")
    assert answered <= edge, f"answering from the internet beyond the edge's public services: {sorted(answered - edge)}"
    bastion = [name for name in publics.values() if name in model.members(TOPOLOGY, "bastion")]
    assert not any(name in bastion for name, _port in answered), "the bastion answers someone outside the operators' ranges"


@pytest.mark.parametrize("host", sorted(HOSTS))
def test_mesh_has_a_recent_handshake_with_every_peer(host):
    result = ssh(host, f"sudo wg show {WG} latest-handshakes; date +%s")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split()
    now, handshakes = int(lines[-1]), [int(t) for t in lines[1:-1:2]]
    assert len(handshakes) == len(HOSTS) - 1, result.stdout
    stale = [t for t in handshakes if now - t > 180]
    assert not stale, f"{host}: {len(stale)} peer(s) without a handshake in 3 minutes: {result.stdout}"


def test_nothing_in_clear_on_the_underlay(capture):
    """Runs last in the module: everything host to host on the underlay during the tests was WireGuard."""
    # Traffic of its own, to be sure the capture sees the mesh at work.
    for host in sorted(HOSTS):
        assert ssh(host, "true").returncode == 0
    time.sleep(1)
    capture["process"].terminate()
    capture["process"].wait(timeout=10)
    packets = list(_read_pcap(capture["path"]))
    kinds = Counter(kind for kind, _pair in packets)
    pairs = {pair for kind, pair in packets if kind == "wireguard"}
    print(f"\nunderlay capture: {len(packets)} packets host to host, {dict(kinds)}, {len(pairs)} host pairs")
    assert packets, "no packet captured between hosts: the capture saw nothing (wrong bridge?)"
    clear = [(kind, pair) for kind, pair in packets if kind != "wireguard"]
    assert not clear, f"{len(clear)} packets on the underlay were not WireGuard, e.g. {clear[:5]}"


def _read_pcap(path: Path):
    """(kind, (src, dst)) for each IPv4 packet of a pcap (Ethernet); kind 'wireguard' or what it was."""
    data = path.read_bytes()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    offset = 24
    while offset + 16 <= len(data):
        _sec, _usec, caplen, _origlen = struct.unpack(endian + "IIII", data[offset:offset + 16])
        frame = data[offset + 16:offset + 16 + caplen]
        offset += 16 + caplen
        if len(frame) < 34 or frame[12:14] != b"\x08\x00":
            continue
        ip = frame[14:]
        header = (ip[0] & 0x0F) * 4
        proto = ip[9]
        pair = (".".join(map(str, ip[12:16])), ".".join(map(str, ip[16:20])))
        if proto != 17:
            yield {1: "icmp", 6: "tcp"}.get(proto, f"ip-proto-{proto}"), pair
            continue
        sport, dport = struct.unpack(">HH", ip[header:header + 4])
        payload = ip[header + 8:header + 12]
        is_wireguard = (
            WIREGUARD_PORT in (sport, dport) and len(payload) == 4 and payload[0] in (1, 2, 3, 4) and payload[1:] == b"\0\0\0"
        )
        yield ("wireguard" if is_wireguard else f"udp {sport}->{dport}"), pair
