"""Drills on the lab: break something on purpose, measure what a client sees, put everything back.

The small library the drills share:

- ``power_off(host)`` cuts a lab machine's power (``docker kill``: no clean shutdown), and
  ``power_on(host)`` starts it again through ``playbooks/lab/power.yml`` (the one place that knows
  how a lab container runs);
- ``cut(site_a, site_b)`` drops every underlay packet between the two sites' hosts (the WireGuard
  mesh rides on it, so every flow between them stops) and ``heal`` undoes it; ``cut_service(hosts,
  service)`` drops one service of the topology between some hosts (replication between the database
  servers, say) and ``mend(hosts)`` undoes it: an nftables table of its own, ``rempart_drill``, in
  each of those machines, set through the engine (``docker exec``); nothing on the machine running
  the lab changes;
- ``Writer`` writes numbered rows continuously from an app server, through the libpq service the
  platform gives its clients (every database server, the writable one chosen), and records when
  each row was first tried and when its commit was acknowledged. A row is retried until acknowledged
  (``on conflict do nothing``), as an application would retry a request.

The drills (``python -m rempart drill [NAME ...]``, ``make drill``) are: ``failover`` (power off the
primary; then power it on and time its return as a standby), ``switchover`` (playbooks/switchover.yml
under load), ``standby`` (power off the standby: writes go on), ``partition`` (cut dc1 from dc2:
never two primaries), ``sealed`` (power off the backup repository: after it is back its passphrase is
gone from memory, archiving waits until playbooks/unlock.yml), ``restore`` (playbooks/restore-drill.yml:
the latest backup and a point in time restored to a scratch instance and checked), ``uploads`` (power
off the primary during a stream of document uploads through both app servers, from a WAF: no
acknowledged upload lost). Each returns its figures; ``--record`` writes them to
``docs/results/drills.json`` with the commit, and ``make docs`` renders them on the data tier's page.
The lab tests (tests/lab/test_drills.py) run the same drills and assert what must hold: no
acknowledged row lost, writes back, one primary at most, every host back as it was.
"""

from __future__ import annotations

import argparse
import base64
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import yaml

from rempart import topology as model

REPO = Path(__file__).resolve().parent.parent
LAB_DIR = REPO / ".lab"
RESULTS = REPO / "docs" / "results" / "drills.json"
DRILL_TABLE = "rempart_drill"
TOPOLOGY = model.check(model.INVENTORIES / "lab" / model.TOPOLOGY_FILE)
SERVERS = model.members(TOPOLOGY, "db")
CLIENTS = sorted(set(model.clients(TOPOLOGY, SERVERS[0], "postgresql")) - set(SERVERS))
DATABASE = sorted(TOPOLOGY.get("databases") or {"eservice": None})[0]
PKI = TOPOLOGY["wiring"]["pki_dir"]
API_PORT = model.port(TOPOLOGY, "patroni-api")
REPOSITORY = model.members(TOPOLOGY, "backup_repository")[0]
NFT_TABLE = "rempart_drill"


class DrillError(RuntimeError):
    """A drill could not run or could not put the lab back: the message says what and where."""


# --- the lab's machines and links -----------------------------------------------------------------


def _engine(*args: str) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise DrillError(f"docker {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout.strip()


def running(host: str) -> bool:
    return _engine("inspect", "-f", "{{.State.Running}}", host) == "true"


def power_off(host: str) -> float:
    """Cut the machine's power; returns the moment it happened, on the monotonic clock like every
    moment and deadline here (a step of the wall clock, as a machine's time sync makes, moves none)."""
    at = time.monotonic()
    _engine("kill", host)
    # An SSH connection this machine shares with the host (ControlMaster) would hang new sessions.
    subprocess.run(["ssh", "-F", str(LAB_DIR / "ssh_config"), "-O", "exit", host], capture_output=True, check=False)
    return at


def shut_down(host: str) -> float:
    """Shut the machine down cleanly (systemd stops its services, which finish what they serve);
    returns the moment it was asked (monotonic clock)."""
    at = time.monotonic()
    _engine("stop", "--time", "60", host)
    subprocess.run(["ssh", "-F", str(LAB_DIR / "ssh_config"), "-O", "exit", host], capture_output=True, check=False)
    return at


def inside(host: str, command: list[str], user: str = "root", timeout: float = 15) -> subprocess.CompletedProcess:
    """A command in a lab machine through the engine: how the drills observe, whatever a cut blocks."""
    return subprocess.run(["docker", "exec", "-u", user, "-w", "/", host, *command],
                          capture_output=True, text=True, check=False, timeout=timeout)


def power_on(host: str) -> None:
    result = subprocess.run(
        ["ansible-playbook", "-i", str(model.INVENTORIES / "lab"), str(REPO / "playbooks/lab/power.yml"), "--limit", host],
        cwd=REPO, capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        raise DrillError(f"powering {host} on (playbooks/lab/power.yml) failed:\n{result.stdout[-2000:]}{result.stderr[-1000:]}")


def _hosts_of(site: str) -> list[str]:
    return sorted(h for h, spec in TOPOLOGY["hosts"].items() if spec["site"] == site)


def _nft(host: str, script: str) -> subprocess.CompletedProcess:
    """nft in the machine, through the engine (the machine has nftables: role baseline installs it)."""
    return subprocess.run(["docker", "exec", "-i", host, "nft", "-f", "-"], input=script,
                          capture_output=True, text=True, check=False)


def cut(site_a: str, site_b: str) -> float:
    """Drop every underlay packet between the hosts of two sites; returns when it happened."""
    sides = {site_a: _hosts_of(site_a), site_b: _hosts_of(site_b)}
    at = time.monotonic()
    for site, hosts in sides.items():
        others = [TOPOLOGY["hosts"][h]["underlay"] for s, hs in sides.items() if s != site for h in hs]
        peers = "{ " + ", ".join(others) + " }"
        for host in hosts:
            result = _nft(host, f"""table inet {NFT_TABLE} {{
  chain input {{ type filter hook input priority -300; policy accept; ip saddr {peers} drop; }}
  chain output {{ type filter hook output priority -300; policy accept; ip daddr {peers} drop; }}
}}
""")
            if result.returncode != 0:
                heal(site_a, site_b)
                raise DrillError(f"cutting {host} off: nft: {result.stderr.strip()}")
    return at


def heal(site_a: str, site_b: str) -> None:
    mend(_hosts_of(site_a) + _hosts_of(site_b))


def mend(hosts: list[str]) -> None:
    """Undo ``cut`` or ``cut_service`` on these hosts."""
    for host in hosts:
        _nft(host, f"delete table inet {NFT_TABLE}\n")  # fails, harmlessly, where there is none


def cut_service(hosts: list[str], service: str) -> float:
    """Drop the topology's ``service`` (its TCP ports, both ways) between these hosts, on the overlay
    where it travels; everything else between them still flows. Returns when it happened."""
    ports = ", ".join(str(p) for p in TOPOLOGY["services"][service]["ports"])
    at = time.monotonic()
    for host in hosts:
        peers = "{ " + ", ".join(TOPOLOGY["hosts"][h]["overlay"] for h in hosts if h != host) + " }"
        result = _nft(host, f"""table inet {NFT_TABLE} {{
  chain input {{ type filter hook input priority -300; policy accept; ip saddr {peers} tcp dport {{ {ports} }} drop;
    ip saddr {peers} tcp sport {{ {ports} }} drop; }}
  chain output {{ type filter hook output priority -300; policy accept; ip daddr {peers} tcp dport {{ {ports} }} drop;
    ip daddr {peers} tcp sport {{ {ports} }} drop; }}
}}
""")
        if result.returncode != 0:
            mend(hosts)
            raise DrillError(f"cutting {service} on {host}: nft: {result.stderr.strip()}")
    return at


# --- the database cluster, as its REST API and its servers tell ------------------------------------


def cluster(via: list[str] | None = None) -> dict:
    """Patroni's view of the cluster, from the first server that answers."""
    for host in via or SERVERS:
        if not running(host):
            continue
        address = TOPOLOGY["hosts"][host]["overlay"]
        result = inside(host, ["curl", "-sS", "--http1.1", "--max-time", "3", "--cacert", f"{PKI}/ca.crt", "--cert", f"{PKI}/host.crt",
                               "--key", f"{PKI}/private/host.key", f"https://{address}:{API_PORT}/cluster"])
        if result.returncode == 0 and result.stdout.strip():
            return json.loads(result.stdout)
    return {"members": []}


def roles(view: dict) -> dict[str, str]:
    return {m["name"]: m["role"] for m in view.get("members", []) if m.get("state") in ("running", "streaming")}


def primary() -> str:
    found = [name for name, role in roles(cluster()).items() if role == "leader"]
    if len(found) != 1:
        raise DrillError(f"the cluster has no single primary ({cluster()}): run `make lab` to converge it")
    return found[0]


def wait_for(what: str, check, timeout: float, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise DrillError(f"{what}: not within {timeout:.0f} s")


def healthy() -> bool:
    """Both servers running, one primary and its synchronous standby."""
    return sorted(roles(cluster()).values()) == ["leader", "sync_standby"]


def in_recovery(host: str) -> bool | None:
    """Whether the server is a standby (None when it does not answer)."""
    result = inside(host, ["psql", "-XAtq", "-c", "select pg_is_in_recovery()"], user="postgres")
    return {"t": True, "f": False}.get(result.stdout.strip()) if result.returncode == 0 else None


def _query(host: str, sql: str, what: str, database: str = DATABASE, timeout: float = 60) -> str:
    """One query as postgres on ``host``; waits while the server is starting or stopping (a drill may
    have caught it in a restart) and fails with what it said after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = inside(host, ["psql", "-XAtq", "-d", database, "-c", sql], user="postgres", timeout=30)
        if result.returncode == 0:
            return result.stdout
        if time.monotonic() > deadline or not any(s in result.stderr for s in ("shutting down", "starting up", "No such file")):
            raise DrillError(f"{what} on {host}: {result.stderr.strip()}")
        time.sleep(1)


def rows_on(host: str, run: str) -> set[int]:
    out = _query(host, f"select n from {DRILL_TABLE} where run = '{run}'", "reading the drill's rows")
    return {int(line) for line in out.split()}


def started_at(host: str) -> str:
    """When the server's PostgreSQL last started: a primary that stepped down was restarted."""
    return _query(host, "select pg_postmaster_start_time()", "reading when PostgreSQL started", database="postgres").strip()


# --- the client that writes ------------------------------------------------------------------------

# Runs on an app server with Debian's python3-psycopg2; the password arrives on standard input,
# then a line there stops it; it prints one JSON document: every row, when it was first tried and
# when its commit was acknowledged (null: never), and how many tries it took.
WRITER = r'''
import json, sys, threading, time
import psycopg2
service, run, interval = sys.argv[1], sys.argv[2], float(sys.argv[3])
password = sys.stdin.readline().rstrip("\n")
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
rows, conn, n = [], None, 0
while not stop.is_set():
    n += 1
    row = {"n": n, "tried": time.monotonic(), "acked": None, "tries": 0, "server": None}
    rows.append(row)
    while not stop.is_set():
        row["tries"] += 1
        try:
            if conn is None:
                conn = psycopg2.connect(service=service, password=password, connect_timeout=2, tcp_user_timeout=2000,
                                        keepalives_idle=1, keepalives_interval=1, keepalives_count=2,
                                        application_name="rempart-drill")
                conn.autocommit = True
                cur = conn.cursor()
                cur.execute("create table if not exists %s (run text, n bigint, at timestamptz default now(), "
                            "primary key (run, n))" % sys.argv[4])
                cur.execute("select host(inet_server_addr())")
                server = cur.fetchone()[0]
            cur.execute("insert into %s (run, n) values (%%s, %%s) on conflict do nothing" % sys.argv[4], (run, n))
            row["acked"], row["server"] = time.monotonic(), server
            break
        except psycopg2.Error:
            try:
                conn.close()
            except Exception:
                pass
            conn = None
            time.sleep(0.2)
    time.sleep(interval)
print(json.dumps({"rows": rows}))
'''


class Writer:
    """Writes numbered rows from an app server until stopped; ``stop()`` returns the rows."""

    def __init__(self, host: str | None = None, interval: float = 0.05):
        self.host = host or CLIENTS[0]
        self.run = uuid.uuid4().hex[:12]
        code = base64.b64encode(WRITER.encode()).decode()
        command = (f"cd / && exec sudo python3 -c \"import base64; exec(base64.b64decode('{code}'))\" "
                   f"{DATABASE} {self.run} {interval} {DRILL_TABLE}")
        self.process = subprocess.Popen(
            ["ssh", "-F", str(LAB_DIR / "ssh_config"), "-o", "BatchMode=yes", self.host, command],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        password = yaml.safe_load((LAB_DIR / "secrets.yml").read_text(encoding="utf-8"))[f"vault_postgresql_{DATABASE}_password"]
        self.process.stdin.write(password + "\n")
        self.process.stdin.flush()
        self.started = time.monotonic()

    def stop(self) -> list[dict]:
        try:
            out, err = self.process.communicate("stop\n", timeout=60)
        except BrokenPipeError:
            out, err = self.process.communicate(timeout=60)
        if self.process.returncode != 0 or not out.strip():
            raise DrillError(f"the writer on {self.host} failed: {err.strip()[-1500:]}")
        return json.loads(out)["rows"]


def client_near(server: str) -> str:
    """The client in the same site as ``server`` (the first client when none is)."""
    site = TOPOLOGY["hosts"][server]["site"]
    return next((c for c in CLIENTS if TOPOLOGY["hosts"][c]["site"] == site), CLIENTS[0])


@contextmanager
def writing(host: str | None = None, settle: float = 2.0):
    """A writer running for the duration of the block, after ``settle`` seconds of steady writes."""
    writer = Writer(host)
    time.sleep(settle)
    box: dict = {"writer": writer}
    try:
        yield box
    finally:
        box["rows"] = writer.stop()


def figures(rows: list[dict], since: float, server: str | None = None) -> dict:
    """What a client saw after ``since``: the longest a row waited for its acknowledgement (the
    write outage), and, when ``server`` is given, when the first row was acknowledged by it."""
    acked = [r for r in rows if r["acked"] is not None]
    later = [r for r in acked if r["acked"] >= since]
    found = {
        "rows_acknowledged": len(acked),
        "rows_pending_at_stop": len(rows) - len(acked),
        "rows_retried": sum(1 for r in rows if r["tries"] > 1),
        "rows_acknowledged_after_event": len(later),
        "write_outage_s": round(max((r["acked"] - max(r["tried"], since) for r in later), default=0.0), 2),
    }
    if server:
        address = TOPOLOGY["hosts"][server]["overlay"]
        first = min((r["acked"] for r in later if r["server"] == address), default=None)
        found["first_write_on_new_primary_s"] = round(first - since, 2) if first else None
    return found


def lost(rows: list[dict], run: str, on: str) -> list[int]:
    """Acknowledged rows missing on a server (the RPO, as rows)."""
    present = rows_on(on, run)
    return sorted(r["n"] for r in rows if r["acked"] is not None and r["n"] not in present)


# --- the drills ------------------------------------------------------------------------------------


def _restore(host: str) -> float:
    """Wait for the cluster to be whole again once ``host`` is powered on; returns the seconds it took."""
    start = time.monotonic()
    wait_for(f"{host} back as a synchronous standby", healthy, timeout=180)
    return round(time.monotonic() - start, 1)


def drill_failover() -> dict:
    """Power off the primary under load: time until writes succeed again, acknowledged rows lost
    (must be none); then power it on: it comes back as the standby, with no manual step."""
    wait_for("a healthy cluster before the drill", healthy, timeout=120)
    old = primary()
    try:
        with writing() as box:
            at = power_off(old)
            new = wait_for("a new primary",
                           lambda: next((n for n, r in roles(cluster()).items() if r == "leader" and n != old), None),
                           timeout=120, interval=0.2)
            promoted = time.monotonic() - at
            time.sleep(4)
        rows, run = box["rows"], box["writer"].run
        result = {"primary_before": old, "primary_after": new, "new_primary_seen_after_s": round(promoted, 2),
                  **figures(rows, at, new), "acknowledged_rows_lost": len(lost(rows, run, new))}
    finally:
        if not running(old):
            power_on(old)
    result["rejoined_as_standby_after_s"] = _restore(old)
    result["old_primary_role_after"] = roles(cluster()).get(old)
    return result


def drill_switchover() -> dict:
    """Planned switchover (playbooks/switchover.yml) under load: no write fails, the pause is measured."""
    wait_for("a healthy cluster before the drill", healthy, timeout=120)
    old = primary()
    with writing() as box:
        at = time.monotonic()
        result = subprocess.run(["ansible-playbook", "-i", str(model.INVENTORIES / "lab"), str(REPO / "playbooks/switchover.yml"),
                                 "-e", "rempart_target=lab"], cwd=REPO, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise DrillError(f"playbooks/switchover.yml failed:\n{result.stdout[-2500:]}")
        took = time.monotonic() - at
        time.sleep(2)
    rows, run = box["rows"], box["writer"].run
    new = primary()
    return {"primary_before": old, "primary_after": new, "playbook_s": round(took, 1), **figures(rows, at, new),
            "acknowledged_rows_lost": len(lost(rows, run, new)), "healthy_after": healthy()}


def drill_standby() -> dict:
    """Power off the standby under load: writes go on (after the primary stops waiting for it)."""
    wait_for("a healthy cluster before the drill", healthy, timeout=120)
    first = primary()
    standby = next(n for n in SERVERS if n != first)
    started = started_at(first)
    try:
        with writing() as box:
            at = power_off(standby)
            time.sleep(8)
        rows, run = box["rows"], box["writer"].run
        result = {"primary": first, "standby": standby, **figures(rows, at),
                  "acknowledged_rows_lost": len(lost(rows, run, first)),
                  "primary_restarted": started_at(first) != started, "primary_unchanged": primary() == first}
    finally:
        if not running(standby):
            power_on(standby)
    result["rejoined_as_standby_after_s"] = _restore(standby)
    return result


def drill_partition(site_a: str = "dc1", site_b: str = "dc2", duration: float = 20.0) -> dict:
    """Cut site_a from site_b (each still reaches the witness site): at no moment do two servers
    accept writes; then heal and check no acknowledged row was lost."""
    wait_for("a healthy cluster before the drill", healthy, timeout=120)
    before = primary()
    samples, most = 0, 0
    # The client in the primary's site: the side that keeps the primary must keep writing.
    with writing(client_near(before)) as box:
        at = cut(site_a, site_b)
        try:
            while time.monotonic() - at < duration:
                states = [in_recovery(h) for h in SERVERS]
                most = max(most, sum(1 for s in states if s is False))
                samples += 1
        finally:
            heal(site_a, site_b)
        healed = time.monotonic()
        wait_for("the cluster whole again after the cut", healthy, timeout=120)
        back = round(time.monotonic() - healed, 1)
    rows, run = box["rows"], box["writer"].run
    after = primary()
    return {"sites": [site_a, site_b], "cut_s": duration, "client": box["writer"].host, "primary_before": before, "primary_after": after,
            "samples": samples, "most_primaries_at_once": most, **figures(rows, at),
            "acknowledged_rows_lost": len(lost(rows, run, after)), "whole_again_after_heal_s": back}


def _playbook(path: str, *options: str) -> float:
    """Run a playbook against the lab as an operator does; returns the seconds it took."""
    start = time.monotonic()
    result = subprocess.run(["ansible-playbook", "-i", str(model.INVENTORIES / "lab"), str(REPO / path), "-e", "rempart_target=lab",
                             *options], cwd=REPO, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise DrillError(f"{path} failed:\n{result.stdout[-2500:]}{result.stderr[-500:]}")
    return round(time.monotonic() - start, 1)


def archiver(host: str) -> dict:
    """PostgreSQL's archiver on ``host``: the last segment archived, failures, segments waiting."""
    query = ("select coalesce(last_archived_wal, '-'), failed_count, "
             "(select count(*) from pg_ls_archive_statusdir() where name like '%.ready') from pg_stat_archiver")
    result = inside(host, ["psql", "-XAtq", "-F", "|", "-c", query], user="postgres")
    if result.returncode != 0 or result.stdout.count("|") != 2:
        raise DrillError(f"reading the archiver on {host}: {result.stderr.strip() or result.stdout.strip()}")
    last, failed, waiting = result.stdout.strip().split("|")
    return {"last_archived": "" if last == "-" else last, "failed": int(failed), "waiting": int(waiting)}


def _segment_written(host: str) -> str:
    """A write, then a WAL switch on ``host`` (the primary): returns the segment it completed, which
    the archive must receive."""
    result = inside(host, ["psql", "-XAtq", "-v", "ON_ERROR_STOP=1",
                           "-c", f"create table if not exists {DRILL_TABLE}_wal (at timestamptz default now())",
                           "-c", f"insert into {DRILL_TABLE}_wal default values",
                           "-c", "select pg_walfile_name(pg_switch_wal())"], user="postgres")
    if result.returncode != 0:
        raise DrillError(f"writing and switching the WAL on {host}: {result.stderr.strip()}")
    return result.stdout.split()[-1]


def repository_answers(host: str = REPOSITORY) -> bool:
    """Whether pgBackRest on the repository host reads its repository (it cannot while sealed)."""
    info = inside(host, ["pgbackrest", "--output=json", "info"], user="pgbackrest", timeout=60)
    if info.returncode != 0:
        return False
    stanzas = json.loads(info.stdout or "[]")
    return bool(stanzas) and all(s["status"]["code"] in (0, 2) for s in stanzas)


def drill_sealed() -> dict:
    """Power off the backup repository and on again: its passphrase is gone from memory, so the
    repository is sealed and the primary's WAL waits on its disk; playbooks/unlock.yml puts the
    passphrase back and the archive catches up. Nothing archived is lost, nothing waits afterwards."""
    wait_for("a healthy cluster before the drill", healthy, timeout=120)
    first = primary()
    at = power_off(REPOSITORY)
    try:
        power_on(REPOSITORY)
    finally:
        if not running(REPOSITORY):
            power_on(REPOSITORY)
    back = round(time.monotonic() - at, 1)
    sealed = not repository_answers()
    before = archiver(first)
    segment = _segment_written(first)
    # The archiver tries at once, then about once a minute: wait for its first failure.
    failed = wait_for("archiving to fail while the repository is sealed",
                      lambda: (lambda a: a if a["failed"] > before["failed"] else None)(archiver(first)), timeout=90)
    unlock_s = _playbook("playbooks/unlock.yml")
    unlocked = time.monotonic()
    wait_for(f"segment {segment} archived after the unlock",
             lambda: archiver(first)["last_archived"] >= segment, timeout=120)
    caught_up = round(time.monotonic() - unlocked, 1)
    return {"repository": REPOSITORY, "primary": first, "back_after_power_on_s": back,
            "sealed_after_restart": sealed,
            "archive_failures_while_sealed": failed["failed"] - before["failed"], "segments_waiting_while_sealed": failed["waiting"],
            "unlock_playbook_s": unlock_s, "archive_caught_up_after_unlock_s": caught_up,
            "segments_waiting_after": archiver(first)["waiting"], "unsealed_after": repository_answers()}


def drill_restore() -> dict:
    """playbooks/restore-drill.yml: the latest backup and a point in time, restored and checked (the
    playbook fails when a restore does not hold exactly the rows it must)."""
    wait_for("a healthy cluster before the drill", healthy, timeout=120)
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "restore.json"
        took = _playbook("playbooks/restore-drill.yml", "-e", f"pgbackrest_restore_drill_report={report}")
        found = json.loads(report.read_text(encoding="utf-8"))
    return {"backup": found["backup"], "restore_playbook_s": took,
            "latest_restore_s": found["latest"]["restore_seconds"], "latest_recovery_s": found["latest"]["recovery_seconds"],
            "point_in_time_restore_s": found["point_in_time"]["restore_seconds"],
            "point_in_time_recovery_s": found["point_in_time"]["recovery_seconds"],
            "rows_as_expected": True}


# --- the application: a client on a WAF, speaking to the app servers as the WAF does ---------------

APP_SERVERS = model.members(TOPOLOGY, "app")
APP_PORT = model.port(TOPOLOGY, "app")
# The first host the flow matrix lets reach the app servers with function waf (the WAF speaks to them).
APP_CLIENT = next((h for h in model.members(TOPOLOGY, "waf") if h in model.clients(TOPOLOGY, APP_SERVERS[0], "app")), None) \
    if APP_SERVERS else None
LAB_CLIENT_CODE = (Path(__file__).with_name("lab_client.py")).read_text(encoding="utf-8")
# A small PDF: what a citizen attaches.
DOCUMENT = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n" + b"% rempart drill document\n" * 40 + b"%%EOF\n"


def app_url(host: str) -> str:
    return f"https://{TOPOLOGY['hosts'][host]['overlay']}:{APP_PORT}"


def lab_client(via: str | None = None) -> subprocess.Popen:
    """rempart/lab_client.py running on ``via`` (a WAF by default) with that host's certificate."""
    via = via or APP_CLIENT
    if via is None:
        raise DrillError("no host of the lab topology may reach the app servers (flow matrix): nothing to test them from")
    return subprocess.Popen(
        ["docker", "exec", "-i", via, "python3", "-c", LAB_CLIENT_CODE, f"{PKI}/ca.crt", f"{PKI}/host.crt", f"{PKI}/private/host.key"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


class Https:
    """Requests to the app servers from a WAF: ``Https()("GET", url)`` returns status, headers, body."""

    def __init__(self, via: str | None = None):
        self.process = lab_client(via)
        self._send({"mode": "requests"})

    def _send(self, message: dict) -> None:
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()

    def __call__(self, method: str, url: str, headers: dict | None = None, body: bytes | None = None,
                 truncate: int | None = None) -> dict:
        self._send({"method": method, "url": url, "headers": headers or {}, "truncate": truncate,
                    "body_b64": base64.b64encode(body).decode() if body else None})
        line = self.process.stdout.readline()
        if not line:
            raise DrillError(f"the lab client stopped: {self.process.stderr.read()[-1500:]}")
        answer = json.loads(line)
        if "error" in answer:
            return {"status": None, "error": answer["error"], "headers": {}, "body": b""}
        headers_ = {}
        for name, value in answer["headers"]:
            headers_.setdefault(name.lower(), []).append(value)
        return {"status": answer["status"], "headers": headers_, "body": base64.b64decode(answer["body_b64"])}

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


def app_unit() -> str:
    """The application's unit (role app's app_name)."""
    return yaml.safe_load((REPO / "roles/app/defaults/main.yml").read_text(encoding="utf-8"))["app_name"]


def procedure() -> str:
    """The first procedure of the reference e-service (role app's defaults)."""
    defaults = yaml.safe_load((REPO / "roles/app/defaults/main.yml").read_text(encoding="utf-8"))
    return next(iter(defaults["app_eservice_procedures"]))


def receipts_on(host: str, receipts: list[str]) -> set[str]:
    """Which of these receipts the database on ``host`` holds."""
    result = inside(host, ["psql", "-XAtq", "-d", DATABASE, "-c",
                           "select receipt from submissions where receipt = any(string_to_array('" + ",".join(receipts) + "', ','))"],
                    user="postgres", timeout=30)
    if result.returncode != 0:
        raise DrillError(f"reading the receipts on {host}: {result.stderr.strip()}")
    return set(result.stdout.split())


def drill_uploads() -> dict:
    """Power off the database primary during a stream of document uploads through both app servers:
    every acknowledged upload (201 and a receipt) must be in the database afterwards."""
    wait_for("a healthy cluster before the drill", healthy, timeout=120)
    old = primary()
    process = lab_client()
    process.stdin.write(json.dumps({"mode": "uploads", "urls": [app_url(h) for h in APP_SERVERS], "interval": 0.1,
                                    "procedure": procedure(), "document_b64": base64.b64encode(DOCUMENT).decode()}) + "\n")
    process.stdin.flush()
    try:
        time.sleep(3)
        # The premise once more, at the cut: under the uploads' load a loaded machine can drop the
        # synchronous standby for a moment (walsender timeout), and Patroni then rightly promotes nobody.
        wait_for("the synchronous standby in place at the cut", healthy, timeout=60, interval=0.2)
        at = power_off(old)
        new = wait_for("a new primary",
                       lambda: next((n for n, r in roles(cluster()).items() if r == "leader" and n != old), None),
                       timeout=120, interval=0.2)
        time.sleep(6)
        out, err = process.communicate("stop\n", timeout=90)
        if process.returncode != 0 or not out.strip():
            raise DrillError(f"the uploads client failed: {err.strip()[-1500:]}")
        rows = json.loads(out)["rows"]
        acked = [r for r in rows if r["acked"] is not None]
        missing = sorted(set(r["receipt"] for r in acked) - receipts_on(new, [r["receipt"] for r in acked]))
        later = [r for r in acked if r["acked"] >= at]
        result = {"primary_before": old, "primary_after": new, "uploads_acknowledged": len(acked),
                  "uploads_acknowledged_after_event": len(later),
                  "upload_outage_s": round(max((r["acked"] - max(r["tried"], at) for r in later), default=0.0), 2),
                  "uploads_retried": sum(1 for r in rows if r["tries"] > 1),
                  "acknowledged_uploads_lost": len(missing)}
    finally:
        if process.poll() is None:
            process.kill()
        if not running(old):
            power_on(old)
    result["rejoined_as_standby_after_s"] = _restore(old)
    return result


# --- the edge: the public entry point ----------------------------------------------------------------

WAFS = model.members(TOPOLOGY, "waf")
ENTRY = (TOPOLOGY.get("floating") or {}).get("waf") or {}
ENTRY_ADDRESS = str(ENTRY.get("public", ""))
HTTPS_PORT = model.port(TOPOLOGY, "https")
# The machine on the public network only, standing for a citizen (playbooks/lab: lab_client).
CITIZEN = "client"


def public_url() -> str:
    """The public entry point's URL, as .lab/endpoints.json gives it: the first name, or the address."""
    return f"https://{model.entry_name(ENTRY) if ENTRY else ENTRY_ADDRESS}/"


def entry_holder() -> str | None:
    """The WAF that holds the floating public address now (read through the engine), or None."""
    for host in WAFS:
        if running(host) and f" {ENTRY_ADDRESS}/" in inside(host, ["ip", "-o", "-4", "addr", "show"]).stdout:
            return host
    return None


class Stream:
    """A citizen's steady use of the public URL from the lab's client (rempart/lab_client.py, stream
    mode: the form, then a submission with a document, each request sent once); ``stop()`` returns
    every request with its status or error."""

    def __init__(self, interval: float = 0.05):
        self.process = subprocess.Popen(
            ["docker", "exec", "-i", CITIZEN, "python3", "-c", LAB_CLIENT_CODE, "/etc/ssl/certs/ca-certificates.crt"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.process.stdin.write(json.dumps({"mode": "stream", "url": public_url(), "interval": interval, "procedure": procedure(),
                                             "document_b64": base64.b64encode(DOCUMENT).decode()}) + "\n")
        self.process.stdin.flush()

    def stop(self) -> list[dict]:
        out, err = self.process.communicate("stop\n", timeout=90)
        if self.process.returncode != 0 or not out.strip():
            raise DrillError(f"the citizen's stream failed: {err.strip()[-1500:]}")
        return json.loads(out)["rows"]


def stream_figures(rows: list[dict], since: float) -> dict:
    """What the citizen saw: requests, the failed ones (no answer or a 5xx) after ``since``, and the
    longest time without an answer."""
    failed = [r for r in rows if r["started"] >= since - 15 and (r["status"] is None or r["status"] >= 500)]
    answered = sorted(r["started"] + r["seconds"] for r in rows if r["status"] is not None and r["status"] < 500)
    gaps = [b - a for a, b in zip(answered, answered[1:]) if b >= since]
    return {"requests": len(rows), "requests_after_event": sum(1 for r in rows if r["started"] >= since),
            "failed_requests": len(failed), "failures": sorted({r["error"] or str(r["status"]) for r in failed})[:5],
            "longest_without_answer_s": round(max(gaps, default=0.0), 2)}


def _reachable_since(address: str, port: int, since: float, timeout: float = 30) -> float | None:
    """Seconds from ``since`` until a TCP connection from this machine (the internet's side) to the
    address succeeds again, tried every 20 ms."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=0.1):
                return round(time.monotonic() - since, 3)
        except OSError:
            time.sleep(0.02)
    return None


def drill_waf() -> dict:
    """Power off the WAF that holds the public address during a citizen's steady use: the address
    moves to the other site's WAF (time until this machine connects again), and what the citizen saw;
    then power it on: it comes back as the standby, the address stays."""
    before = wait_for("a WAF holding the public address", entry_holder, timeout=60)
    stream = Stream()
    try:
        time.sleep(3)
        at = power_off(before)
        moved_s = _reachable_since(ENTRY_ADDRESS, HTTPS_PORT, at)
        after = wait_for("the other WAF holding the public address", entry_holder, timeout=30)
        time.sleep(5)
        result = {"holder_before": before, "holder_after": after, "address_moved_s": moved_s,
                  **stream_figures(stream.stop(), at)}
    finally:
        if stream.process.poll() is None:
            stream.process.kill()
        if not running(before):
            power_on(before)
    start = time.monotonic()
    wait_for(f"nginx and keepalived on {before} after its power came back",
             lambda: all(inside(before, ["systemctl", "is-active", "-q", unit]).returncode == 0 for unit in ("nginx", "keepalived")),
             timeout=120)
    result["back_after_s"] = round(time.monotonic() - start, 1)
    # Once it takes part again (keepalived_startup_delay) and a while after, the address is still where it moved.
    delay = yaml.safe_load((REPO / "roles/keepalived/defaults/main.yml").read_text(encoding="utf-8"))["keepalived_startup_delay"]
    time.sleep(int(delay) + 5)
    result["holder_once_back"] = entry_holder()
    return result


def drill_app() -> dict:
    """Shut an app server down during a citizen's steady use through the public URL: no request may
    fail (it finishes those it serves; the WAF sends the others to the other one); then start it
    and give its keys back (playbooks/unlock.yml): meanwhile it is sealed, and no request may fail either."""
    host = APP_SERVERS[0]
    stream = Stream()
    try:
        time.sleep(3)
        at = shut_down(host)
        time.sleep(10)
        power_on(host)
        wait_for(f"{host} serving again, sealed",
                 lambda: inside(host, ["systemctl", "is-active", "-q", app_unit()]).returncode == 0, timeout=120)
        sealed_at = time.monotonic()
        time.sleep(10)
        rows = stream.stop()
        result = {"app_server": host, **stream_figures(rows, at),
                  "requests_while_sealed": sum(1 for r in rows if r["started"] >= sealed_at)}
    finally:
        if stream.process.poll() is None:
            stream.process.kill()
        if not running(host):
            power_on(host)
    result["unlock_s"] = _playbook("playbooks/unlock.yml")
    return result


DRILLS = {"failover": drill_failover, "switchover": drill_switchover, "standby": drill_standby, "partition": drill_partition,
          "sealed": drill_sealed, "restore": drill_restore, "uploads": drill_uploads, "waf": drill_waf, "app": drill_app}
# The requirements each drill bears on (the requirements page shows its latest figures under them).
REQUIREMENTS = {"failover": ["HA", "AVAIL"], "switchover": ["HA", "AVAIL"], "standby": ["HA", "AVAIL"],
                "partition": ["HA", "LINK"], "sealed": ["KEY", "DR"], "restore": ["DR"], "uploads": ["HA", "ENC"],
                "waf": ["HA", "WAF"], "app": ["HA", "AVAIL"]}


def _commit() -> str:
    from rempart.audit import commit  # noqa: PLC0415 - the same marking as the hardening measures

    return commit()


def record(name: str, runs: list[dict], path: Path = RESULTS) -> None:
    results = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    entry = {"measured_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "commit": _commit(), "runs": runs}
    numeric = {k for k, v in runs[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    entry["medians"] = {k: statistics.median(r[k] for r in runs if r.get(k) is not None)
                        for k in sorted(numeric) if any(r.get(k) is not None for r in runs)}
    results[name] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")


# --- the page ------------------------------------------------------------------------------------

PAGE = REPO / "docs" / "data.md"
BEGIN, END = "<!-- BEGIN drills: generated by `make docs` from docs/results/drills.json -->", "<!-- END drills -->"
# What each figure means, in the order the table shows them.
FIGURES = {
    "upload_outage_s": "longest an upload waited for its acknowledgement after the power cut (s)",
    "acknowledged_uploads_lost": "acknowledged uploads missing afterwards",
    "uploads_acknowledged": "document uploads acknowledged (201 and a receipt)",
    "write_outage_s": "longest a write waited for its acknowledgement after the event (s)",
    "new_primary_seen_after_s": "the new primary seen in the REST API after the power cut (s)",
    "first_write_on_new_primary_s": "first write acknowledged by the new primary (s)",
    "rejoined_as_standby_after_s": "the lost server back as synchronous standby, after power on (s)",
    "playbook_s": "playbooks/switchover.yml, start to end (s)",
    "most_primaries_at_once": "most servers accepting writes at one moment during the cut",
    "whole_again_after_heal_s": "the cluster whole again after the cut is healed (s)",
    "acknowledged_rows_lost": "acknowledged rows missing afterwards (RPO)",
    "back_after_power_on_s": "the repository host running again, from the power cut (s)",
    "archive_failures_while_sealed": "failed attempts to archive while the repository was sealed",
    "segments_waiting_while_sealed": "WAL segments waiting on the primary while the repository was sealed",
    "unlock_playbook_s": "playbooks/unlock.yml, start to end (s)",
    "archive_caught_up_after_unlock_s": "the waiting WAL segment archived, after the unlock (s)",
    "segments_waiting_after": "WAL segments still waiting afterwards",
    "restore_playbook_s": "playbooks/restore-drill.yml, start to end (s)",
    "latest_restore_s": "the latest backup restored to the scratch instance (s)",
    "latest_recovery_s": "recovery to the archive's end, then ready (s)",
    "point_in_time_restore_s": "the backup restored again, for the point in time (s)",
    "point_in_time_recovery_s": "recovery to the point in time, then ready (s)",
    "rows_pending_at_stop": "rows the client never got acknowledged",
    "address_moved_s": "the public address answering again from the internet's side, after the power cut (s)",
    "requests_after_event": "requests of the citizen's stream after the event",
    "failed_requests": "requests of the stream that failed (no answer, or a 5xx)",
    "longest_without_answer_s": "longest the stream went without an answer (s)",
    "requests_while_sealed": "requests after the app server came back sealed (before the unlock)",
    "unlock_s": "playbooks/unlock.yml, start to end (s)",
}
TITLES = {
    "failover": "Power cut of the primary (failover), then power on",
    "switchover": "Planned switchover under load",
    "standby": "Power cut of the standby, then power on",
    "partition": "dc1 cut from dc2 for 20 s (both still reach dc3)",
    "sealed": "Power cut of the backup repository, then power on: sealed until playbooks/unlock.yml",
    "restore": "Restore drill (playbooks/restore-drill.yml): the latest backup and a point in time",
    "uploads": "Power cut of the database primary during a stream of document uploads through both app servers",
    "waf": "Power cut of the WAF holding the public address, during a citizen's steady use of the public URL",
    "app": "Shutdown of an app server during a citizen's steady use of the public URL; started again (sealed), then unlocked",
}


def load_results(path: Path = RESULTS) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def render(results: dict) -> str:
    """The block of the data tier's page that shows the drills' latest figures."""
    lines = [BEGIN, ""]
    if not results:
        lines += ["No drill has been recorded yet: `make drill` runs them on the lab and records their figures.", ""]
    for name in DRILLS:
        entry = results.get(name)
        if not entry:
            continue
        runs = entry["runs"]
        lines += [f"**{TITLES[name]}**: {len(runs)} run(s) on {entry['measured_at']}, commit `{entry['commit']}`.", ""]
        header = "| Figure | " + " | ".join(f"run {i + 1}" for i in range(len(runs))) + (" | median |" if len(runs) > 1 else " |")
        lines += [header, "|---|" + "---|" * (len(runs) + (1 if len(runs) > 1 else 0))]
        for key, meaning in FIGURES.items():
            if key not in runs[0]:
                continue
            cells = [("n/a" if r.get(key) is None else str(r[key])) for r in runs]
            if len(runs) > 1:
                cells.append(str(entry["medians"].get(key, "n/a")))
            lines.append(f"| {meaning} | " + " | ".join(cells) + " |")
        lines.append("")
    lines.append(END)
    return "\n".join(lines)


def page_text(results: dict, text: str) -> str:
    """The data tier's page with its drills block replaced by the rendered one."""
    if BEGIN not in text or END not in text:
        raise DrillError(f"{PAGE.relative_to(REPO)} has no drills block ({BEGIN} ... {END}): put it back where the figures go")
    before, rest = text.split(BEGIN, 1)
    after = rest.split(END, 1)[1]
    return before + render(results) + after


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rempart drill", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("drills", nargs="*", metavar="DRILL", help=f"drills to run, in order (default: all: {', '.join(DRILLS)})")
    parser.add_argument("--repeat", type=int, default=1, help="run each drill this many times (medians are recorded)")
    parser.add_argument("--record", action="store_true", help=f"write the figures to {RESULTS.relative_to(REPO)}")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.drills) - set(DRILLS))
    if unknown:
        parser.error(f"unknown drill(s) {', '.join(unknown)}: choose among {', '.join(DRILLS)}")
    for name in args.drills or list(DRILLS):
        runs = []
        for attempt in range(args.repeat):
            print(f"drill: {name} ({attempt + 1}/{args.repeat})", flush=True)
            try:
                runs.append(DRILLS[name]())
            except DrillError as error:
                print(f"drill: {name}: {error}", file=sys.stderr)
                return 1
            print(json.dumps(runs[-1], indent=2), flush=True)
        if args.record:
            record(name, runs)
    return 0
