"""What the tool tests that run real servers on this machine share (Prometheus, the blackbox exporter): a free
loopback port, and the wait until a server answers."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A loopback port free now (TCP, or UDP with socket.SOCK_DGRAM)."""
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_ready(url: str, what: str, process: subprocess.Popen, timeout: float = 30) -> None:
    """Until ``url`` answers; the process is killed and the test fails if it does not within ``timeout``."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError(f"{what} did not answer at {url}")
