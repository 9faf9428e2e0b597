"""A package cache shared by every lab and molecule container: an nginx caching proxy on the engine host.

Containers install packages in parallel: sharing one archive directory would make them fight over
apt's lock, and apt-cacher-ng stalls clients that refresh the same index at the same moment. This
is a plain nginx (Debian's package) run with its own configuration under the user's cache folder,
as a forward proxy for the Debian archive only:

- packages (``*.deb``) are cached for 30 days; concurrent misses of one file are fetched once
  (``proxy_cache_lock``);
- index files pass through uncached, so apt always sees the archive as it is.

Containers reach it as ``host.docker.internal:<port>`` through the apt setting written to
``proxy_conf_path()`` and mounted into each of them. When it cannot run (not root on Debian and no
nginx), that file says so and containers use the mirrors directly: slower, never wrong.

Its port is the lab topology's ``update-proxy`` service (the path the lab hosts' firewalls open), read
from ``inventories/lab/topology.yml``. Standard library only: this runs before the project's
virtualenv exists, so that one line is read without a YAML parser.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

from . import engine

LAB_TOPOLOGY = Path(__file__).resolve().parent.parent / "inventories" / "lab" / "topology.yml"


def _lab_port() -> int:
    """The port of the lab topology's update-proxy service, written there once."""
    text = LAB_TOPOLOGY.read_text(encoding="utf-8")
    match = re.search(r"^\s+update-proxy:\s*\{[^}\n]*\bports:\s*\[(\d+)\]", text, re.M)
    if not match:
        raise SystemExit(
            f"aptcache: {LAB_TOPOLOGY} declares no `update-proxy: {{..., ports: [PORT], ...}}` service on one line: "
            "the package cache listens on that port; declare it there."
        )
    return int(match.group(1))


PORT = _lab_port()
PROXY_URL = f"http://host.docker.internal:{PORT}"
# The only archive the proxy forwards to (it is no open proxy).
ALLOWED_HOSTS = ("deb.debian.org", "security.debian.org")
CLIENT_NETWORKS = ("127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rempart"


def proxy_conf_path() -> Path:
    return cache_dir() / "apt-proxy.conf"


def nameservers() -> list[str]:
    servers = []
    for line in Path("/etc/resolv.conf").read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver" and ":" not in parts[1]:
            servers.append(parts[1])
    return servers or ["127.0.0.1"]


def nginx_conf(base: Path, resolvers: list[str]) -> str:
    allowed = "|".join(host.replace(".", r"\.") for host in ALLOWED_HOSTS)
    clients = "\n".join(f"        allow {net};" for net in CLIENT_NETWORKS)
    # Run as root, nginx's workers would drop to nobody, who cannot reach a cache under root's home.
    user = "user root;\n" if os.geteuid() == 0 else ""
    return f"""# Written by `python -m rempart aptcache`: the package cache of the Rempart lab.
{user}worker_processes 2;
pid {base}/nginx.pid;
error_log {base}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {base}/tmp/body;
    proxy_temp_path {base}/tmp/proxy;
    fastcgi_temp_path {base}/tmp/fastcgi;
    uwsgi_temp_path {base}/tmp/uwsgi;
    scgi_temp_path {base}/tmp/scgi;
    resolver {' '.join(resolvers)} valid=300s ipv6=off;
    proxy_cache_path {base}/cache levels=1:2 keys_zone=debs:10m max_size=20g inactive=30d use_temp_path=off;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_read_timeout 60s;
    server {{
        listen {PORT};
{clients}
        deny all;
        if ($host !~ ^({allowed})$) {{ return 403; }}
        location ~ \\.deb$ {{
            proxy_pass http://$host$request_uri;
            proxy_cache debs;
            proxy_cache_key $host$request_uri;
            proxy_cache_valid 200 30d;
            proxy_cache_lock on;
            proxy_cache_lock_timeout 120s;
        }}
        location / {{
            proxy_pass http://$host$request_uri;
        }}
    }}
}}
"""


def listening(port: int = PORT) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _nginx() -> str | None:
    return shutil.which("nginx") or (str(Path("/usr/sbin/nginx")) if Path("/usr/sbin/nginx").exists() else None)


def _start(nginx: str, conf: Path, changed: bool) -> None:
    pid_file = conf.parent / "nginx.pid"
    running = listening() and pid_file.exists()
    if running and not changed:
        return
    subprocess.run([nginx, "-t", "-q", "-c", str(conf)], check=True)
    if running:
        subprocess.run([nginx, "-s", "reload", "-c", str(conf)], check=True)
    else:
        subprocess.run([nginx, "-c", str(conf)], check=True)
    deadline = time.monotonic() + 10
    while not listening():
        if time.monotonic() > deadline:
            raise engine.EngineError(f"the package cache does not answer on port {PORT}; see {conf.parent}/error.log")
        time.sleep(0.2)


def ensure() -> bool:
    """Run the cache if we may; write the containers' apt proxy setting either way."""
    base = cache_dir() / "aptcache"
    nginx = _nginx()
    if not nginx and os.geteuid() == 0 and engine.is_debian():
        engine.apt_install(["nginx-light"], "the lab's package cache runs on nginx")
        nginx = _nginx()
    available = False
    if nginx:
        for sub in ("cache", "tmp"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        conf = base / "nginx.conf"
        text = nginx_conf(base, nameservers())
        changed = not conf.exists() or conf.read_text(encoding="utf-8") != text
        if changed:
            conf.write_text(text, encoding="utf-8")
        _start(nginx, conf, changed)
        available = True
    if available:
        text = (
            "// Written by `python -m rempart aptcache`: lab containers fetch packages through the\n"
            "// package cache of the machine that runs the lab.\n"
            f'Acquire::http::Proxy "{PROXY_URL}";\n'
        )
    else:
        print(
            "aptcache: no nginx here and not root on Debian: containers download packages from the "
            "mirrors directly (install nginx-light to share one cache).",
            flush=True,
        )
        text = "// No package cache on the machine that runs the lab: mirrors are used directly.\n"
    conf_path = proxy_conf_path()
    conf_path.parent.mkdir(parents=True, exist_ok=True)
    if not conf_path.exists() or conf_path.read_text(encoding="utf-8") != text:
        conf_path.write_text(text, encoding="utf-8")
    return available


def main(argv: list[str] | None = None) -> int:  # noqa: ARG001 - no options
    return engine.run_command("aptcache", ensure)
