"""Run the roles' molecule scenarios side by side: ``python -m rempart molecule [--jobs N] [ROLE ...]``.

A scenario spends much of its time waiting (containers starting, services coming up, a verifier's
drills), so two at a time on a 2-core machine take about the time of the longest, not their sum. Each
scenario has its own containers and networks (named after it) and the same package cache, so they
do not meet. The heaviest start first (the roles its converge runs, times its hosts), so that the
longest does not start last. Each one's whole output goes to ``build/test-logs/molecule-<role>.log``;
at the first failure the scenarios not started are skipped, the running ones stopped, and the failed
one's output is printed whole, so that ``make test``'s digest of what failed finds its lines.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
LOGS = REPO / "build" / "test-logs"


def scenarios() -> list[str]:
    return sorted(p.parents[2].name for p in (REPO / "roles").glob("*/molecule/default/molecule.yml"))


def weight(role: str) -> int:
    """How heavy a scenario is: the roles its converge runs, times its hosts."""
    scenario = REPO / "roles" / role / "molecule" / "default"
    platforms = (yaml.safe_load((scenario / "molecule.yml").read_text(encoding="utf-8")) or {}).get("platforms") or []
    converge = scenario / "converge.yml"
    plays = (yaml.safe_load(converge.read_text(encoding="utf-8")) or []) if converge.exists() else []
    roles = sum(len(play.get("roles") or []) for play in plays)
    return max(roles, 1) * max(len(platforms), 1)


class Lanes:
    def __init__(self) -> None:
        self.failed = threading.Event()
        self.running: dict[str, subprocess.Popen] = {}
        self.lock = threading.Lock()

    def run(self, role: str) -> tuple[str, str, int]:
        """One scenario: ``molecule test`` in its role's directory, its output in its log."""
        if self.failed.is_set():
            return role, "skipped", 0
        log = LOGS / f"molecule-{role}.log"
        start = time.monotonic()
        print(f"=== molecule: {role} started (output: {log.relative_to(REPO)})", flush=True)
        with log.open("w", encoding="utf-8") as out:
            process = subprocess.Popen(["molecule", "test"], cwd=REPO / "roles" / role, stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True)
            with self.lock:
                self.running[role] = process
            code = process.wait()
            with self.lock:
                self.running.pop(role, None)
        took = int(time.monotonic() - start)
        if code == 0:
            return role, "passed", took
        stopped = self.failed.is_set()
        self.failed.set()
        return role, "stopped" if stopped else "FAILED", took

    def stop_the_others(self) -> None:
        with self.lock:
            for process in self.running.values():
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rempart molecule", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2, help="scenarios at a time (default: 2)")
    parser.add_argument("roles", nargs="*", help="the roles whose scenario to run (default: every scenario)")
    args = parser.parse_args(argv)
    known = scenarios()
    unknown = [role for role in args.roles if role not in known]
    if unknown or args.jobs < 1:
        print(f"molecule: {', '.join(unknown) or '--jobs ' + str(args.jobs)}: give roles among {', '.join(known)} "
              "and --jobs 1 or more", file=sys.stderr)
        return 2
    order = sorted(args.roles or known, key=weight, reverse=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    lanes = Lanes()
    results: list[tuple[str, str, int]] = []
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        pending: set[Future] = {pool.submit(lanes.run, role) for role in order}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                role, result, took = future.result()
                results.append((role, result, took))
                if result != "skipped":
                    print(f"=== molecule: {role} {result} in {took} s", flush=True)
                if result == "FAILED":
                    lanes.stop_the_others()
    failed = [role for role, result, _ in results if result == "FAILED"]
    for role in failed:
        print(f"\n=== molecule: the whole output of {role}'s scenario\n", flush=True)
        sys.stdout.write((LOGS / f"molecule-{role}.log").read_text(encoding="utf-8", errors="replace"))
    skipped = [role for role, result, _ in results if result in ("skipped", "stopped")]
    summary = ", ".join(f"{role} {took} s" for role, result, took in results if result == "passed")
    print(f"=== molecule: {len(results) - len(failed) - len(skipped)} scenario(s) passed in {int(time.monotonic() - start)} s, "
          f"{args.jobs} at a time ({summary})" + (f"; failed: {', '.join(failed)}; not run to the end: {', '.join(skipped)}"
                                                    if failed else ""), flush=True)
    return 1 if failed else 0
