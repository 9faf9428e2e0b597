"""Make sure a Docker engine answers, installing Debian's docker.io when we may.

Order of preference:
1. an engine that already answers (``docker info``) is used as it is;
2. a ``docker.io`` that is installed but stopped is started (systemd if it runs, else ``dockerd`` detached);
3. on Debian, as root, ``docker.io`` is installed from Debian's archive, then started;
4. anything else stops with a message saying what to install.

Standard library only: this runs before the project's virtualenv exists.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

DOCKERD_LOG = Path("/var/log/rempart-dockerd.log")
# Prometheus's promtool, taken from Debian's prometheus package without installing it (installing it
# would start a Prometheus server on this machine): the tool tests check and unit-test the alert rules.
PROMTOOL = Path(__file__).resolve().parent.parent / "build" / "tools" / "promtool"
# Its server too, from the same package, never started as a service: the status page's tool test reads a
# Prometheus of its own, filled with a known history (promtool's backfill).
PROMETHEUS = PROMTOOL.parent / "prometheus"
# The blackbox exporter, likewise: the DNS probes' tool test runs it against a DNS server of its own (dnsmasq).
BLACKBOX = PROMTOOL.parent / "prometheus-blackbox-exporter"
DNSMASQ = Path("/usr/sbin/dnsmasq")
START_TIMEOUT_S = 60


class EngineError(RuntimeError):
    """The engine cannot be had here; the message says what to do."""


def answers() -> bool:
    if not shutil.which("docker"):
        return False
    result = subprocess.run(
        ["docker", "info", "--format", "{{.ServerVersion}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode == 0


def is_debian() -> bool:
    try:
        text = Path("/etc/os-release").read_text(encoding="utf-8")
    except OSError:
        return False
    return "ID=debian" in text.splitlines()


def apt_install(packages: list[str], why: str, recommends: bool = False) -> None:
    """Install Debian packages on this machine; only as root on Debian, else say what to install."""
    if os.geteuid() != 0 or not is_debian():
        raise EngineError(f"{why}: install {' '.join(packages)} (Debian: `apt-get install {' '.join(packages)}`).")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    print(f"installing Debian's {', '.join(packages)} ({why})", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", *([] if recommends else ["--no-install-recommends"]), *packages],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def _systemd_running() -> bool:
    return Path("/run/systemd/system").is_dir()


def install() -> None:
    """Install Debian's docker.io (root on Debian only)."""
    if os.geteuid() != 0 or not is_debian():
        raise EngineError(
            "No Docker engine answers and this is not root on Debian, so it will not be installed "
            "automatically. Install a Docker engine (Debian: `apt-get install docker.io`), start it, "
            "make sure `docker info` works for this user, then run make again."
        )
    apt_install(["docker.io", "iptables"], "no Docker engine answers")


def start() -> None:
    """Start the installed engine, through systemd when it is PID 1, detached otherwise."""
    if _systemd_running():
        subprocess.run(["systemctl", "start", "docker"], check=True)
        return
    dockerd = shutil.which("dockerd")
    if not dockerd:
        raise EngineError("dockerd is not installed: install Debian's docker.io.")
    print(f"engine: starting dockerd (log: {DOCKERD_LOG})", flush=True)
    with DOCKERD_LOG.open("ab") as log:
        subprocess.Popen(  # noqa: S603 - fixed command
            [dockerd],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def wait(timeout_s: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if answers():
            return
        time.sleep(0.5)
    raise EngineError(
        f"the Docker engine did not answer within {timeout_s:.0f} s; see {DOCKERD_LOG} "
        "or `journalctl -u docker`."
    )


def ensure_client_tools() -> None:
    """The controller's tools: the SSH client (the lab and the tests reach hosts over SSH), tcpdump
    (the lab tests capture the underlay to prove that nothing crosses it in clear), nft (the tool
    tests check rendered rulesets with `nft -c`) and testssl.sh (the lab tests judge the public
    entry point's TLS from the internet's side), chromium (the docs tests open the built site in a
    headless browser), openssl (the tool tests run role pki's certificates' collector, which reads
    certificates with it), promtool (the alert rules' checks and unit tests), Prometheus's server (the
    status page's tool test runs one on a history of its own), the blackbox exporter and dnsmasq (the DNS probes'
    tool test)."""
    if not shutil.which("ssh"):
        apt_install(["openssh-client"], "the lab and the tests reach hosts over SSH")
    if not shutil.which("tcpdump"):
        apt_install(["tcpdump"], "the lab tests capture the underlay (nothing in clear)")
    if not shutil.which("nft") and not Path("/usr/sbin/nft").exists():
        apt_install(["nftables"], "the tool tests check rendered firewall rules with nft -c")
    if not shutil.which("testssl"):
        apt_install(["testssl.sh"], "the lab tests judge the public entry point's TLS")
    if not shutil.which("openssl"):
        apt_install(["openssl"], "the tool tests run role pki's certificates' collector, which reads certificates with it")
    if not shutil.which("chromium"):
        apt_install(["chromium"], "the docs tests open the built site in a headless browser")
    if not PROMTOOL.exists() or not PROMETHEUS.exists():
        extract_promtool()
    if not BLACKBOX.exists():
        extract_blackbox()
    if not DNSMASQ.exists():
        apt_install(["dnsmasq-base"], "the tool tests serve the entry point's names with dnsmasq, no service started")


def extract_promtool() -> None:
    """promtool and the server from Debian's prometheus package (the version the monitoring hosts run),
    unpacked into build/tools/: nothing installed, nothing started."""
    extract("prometheus", {"promtool": PROMTOOL, "prometheus": PROMETHEUS},
            "the tool tests check and unit-test the alert rules with promtool")


def extract_blackbox() -> None:
    """The blackbox exporter from Debian's package (the version the probers run), unpacked into build/tools/."""
    extract("prometheus-blackbox-exporter", {"prometheus-blackbox-exporter": BLACKBOX},
            "the tool tests run the blackbox exporter's DNS probes against a DNS server")


def extract(package_name: str, binaries: dict[str, Path], why: str) -> None:
    """``binaries`` (/usr/bin's name -> where it goes) of a Debian package, unpacked with `apt-get download` and
    `dpkg-deb -x`: nothing installed, nothing started."""
    if not is_debian() or not shutil.which("dpkg-deb"):
        raise EngineError(f"{why}: put Debian 12's {', '.join(binaries)} (package {package_name}) at "
                          f"{', '.join(str(path) for path in binaries.values())}.")
    with tempfile.TemporaryDirectory() as scratch:
        download = ["apt-get", "download", "-qq", package_name]
        if subprocess.run(download, cwd=scratch, capture_output=True, check=False).returncode != 0:
            if os.geteuid() != 0:
                raise EngineError(f"{why}: `apt-get download {package_name}` failed; run `apt-get update` as root first.")
            subprocess.run(["apt-get", "update", "-qq"], check=True, stdout=subprocess.DEVNULL)
            subprocess.run(download, cwd=scratch, check=True, stdout=subprocess.DEVNULL)
        package = next(Path(scratch).glob(f"{package_name}_*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(package), str(Path(scratch) / "root")], check=True)
        for name, path in binaries.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(scratch) / "root" / "usr" / "bin" / name, path)
    print(f"{', '.join(path.name for path in binaries.values())}: in {PROMTOOL.parent} (from {package.name}, not installed)", flush=True)


def ensure() -> None:
    ensure_client_tools()
    if answers():
        return
    if not shutil.which("dockerd"):
        install()
    start()
    wait()
    print("engine: Docker engine answers", flush=True)


def run_command(name: str, action: Callable[[], object]) -> int:
    """A command's exit status: 0 when ``action`` ran, 1 with one line naming the command when the
    engine or a program it ran failed (never a traceback). Shared by engine, image, labimage, aptcache."""
    try:
        action()
    except (EngineError, subprocess.CalledProcessError) as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """``engine``: the controller's tools and a Docker engine; ``engine --tools``: the tools only."""
    return run_command("engine", ensure_client_tools if argv and argv[0] == "--tools" else ensure)
