"""A package cache shared by every lab and molecule container: Debian's apt-cacher-ng on the engine host.

Containers install packages in parallel; sharing one archive directory would make them fight over
apt's lock, a caching proxy does not. The containers reach it as ``host.docker.internal:3142``
through the file written to ``proxy_conf_path()`` and mounted into each of them as apt configuration.

When the proxy cannot be had (not root on Debian), the file says so and containers use the
mirrors directly: slower, never wrong.

Standard library only: this runs before the project's virtualenv exists.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from . import engine

PORT = 3142
# apt-cacher-ng forwards requests for Debian's archive to the mirrors listed here. Debian installs the
# file empty, which makes it pick mirrors from its own list; pin the one our sources name.
BACKENDS_DEBIAN = Path("/etc/apt-cacher-ng/backends_debian")
DEBIAN_MIRROR = "http://deb.debian.org/debian/"
PROXY_URL = f"http://host.docker.internal:{PORT}"


def proxy_conf_path() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "rempart" / "apt-proxy.conf"


def listening(port: int = PORT) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _configured() -> bool:
    try:
        return BACKENDS_DEBIAN.read_text(encoding="utf-8").strip() != ""
    except OSError:
        return True  # not ours to configure (another machine's or a user's proxy)


def _install_and_start() -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if not shutil.which("apt-cacher-ng"):
        print("aptcache: installing Debian's apt-cacher-ng", flush=True)
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "apt-cacher-ng"],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
    action = "start"
    if BACKENDS_DEBIAN.read_text(encoding="utf-8").strip() == "":
        BACKENDS_DEBIAN.write_text(DEBIAN_MIRROR + "\n", encoding="utf-8")
        action = "restart"
    elif listening():
        return
    if Path("/run/systemd/system").is_dir():
        subprocess.run(["systemctl", action, "apt-cacher-ng"], check=True)
    else:
        subprocess.run(["/etc/init.d/apt-cacher-ng", action], check=True, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not listening():
        if time.monotonic() > deadline:
            raise engine.EngineError(f"apt-cacher-ng does not answer on port {PORT}")
        time.sleep(0.3)


def ensure() -> bool:
    """Start the cache if we may; write the containers' apt proxy file either way."""
    conf = proxy_conf_path()
    conf.parent.mkdir(parents=True, exist_ok=True)
    available = listening() and _configured()
    if not available and os.geteuid() == 0 and engine.is_debian():
        _install_and_start()
        available = True
    if available:
        text = (
            "// Written by `python -m rempart aptcache`: lab containers fetch packages through the\n"
            "// apt-cacher-ng of the machine that runs the lab.\n"
            f'Acquire::http::Proxy "{PROXY_URL}";\n'
        )
    else:
        print(
            "aptcache: no apt-cacher-ng here and not root on Debian: containers download packages "
            "from the mirrors directly (install apt-cacher-ng to share one cache).",
            flush=True,
        )
        text = "// No package cache on the machine that runs the lab: mirrors are used directly.\n"
    if not conf.exists() or conf.read_text(encoding="utf-8") != text:
        conf.write_text(text, encoding="utf-8")
    return available


def main(argv: list[str] | None = None) -> int:  # noqa: ARG001 - no options
    try:
        ensure()
    except (engine.EngineError, subprocess.CalledProcessError) as exc:
        print(f"aptcache: {exc}", file=sys.stderr)
        return 1
    return 0
