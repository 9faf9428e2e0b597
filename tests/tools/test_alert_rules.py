"""The alert rules of role prometheus: checked and unit-tested with Debian's promtool (the version
the monitoring hosts run), and each alert carries a severity, one of the six categories of MON, a
runbook section that exists, and a unit test that makes it fire (MON)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from rempart.engine import PROMTOOL

pytestmark = pytest.mark.MON

REPO = Path(__file__).resolve().parents[2]
RULES = sorted((REPO / "roles/prometheus/files/rules").glob("*.yml"))
TESTS = sorted((REPO / "tests/rules").glob("*.test.yml"))
# The six things requirement MON names (../shared/REQUIREMENTS.md): servers, storage, software, user
# rights, the internet connection, the connections between servers.
CATEGORIES = {"servers", "storage", "software", "rights", "internet", "links"}
SEVERITIES = {"critical", "warning"}
RUNBOOKS = (REPO / "docs/runbooks.md").read_text(encoding="utf-8")


def alerts() -> list[dict]:
    return [rule for path in RULES for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
            for rule in group["rules"] if "alert" in rule]


def promtool(*args: str) -> subprocess.CompletedProcess:
    if not PROMTOOL.exists():
        pytest.fail(f"{PROMTOOL} is missing: `make tools` extracts it from Debian's prometheus package")
    return subprocess.run([str(PROMTOOL), *args], capture_output=True, text=True, check=False, timeout=120, cwd=REPO / "tests/rules")


def test_the_rule_files_pass_promtool_check_rules():
    result = promtool("check", "rules", *map(str, RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rule_unit_tests_pass():
    result = promtool("test", "rules", *(path.name for path in TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_rule_file_has_its_unit_tests():
    tested = {Path(name).name for path in TESTS for name in yaml.safe_load(path.read_text(encoding="utf-8"))["rule_files"]}
    assert tested == {path.name for path in RULES}


def test_every_alert_has_a_test_that_makes_it_fire():
    fired = {case["alertname"] for path in TESTS for test in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]
             for case in test.get("alert_rule_test", []) if case.get("exp_alerts")}
    assert sorted({rule["alert"] for rule in alerts()} - fired) == []


def test_every_alert_has_a_severity_a_category_and_a_runbook_section():
    anchors = {heading.lower() for heading in re.findall(r"^### (\S+)$", RUNBOOKS, re.M)}
    problems = []
    for rule in alerts():
        labels, annotations = rule.get("labels", {}), rule.get("annotations", {})
        if labels.get("severity") not in SEVERITIES:
            problems.append(f"{rule['alert']}: severity {labels.get('severity')!r}")
        if labels.get("category") not in CATEGORIES:
            problems.append(f"{rule['alert']}: category {labels.get('category')!r}")
        if annotations.get("runbook") != f"runbooks/#{rule['alert'].lower()}" or rule["alert"].lower() not in anchors:
            problems.append(f"{rule['alert']}: runbook {annotations.get('runbook')!r} (a section '### {rule['alert']}' in docs/runbooks.md)")
        if not annotations.get("summary") or not annotations.get("description"):
            problems.append(f"{rule['alert']}: a summary and a description")
    assert problems == []


def test_a_broken_rule_is_refused_by_the_check(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: up ==\n", encoding="utf-8")
    assert promtool("check", "rules", str(broken)).returncode != 0


def test_the_monitoring_page_lists_exactly_the_alerts_of_each_category():
    """The page's table of alerts per category is written by hand: it must say what the rule files hold."""
    page = (REPO / "docs/monitoring.md").read_text(encoding="utf-8")
    listed = {row[0]: set(row[1].split(", ")) for row in re.findall(r"^\| ([a-z]+) \| ([A-Z][A-Za-z0-9, ]+) \|$", page, re.M)}
    found: dict[str, set[str]] = {}
    for rule in alerts():
        found.setdefault(rule["labels"]["category"], set()).add(rule["alert"])
    assert listed == found
