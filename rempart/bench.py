"""The WAF benchmark (``make bench``; not a test): three setups side by side in one run, on one WAF
of the running lab, in front of the same backend.

- ``ours``: the WAF as role waf configured it (its nginx.conf and ModSecurity rules, read from the
  host), on a port of its own on the loopback;
- ``modsecurity_off``: the same nginx configuration with ModSecurity off;
- ``debian_default``: Debian's nginx with Debian's ModSecurity configuration (``/etc/nginx/modsecurity.conf``,
  its engine switched from DetectionOnly to On), Debian's Core Rule Set setup
  (``/etc/modsecurity/crs/crs-setup.conf``) at the same paranoia level and every rule file, as an
  administrator gets them by following the packages' own instructions.

The backend is one static answer (``200 ok``) on the same host, so that the figures measure the WAF,
not the e-service. For each setup: requests per second and latency percentiles (``wrk``, Debian) for a
small GET and for a form POST, each with a browser's headers; then the attack set
(rempart/attacks.py), whose answers must show no loss of blocking. Everything the benchmark adds to
the host (its configurations under /run, three nginx instances, ``wrk`` when it was missing) is
removed afterwards. The figures go to docs/results/waf-bench.json, which `make docs` renders on the
edge tier's page.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from rempart import audit, drill
from rempart.attacks import ATTACKS

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "docs" / "results" / "waf-bench.json"
WORK = "/run/rempart-bench"
BACKEND_PORT = 18080
PORTS = {"ours": 18441, "modsecurity_off": 18442, "debian_default": 18443}
TITLES = {"ours": "our WAF (role waf)", "modsecurity_off": "the same nginx, ModSecurity off",
          "debian_default": "a default Debian nginx + ModSecurity + CRS"}
DURATION_S, CONNECTIONS, THREADS = 10, 32, 2
# Rounds: each setup measured in turn, again and again, and the median kept, so that a burst of load
# elsewhere on the machine does not fall on one setup only.
ROUNDS = 3
# What a browser sends: the rule set scores a request without them (missing Accept, User-Agent).
BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
           "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
           "Accept-Language": "fr-CH,fr;q=0.9,de;q=0.8,en;q=0.7"}
FORM = ("procedure=residence-certificate&full_name=Ada+Muster&email=ada%40example.org"
        "&message=Bonjour%2C+merci+de+m%27envoyer+l%27attestation.")

BACKEND_CONF = f"""pid {WORK}/backend.pid;
error_log {WORK}/backend-error.log;
worker_processes 1;
events {{ worker_connections 1024; }}
http {{
	access_log off;
	server {{
		listen 127.0.0.1:{BACKEND_PORT};
		location / {{ default_type text/plain; return 200 "ok\\n"; }}
	}}
}}
"""

# Debian's defaults for nginx (its nginx.conf, TLS included) around one server that passes to the backend.
DEFAULT_CONF = """pid {work}/debian_default.pid;
user www-data;
worker_processes auto;
include /etc/nginx/modules-enabled/*.conf;
error_log {work}/debian_default-error.log;
events {{ worker_connections 768; }}
http {{
	sendfile on;
	tcp_nopush on;
	types_hash_max_size 2048;
	include /etc/nginx/mime.types;
	default_type application/octet-stream;
	ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;
	ssl_prefer_server_ciphers on;
	access_log {work}/debian_default-access.log;
	gzip on;
	modsecurity on;
	modsecurity_rules_file {work}/debian_default-rules.conf;
	server {{
		listen 127.0.0.1:{port} ssl;
		ssl_certificate {cert};
		ssl_certificate_key {key};
		location / {{
			proxy_pass http://127.0.0.1:{backend};
		}}
	}}
}}
"""

DEFAULT_RULES = """Include {work}/debian-modsecurity.conf
Include /etc/modsecurity/crs/crs-setup.conf
SecAction "id:900000,phase:1,nolog,pass,t:none,setvar:tx.paranoia_level={paranoia}"
Include /etc/modsecurity/crs/REQUEST-900-EXCLUSION-RULES-BEFORE-CRS.conf
Include /usr/share/modsecurity-crs/rules/*.conf
Include /etc/modsecurity/crs/RESPONSE-999-EXCLUSION-RULES-AFTER-CRS.conf
"""

POST_LUA = """wrk.method = "POST"
wrk.body = "{body}"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
"""

# Sends the attack set (JSON on standard input) to a port of the loopback; prints the statuses.
ATTACKER = r"""
import base64, http.client, json, ssl, sys
port, attacks = int(sys.argv[1]), json.load(sys.stdin)
context = ssl._create_unverified_context()  # the loopback, and the public certificate names the entry point
out = []
for attack in attacks:
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    body = base64.b64decode(attack["body"]) if attack["body"] else None
    conn.request(attack["method"], attack["path"], body=body, headers=attack["headers"])
    out.append(conn.getresponse().status)
    conn.close()
print(json.dumps(out))
"""


class BenchError(RuntimeError):
    pass


def _in(host: str, command: list[str], timeout: float = 120, stdin: str | None = None) -> str:
    result = subprocess.run(["docker", "exec", "-i", "-u", "root", "-w", "/", host, *command], input=stdin,
                            capture_output=True, text=True, check=False, timeout=timeout)
    if result.returncode != 0:
        raise BenchError(f"{' '.join(command)[:120]} on {host}: {(result.stderr or result.stdout).strip()[-1500:]}")
    return result.stdout


def _put(host: str, path: str, content: str) -> None:
    _in(host, ["sh", "-c", f"cat > {path}"], stdin=content)


def ours_conf(live: str, name: str, port: int, modsecurity: bool) -> str:
    """The role's nginx.conf, moved to the loopback: its pid and logs of its own, one HTTPS server on
    ``port`` (no redirect server), the backend as its upstream, no rate limit for the loopback."""
    text = live.replace("pid /run/nginx.pid;", f"pid {WORK}/{name}.pid;")
    text = text.replace("error_log /var/log/nginx/error.log warn;", f"error_log {WORK}/{name}-error.log warn;")
    text = re.sub(r"access_log \S+ rempart", f"access_log {WORK}/{name}-access.log rempart", text)
    text = re.sub(r"modsecurity_rules_file [^;]+;", f"modsecurity_rules_file {WORK}/ours-rules.conf;", text)
    if not modsecurity:
        text = text.replace("\tmodsecurity on;", "\tmodsecurity off;")
    text = re.sub(r"(upstream \S+ \{\n)(?:\t\tserver [^\n]+\n)+", lambda m: m.group(1) + f"\t\tserver 127.0.0.1:{BACKEND_PORT};\n", text)
    text = re.sub(r"proxy_pass https://", "proxy_pass http://", text)
    text = text.replace("\t\tdefault 1;\n", "\t\tdefault 1;\n\t\t127.0.0.1 0;\n", 1)
    # The redirect server goes; the HTTPS server listens on the loopback port.
    text = re.sub(r"\n\t# Port 80 only redirects to HTTPS\.\n\tserver \{.*?\n\t\}\n", "\n", text, flags=re.S)
    text = re.sub(r"listen \d+ ssl http2 default_server;", f"listen 127.0.0.1:{port} ssl http2 default_server;", text)
    if f"127.0.0.1:{port}" not in text or f"server 127.0.0.1:{BACKEND_PORT};" not in text:
        raise BenchError("the role's nginx.conf no longer has the shape the benchmark rewrites (listen, upstream): update rempart/bench.py")
    return text


def _wrk(host: str, port: int, post: bool) -> dict:
    headers = [arg for name, value in BROWSER.items() for arg in ("-H", f"{name}: {value}")]
    headers += ["-H", f"Host: {drill.ENTRY_ADDRESS}"]
    script = ["-s", f"{WORK}/post.lua"] if post else []
    path = "/submissions" if post else "/"
    out = _in(host, ["wrk", "-t", str(THREADS), "-c", str(CONNECTIONS), "-d", f"{DURATION_S}s", "--latency", *headers, *script,
                     f"https://127.0.0.1:{port}{path}"], timeout=DURATION_S + 60)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    latency = {p: _ms(re.search(rf"^\s+{p}%\s+(\S+)", out, re.M).group(1)) for p in ("50", "99")}
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"requests_per_s": round(rps, 1), "p50_ms": latency["50"], "p99_ms": latency["99"],
            "non_2xx": int(non_2xx.group(1)) if non_2xx else 0, "socket_errors": errors.group(1).strip() if errors else ""}


def _median(runs: list[dict]) -> dict:
    """The run with the median throughput (its latencies with it), and every run's throughput."""
    ordered = sorted(runs, key=lambda r: r["requests_per_s"])
    return {**ordered[len(ordered) // 2], "rounds_requests_per_s": [r["requests_per_s"] for r in runs]}


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return round(float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit], 2)


def _attacks(host: str, port: int) -> list[int]:
    given = [{"method": m, "path": p, "headers": {**BROWSER, "Host": drill.ENTRY_ADDRESS, **h},
              "body": base64.b64encode(b).decode() if b else None} for _n, m, p, h, b in ATTACKS]
    return json.loads(_in(host, ["python3", "-c", ATTACKER, str(port)], stdin=json.dumps(given)))


def run(host: str | None = None) -> dict:
    host = host or drill.WAFS[0]
    had_wrk = _in(host, ["sh", "-c", "command -v wrk || true"]).strip() != ""
    live = _in(host, ["cat", "/etc/nginx/nginx.conf"])
    rules = _in(host, ["cat", re.search(r"modsecurity_rules_file ([^;]+);", live).group(1)])
    paranoia = re.search(r"tx\.paranoia_level=(\d)", rules).group(1)
    cert, key = re.search(r"ssl_certificate (\S+);", live).group(1), re.search(r"ssl_certificate_key (\S+);", live).group(1)
    debian = _in(host, ["cat", "/etc/nginx/modsecurity.conf"])
    started = []
    try:
        if not had_wrk:
            _in(host, ["sh", "-c", f"{audit.APT_INSTALL} wrk >/dev/null"], timeout=300)
        _in(host, ["sh", "-c", f"rm -rf {WORK} && mkdir -p {WORK} && chown www-data {WORK}"])
        _put(host, f"{WORK}/backend.conf", BACKEND_CONF)
        _put(host, f"{WORK}/ours-rules.conf", re.sub(r"^SecAuditLog \S+$", f"SecAuditLog {WORK}/ours-audit.json", rules, flags=re.M))
        for name, modsecurity in (("ours", True), ("modsecurity_off", False)):
            _put(host, f"{WORK}/{name}.conf", ours_conf(live, name, PORTS[name], modsecurity))
        _put(host, f"{WORK}/debian-modsecurity.conf",
             debian.replace("SecRuleEngine DetectionOnly", "SecRuleEngine On")
             .replace("SecAuditLog /var/log/nginx/modsec_audit.log", f"SecAuditLog {WORK}/debian_default-audit.log")
             .replace("SecUnicodeMapFile unicode.mapping", "SecUnicodeMapFile /etc/nginx/unicode.mapping"))
        _put(host, f"{WORK}/debian_default-rules.conf", DEFAULT_RULES.format(work=WORK, paranoia=paranoia))
        _put(host, f"{WORK}/debian_default.conf",
             DEFAULT_CONF.format(work=WORK, port=PORTS["debian_default"], cert=cert, key=key, backend=BACKEND_PORT))
        _put(host, f"{WORK}/post.lua", POST_LUA.format(body=FORM))
        for name in ("backend", *PORTS):
            _in(host, ["nginx", "-c", f"{WORK}/{name}.conf"])
            started.append(name)
        time.sleep(1)
        measures: dict[str, dict[str, list]] = {name: {"get": [], "post": []} for name in PORTS}
        for port in PORTS.values():
            _wrk(host, port, post=False)  # warm-up: the TLS session caches, the workers
        for _round in range(ROUNDS):
            for name, port in PORTS.items():
                measures[name]["get"].append(_wrk(host, port, post=False))
                measures[name]["post"].append(_wrk(host, port, post=True))
        setups = {name: {"title": TITLES[name], "get": _median(measures[name]["get"]), "post": _median(measures[name]["post"]),
                         "attacks_blocked": sum(1 for status in _attacks(host, port) if status == 403)}
                  for name, port in PORTS.items()}
    finally:
        for name in reversed(started):
            _in(host, ["nginx", "-c", f"{WORK}/{name}.conf", "-s", "quit"])
        _in(host, ["rm", "-rf", WORK])
        if not had_wrk:
            _in(host, ["sh", "-c", "DEBIAN_FRONTEND=noninteractive apt-get purge -y -q wrk >/dev/null && apt-get autoremove -y -q >/dev/null"],
                timeout=300)
    ours, default = setups["ours"], setups["debian_default"]
    return {
        "host": host, "paranoia_level": int(paranoia), "attacks": len(ATTACKS),
        "load": (f"wrk, {THREADS} threads, {CONNECTIONS} connections, {DURATION_S} s per measure, {ROUNDS} rounds (median), "
                 "on the WAF host itself"),
        "setups": setups,
        "ratio_get": round(ours["get"]["requests_per_s"] / default["get"]["requests_per_s"], 2),
        "ratio_post": round(ours["post"]["requests_per_s"] / default["post"]["requests_per_s"], 2),
        "blocking_lost": max(0, default["attacks_blocked"] - ours["attacks_blocked"]),
    }


def record(result: dict, path: Path = RESULTS) -> None:
    entry = {"measured_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "commit": audit.commit(), **result}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(entry, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rempart bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--record", action="store_true", help=f"write the figures to {RESULTS.relative_to(REPO)}")
    args = parser.parse_args(argv)
    try:
        result = run()
    except BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    if args.record:
        record(result)
    return 0
