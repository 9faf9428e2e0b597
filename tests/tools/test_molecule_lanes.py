"""`make molecule-all` runs the scenarios two at a time (python -m rempart molecule): the heaviest first, each one's
output in its own log, and at the first failure the others stopped and the failed one's output printed whole, so
that make test's digest names what failed. The scenarios here are stand-ins: a `molecule` on PATH that prints, waits
and fails as told (the real scenarios are what molecule-all runs)."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest
import yaml

from rempart import molecule

STAND_IN = """#!/bin/sh
# What a scenario does here: its role's directory says how long it takes and whether it fails.
echo "scenario $(basename "$PWD") begins"
sleep "$(cat seconds)"
if [ -e fails ]; then echo "E   AssertionError: $(basename "$PWD") is broken"; exit 1; fi
echo "scenario $(basename "$PWD") passes"
"""


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A repository of stand-in scenarios: role -> (roles its converge runs, hosts, seconds, fails)."""
    def make(scenarios: dict[str, tuple[int, int, float, bool]]) -> Path:
        for role, (roles, hosts, seconds, fails) in scenarios.items():
            scenario = tmp_path / "roles" / role / "molecule" / "default"
            scenario.mkdir(parents=True)
            (scenario / "molecule.yml").write_text(yaml.safe_dump({"platforms": [{"name": f"h{i}"} for i in range(hosts)]}))
            (scenario / "converge.yml").write_text(yaml.safe_dump([{"hosts": "all", "roles": [f"r{i}" for i in range(roles)]}]))
            (tmp_path / "roles" / role / "seconds").write_text(str(seconds))
            if fails:
                (tmp_path / "roles" / role / "fails").touch()
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        (bin_dir / "molecule").write_text(STAND_IN)
        (bin_dir / "molecule").chmod(0o755 | stat.S_IXUSR)
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.setattr(molecule, "REPO", tmp_path)
        monkeypatch.setattr(molecule, "LOGS", tmp_path / "build" / "test-logs")
        return tmp_path
    return make


def test_two_at_a_time_the_heaviest_first_each_output_in_its_log(repo, capsys):
    root = repo({"tiers": (10, 3, 1.5, False), "base": (3, 1, 0.5, False), "net": (2, 3, 0.5, False), "one": (1, 1, 0.5, False)})
    start = time.monotonic()
    assert molecule.main(["--jobs", "2"]) == 0
    took = time.monotonic() - start
    out = capsys.readouterr().out
    started = [line.split()[2] for line in out.splitlines() if line.endswith(".log)") and " started " in line]
    assert started == ["tiers", "net", "base", "one"], out  # 30, 6, 3, 1: the roles times the hosts
    assert took < 2.7, f"the scenarios did not run side by side: {took:.1f} s for 3 s of scenarios"
    assert "4 scenario(s) passed" in out
    for role in ("tiers", "base", "net", "one"):
        assert f"scenario {role} passes" in (root / "build" / "test-logs" / f"molecule-{role}.log").read_text()
    assert "scenario tiers begins" not in out, "a passing scenario's output belongs in its log only"


def test_the_first_failure_stops_the_others_and_prints_its_output_whole(repo, capsys):
    repo({"slow": (10, 3, 30, False), "broken": (2, 1, 0.5, True), "later": (1, 1, 0.5, False)})
    start = time.monotonic()
    assert molecule.main(["--jobs", "2"]) == 1
    assert time.monotonic() - start < 15, "the running scenario was not stopped"
    out = capsys.readouterr().out
    assert "=== molecule: broken FAILED" in out
    assert "E   AssertionError: broken is broken" in out, "the failed scenario's output is not printed"
    assert " later started" not in out, "a scenario started after a failure"
    assert "failed: broken; not run to the end: " in out and "slow" in out.rsplit("not run to the end:", 1)[1]


def test_an_unknown_role_is_refused_with_the_known_ones(repo, capsys):
    repo({"tiers": (1, 1, 0, False)})
    assert molecule.main(["nosuch"]) == 2
    assert "nosuch: give roles among tiers" in capsys.readouterr().err
