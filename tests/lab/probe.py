"""Runs on a lab host (piped to python3 over SSH): try every target, print one JSON line per result.

Input on the first line of stdin: {"timeout": seconds, "targets": [[address, proto, port], ...]}. A TCP target is "open" when
the firewalls let the connection through (it completes, or the host answers with a reset); "answers"
when a service accepted it. A drop shows as a timeout (by the destination) or as EPERM (by this
host's own output rules). ICMP: an echo reply. UDP: an answer or a port-unreachable from the host.
Python's standard library only: the hosts have nothing else.
"""

import concurrent.futures
import errno
import json
import random
import shutil
import socket
import struct
import subprocess
import sys
import time

TIMEOUT = 2.0  # replaced by the input's


def stream(address, port, kind):
    """TCP: connect. UDP: send one datagram, wait for an answer or the port-unreachable."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM)
    sock.settimeout(TIMEOUT)
    try:
        sock.connect((address, port))
        if kind == "udp":
            sock.send(b"rempart-probe")
            sock.recv(512)
        return "answers"
    except ConnectionRefusedError:
        return "open"
    except OSError as exc:
        return "blocked-here" if exc.errno == errno.EPERM else "blocked"
    finally:
        sock.close()


def icmp(address, _port):
    if shutil.which("ping"):
        wait = str(max(1, round(TIMEOUT)))
        ping = subprocess.run(["ping", "-n", "-q", "-c", "1", "-W", wait, address], capture_output=True, check=False)
        return "answers" if ping.returncode == 0 else "blocked"
    return raw_echo(address)


def raw_echo(address):
    """One ICMP echo over a raw socket (root, where no ping is installed: the client)."""
    ident = random.randrange(1, 65535)
    header = struct.pack("!BBHHH", 8, 0, 0, ident, 1) + b"rempart!"
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    total = (total >> 16) + (total & 0xFFFF)
    checksum = ~(total + (total >> 16)) & 0xFFFF
    packet = header[:2] + struct.pack("!H", checksum) + header[4:]
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as sock:
        sock.settimeout(TIMEOUT)
        try:
            sock.sendto(packet, (address, 0))
            deadline = time.monotonic() + TIMEOUT
            while time.monotonic() < deadline:
                data, source = sock.recvfrom(1024)
                reply = data[(data[0] & 0x0F) * 4:]
                if source[0] == address and reply[0] == 0 and struct.unpack("!H", reply[4:6])[0] == ident:
                    return "answers"
        except OSError as exc:
            return "blocked-here" if exc.errno == errno.EPERM else "blocked"
    return "blocked"


def main():
    global TIMEOUT  # noqa: PLW0603
    request = json.loads(sys.stdin.readline())
    TIMEOUT, targets = float(request["timeout"]), request["targets"]
    probes = {"tcp": lambda a, p: stream(a, p, "tcp"), "udp": lambda a, p: stream(a, p, "udp"), "icmp": icmp}
    with concurrent.futures.ThreadPoolExecutor(max_workers=int(request.get("workers", 64))) as pool:
        results = pool.map(lambda t: [*t, probes[t[1]](t[0], t[2])], targets)
        for result in results:
            print(json.dumps(result))


main()
