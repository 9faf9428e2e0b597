"""Hardening audit of the baseline, by tools nobody here wrote.

``python -m rempart audit`` builds the baseline role's molecule scenario (common + sshd + baseline on
one Debian 12 container), then measures:

- Lynis (Debian package) hardening index, warnings and suggestions;
- ssh-audit (PyPI release) failures and warnings against the host's sshd;
- the idempotent second run of the baseline over SSH, as an operator, the way real hosts are run:
  wall-clock seconds and changed tasks;
- what the role applied, found not applicable, or skipped (its local fact).

``python -m rempart audit --lab`` (``make audit-lab``) runs Lynis on every host of the running lab
instead, in parallel, and replaces only the ``lab`` part of the results.

The results go to ``docs/results/hardening.json``; ``make docs`` turns them into the hardening page.
The molecule verifier imports the same functions to assert the thresholds.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from rempart import topology as model

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "docs" / "results" / "hardening.json"
SCENARIO = REPO / "roles" / "baseline" / "molecule" / "default"
INSTANCE = "baseline-host"
OPERATOR = "alice"

Runner = Callable[[str], subprocess.CompletedProcess]


def docker_runner(container: str) -> Runner:
    """Run a shell command in a container as root."""

    def run(command: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["docker", "exec", container, "bash", "-c", command], capture_output=True, text=True, check=False
        )

    return run


def container_address(container: str) -> str:
    out = subprocess.run(["docker", "inspect", container], capture_output=True, text=True, check=True)
    networks = json.loads(out.stdout)[0]["NetworkSettings"]["Networks"]
    return next(iter(networks.values()))["IPAddress"]


# What a test or a tool installs into a host waits for dpkg's lock instead of failing on it: Debian's
# apt-daily and apt-daily-upgrade timers (randomised over hours) may be running on the host just then.
APT_INSTALL = "DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq"


def lynis(run: Runner) -> dict:
    """Lynis from Debian, installed on the host if absent; its report, not its screen output."""
    install = run(f"command -v lynis >/dev/null || {APT_INSTALL} --no-install-recommends lynis")
    if install.returncode != 0:
        raise RuntimeError(f"could not install lynis: {install.stderr.strip()}")
    audit = run("lynis audit system --quick --no-colors >/dev/null 2>&1; cat /var/log/lynis-report.dat")
    report: dict[str, list[str]] = {}
    for line in audit.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            report.setdefault(key, []).append(value)
    if "hardening_index" not in report:
        raise RuntimeError(f"lynis wrote no report: {audit.stderr.strip()[-500:]}")
    return {
        "version": report.get("lynis_version", ["?"])[0],
        "index": int(report["hardening_index"][0]),
        "tests_performed": int(report.get("lynis_tests_done", ["0"])[0]),
        "warnings": [w.split("|")[0] + ": " + w.split("|")[1] for w in report.get("warning[]", [])],
        "suggestions": sorted({s.split("|")[0] + ": " + s.split("|")[1] for s in report.get("suggestion[]", [])}),
    }


def ssh_audit(address: str, port: int | None = None) -> dict:
    """ssh-audit (the PyPI release in this virtualenv) against one sshd (by default on the lab topology's
    ssh port): failures and warnings."""
    if port is None:
        from rempart import topology  # noqa: PLC0415 - the audit's setup steps run before the virtualenv

        port = topology.port(topology.load(topology.INVENTORIES / "lab" / topology.TOPOLOGY_FILE), "ssh")
    tool = Path(sys.executable).parent / "ssh-audit"
    result = subprocess.run([str(tool), "-j", "-p", str(port), address], capture_output=True, text=True, check=False)
    report = json.loads(result.stdout)
    findings: dict[str, list[str]] = {"fail": [], "warn": []}
    for section in ("kex", "key", "enc", "mac"):
        for entry in report.get(section, []):
            for level in findings:
                if entry.get("notes", {}).get(level):
                    findings[level].append(f"{section} {entry['algorithm']}: {entry['notes'][level]}")
    for cve in report.get("cves", []):
        findings["fail"].append(f"CVE {cve}")
    for level, recommendations in report.get("recommendations", {}).items():
        if level in ("critical", "warning"):
            findings["fail" if level == "critical" else "warn"].append(f"recommendation: {recommendations}")
    version = subprocess.run([str(tool), "--help"], capture_output=True, text=True, check=False).stdout
    match = re.search(r"ssh-audit v([\d.]+)", version)
    return {"version": match.group(1) if match else "?", "banner": report.get("banner", {}).get("raw", ""), **findings}


def baseline_fact(run: Runner) -> dict:
    """The baseline role's local fact: applied, not applicable here, skipped with reason."""
    return json.loads(run("cat /etc/ansible/facts.d/rempart_baseline.fact").stdout)


def ephemeral_directory() -> Path:
    """Molecule's working directory of the baseline scenario (keys, inventory)."""
    for candidate in glob.glob(str(Path.home() / ".ansible" / "tmp" / "molecule.*.default")):
        inventories = (Path(candidate) / "inventory").glob("*")
        if any(INSTANCE in path.read_text() for path in inventories if path.is_file()):
            return Path(candidate)
    raise RuntimeError("no molecule instance of the baseline scenario: run `molecule converge` in roles/baseline")


BENCH_PLAYS = {
    # The hardening baseline proper: the SSH policy and the CIS baseline.
    "baseline": "- hosts: all\n  become: true\n  roles: [sshd, baseline]\n",
    # Everything the scenario converges, role common included.
    "scenario": None,
}


def second_run(address: str, ephemeral: Path) -> dict:
    """Run over SSH as the operator, the way real hosts are run: the baseline roles, then the whole scenario,
    each twice; the second run of each is the figure (seconds, changed tasks)."""
    bin_dir = Path(sys.executable).parent
    results = {"connection": f"ssh as {OPERATOR} with sudo, pipelining, ControlPersist"}
    with tempfile.TemporaryDirectory() as tmp:
        inventory = Path(tmp) / "inventory.ini"
        inventory.write_text(
            f"{INSTANCE} ansible_host={address} ansible_user={OPERATOR} "
            f"ansible_ssh_private_key_file={ephemeral / (OPERATOR + '_ed25519')} "
            "ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes'\n"
            f"[hosts]\n{INSTANCE}\n"
        )
        # What a real inventory gives every host and the roles read ports and names from (the lab's).
        lab = model.load(model.INVENTORIES / "lab" / model.TOPOLOGY_FILE)
        topology = Path(tmp) / "topology.json"
        topology.write_text(json.dumps({"rempart_topology": {"services": lab["services"], "wiring": lab["wiring"]}}))
        env = {
            **os.environ,
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_ROLES_PATH": str(REPO / "roles"),
            "ANSIBLE_INVENTORY_ENABLED": "ini",  # the inventory written above
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "MOLECULE_EPHEMERAL_DIRECTORY": str(ephemeral),
        }
        for name, play in BENCH_PLAYS.items():
            playbook = SCENARIO / "converge.yml"
            if play:
                playbook = Path(tmp) / f"{name}.yml"
                playbook.write_text(play)
            command = [str(bin_dir / "ansible-playbook"), "-i", str(inventory), "-e", f"@{topology}", str(playbook)]
            runs = []
            for _ in range(2):
                start = time.monotonic()
                result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
                seconds = time.monotonic() - start
                if result.returncode != 0:
                    raise RuntimeError(f"{name} over SSH failed:\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}")
                recap = re.search(r"ok=(\d+)\s+changed=(\d+)", result.stdout.split("PLAY RECAP")[-1])
                runs.append({"seconds": round(seconds, 1), "tasks_ok": int(recap.group(1)), "changed": int(recap.group(2))})
            results[name] = {"roles": play.split("roles: ")[1].strip() if play else "common, sshd, baseline",
                             "first": runs[0], "second": runs[1]}
    return results


def molecule(*steps: str) -> None:
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", "PY_COLORS": "0"}
    for step in steps:
        print(f"audit: molecule {step}", flush=True)
        subprocess.run(["molecule", step], cwd=SCENARIO.parent.parent, env=env, check=True,
                       stdout=subprocess.DEVNULL if step != "converge" else None)


def commit() -> str:
    """The commit measured, marked when the working tree differs from it (outside docs/, which the
    measures and the pages they make are written to)."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!docs"], cwd=REPO,
                           capture_output=True, text=True, check=False)
    return (head.stdout.strip() or "?") + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def lab_lynis() -> dict:
    """Lynis on every host of the running lab (its containers, through the engine), all at once."""
    lab = model.load(model.INVENTORIES / "lab" / model.TOPOLOGY_FILE)
    hosts = sorted(lab["hosts"])
    for host in hosts:
        state = subprocess.run(["docker", "inspect", "-f", "{{.State.Running}}", host], capture_output=True, text=True, check=False)
        if state.stdout.strip() != "true":
            raise RuntimeError(f"lab host {host} is not running: `make lab` first")
    print(f"audit: lynis on {len(hosts)} lab hosts", flush=True)
    with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
        reports = dict(zip(hosts, pool.map(lambda host: lynis(docker_runner(host)), hosts)))
    return {
        "measured": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "commit": commit(),
        "command": "make audit-lab",
        "version": next(iter(reports.values()))["version"],
        "hosts": {host: {"index": report["index"], "suggestions": report["suggestions"]} for host, report in reports.items()},
        "lowest": min(report["index"] for report in reports.values()),
    }


def measure() -> dict:
    run = docker_runner(INSTANCE)
    address = container_address(INSTANCE)
    print("audit: second run of the baseline over SSH", flush=True)
    speed = second_run(address, ephemeral_directory())
    print("audit: lynis", flush=True)
    lynis_result = lynis(run)
    print("audit: ssh-audit", flush=True)
    ssh_result = ssh_audit(address)
    cores = os.cpu_count()
    return {
        "measured": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "machine": f"{cores} cores, Debian 12 container (rempart/debian:12) on the Docker engine",
        "command": "make audit",
        "commit": commit(),
        "lynis": lynis_result,
        "ssh_audit": ssh_result,
        "run": speed,
        "baseline": baseline_fact(run),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rempart audit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=RESULTS, help="results file (default: %(default)s)")
    parser.add_argument("--reuse", action="store_true", help="measure the instance that exists, do not rebuild it")
    parser.add_argument("--keep", action="store_true", help="leave the instance running afterwards")
    parser.add_argument("--lab", action="store_true", help="Lynis on every host of the running lab; keep the rest of the results")
    args = parser.parse_args(argv)
    if args.lab:
        results = json.loads(args.out.read_text(encoding="utf-8")) if args.out.exists() else {}
        results["lab"] = lab_lynis()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
        print("audit: Lynis on the lab hosts: " + ", ".join(f"{host} {entry['index']}" for host, entry in results["lab"]["hosts"].items()))
        return 0
    try:
        if not args.reuse:
            molecule("destroy", "create", "prepare", "converge")
        results = measure()
    finally:
        if not args.keep:
            molecule("destroy")
    if args.out.exists() and "lab" in (previous := json.loads(args.out.read_text(encoding="utf-8"))):
        results["lab"] = previous["lab"]  # measured by `make audit-lab`, on its own date and commit
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(f"audit: Lynis {results['lynis']['index']}, ssh-audit {len(results['ssh_audit']['fail'])} fail "
          f"{len(results['ssh_audit']['warn'])} warn, second run {results['run']['baseline']['second']['seconds']} s with "
          f"{results['run']['baseline']['second']['changed']} changed -> {args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
