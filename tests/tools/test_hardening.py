"""The hardening page: generated from the code and the results file, and refused when they disagree."""

from __future__ import annotations

import copy

import pytest

from rempart import hardening

pytestmark = [pytest.mark.HARD, pytest.mark.DOC]


@pytest.fixture
def results():
    loaded = hardening.load_results()
    if loaded is None:
        pytest.fail("docs/results/hardening.json is missing: run `make audit`")
    return loaded


def test_every_control_is_implemented_and_every_implementation_is_a_control():
    assert hardening.check(hardening.load_results()) == []


def test_results_that_miss_a_control_are_stale(results):
    stale = copy.deepcopy(results)
    stale["baseline"]["applied"].remove("cis_7.1.1")
    errors = hardening.check(stale)
    assert any("is stale (controls changed: cis_7.1.1): run `make audit`" in error for error in errors)


def test_page_shows_targets_figures_statuses_and_reasons(results):
    page = hardening.render(results)
    assert f"| {results['lynis']['index']} |" in page
    assert "| `cis_5.2.4` | users must provide a password for privilege escalation |" in page
    assert "relaxed: Operators log in with SSH keys only" in page
    assert "| `anssi_R38` | sudo runs for the members of one dedicated group only |" in page  # ANSSI ids, sorted by number
    assert page.index("`anssi_R39`") < page.index("`anssi_R40`") < page.index("`cis_1.1.1.1`")
    assert "not applicable in the container (needs sysctl)" in page
    assert "| `cis_5.1.20` |" in page  # SSH controls come from the sshd role's task tags


def test_ssh_table_gives_each_control_its_title_and_the_lines_the_template_writes(results):
    page = hardening.render(results)
    defaults = hardening.yaml.safe_load((hardening.SSHD / "defaults" / "main.yml").read_text(encoding="utf-8"))
    # The value is the role's default, read from the code, not typed in the page.
    assert f"| `cis_5.1.16` | few authentication tries per connection | `MaxAuthTries {defaults['sshd_max_auth_tries']}` |" in page
    assert f"`ClientAliveInterval {defaults['sshd_client_alive_interval']}`<br>`ClientAliveCountMax " in page
    assert "| `cis_5.1.20` | root cannot log in | `PermitRootLogin no` |" in page


def test_an_ssh_control_whose_setting_the_template_no_longer_writes_is_refused(results, monkeypatch):
    real = hardening.sshd_data()
    changed = copy.deepcopy(real)
    changed["lines"]["cis_5.1.13"] = []  # as if LoginGraceTime left the template
    changed["controls"]["cis_9.9.9"] = {"title": "no task carries it", "keywords": []}
    changed["lines"]["cis_9.9.9"] = []
    monkeypatch.setattr(hardening, "sshd_data", lambda: changed)
    errors = hardening.check(results)
    assert any("cis_5.1.13 names LoginGraceTime" in error and "no longer writes" in error for error in errors)
    assert any("cis_9.9.9 is in __sshd_controls but no task of the role carries it" in error for error in errors)


def test_a_missed_target_is_shown_as_missed(results):
    worse = copy.deepcopy(results)
    worse["lynis"]["index"] = 60
    assert "| 60 | **missed** |" in hardening.render(worse)


def test_a_lynis_suggestion_without_a_reason_is_refused(results):
    new = copy.deepcopy(results)
    new["lynis"]["suggestions"].append("ZZZZ-0001: Consider something new | with a pipe")
    errors = hardening.check(new)
    assert any("gives no reason for ZZZZ-0001" in error and "__baseline_lynis_reasons" in error for error in errors)
    # A cell keeps its '|' inside the cell.
    assert "| `ZZZZ-0001` | Consider something new \\| with a pipe |" in hardening.render(new)


@pytest.fixture
def catalogue(monkeypatch):
    """The baseline's data, changeable by a test without touching the role."""
    data = hardening.baseline_data()
    monkeypatch.setattr(hardening, "baseline_data", lambda: data)
    return data["controls"]


def test_every_anssi_recommendation_up_to_the_enhanced_level_is_on_the_page(results, catalogue):
    page = hardening.render(results)
    for control in hardening.ANSSI_IN_SCOPE:
        assert f"| `{control}` |" in page, control
    del catalogue["anssi_R62"]
    errors = hardening.check(results)
    assert any("ANSSI BP-028 anssi_R62 (enhanced level) is missing" in error for error in errors)


def test_a_control_implemented_through_others_names_them_and_shares_their_needs(results, catalogue):
    page = hardening.render(results)
    row = next(line for line in page.splitlines() if line.startswith("| `anssi_R9` |"))
    assert "through `cis_1.5.1`" in row and "sysctl `kernel.panic_on_oops`" in row
    assert "role `firewall`:" in next(line for line in page.splitlines() if line.startswith("| `cis_4.3.8` |"))
    catalogue["anssi_R11"] = {**catalogue["anssi_R11"], "needs": []}
    catalogue["anssi_R14"] = {**catalogue["anssi_R14"], "via": ["cis_1.5.3", "cis_9.9.9"]}
    errors = hardening.check(results)
    assert any("anssi_R11 needs ['sysctl']" in error for error in errors), errors
    assert any("anssi_R14 is implemented via cis_9.9.9, which __baseline_controls lacks" in error for error in errors), errors


def test_a_control_relaxed_by_design_says_why_and_cannot_also_be_implemented(results, catalogue):
    page = hardening.render(results)
    row = next(line for line in page.splitlines() if line.startswith("| `anssi_R75` |"))
    assert "relaxed: No host runs a mail service" in row
    catalogue["cis_1.5.1"] = {**catalogue["cis_1.5.1"], "relaxed": "no reason"}
    errors = hardening.check(results)
    assert any("cis_1.5.1 is relaxed (not applied) in __baseline_controls, yet something implements it" in error for error in errors)
