"""Who reviews what: .github/CODEOWNERS, written by `make docs` from .github/owners.yml and the playbooks, gives each
path the owners a reviewer expects (GitHub's rule: the last matching line wins), and a wrong owners file or an
unowned role stops `make docs` with the place and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rempart import owners

pytestmark = pytest.mark.ISMS  # change management: who must approve a change (ISO 27001:2022 A.8.32)


def owners_of(codeowners: str, path: str) -> list[str]:
    """GitHub's reading of the file for a path from the repository's root: the last line that matches."""
    found: list[str] = []
    for line in codeowners.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        pattern, *teams = line.split()
        if pattern == "*" or (pattern.endswith("/") and path.startswith(pattern)) or path == pattern:
            found = teams
    return found


@pytest.fixture(scope="module")
def codeowners() -> str:
    return owners.codeowners(owners.load())


@pytest.mark.parametrize(("path", "expected"), [
    ("/roles/patroni/tasks/main.yml", ["@rempart/data"]),
    ("/docs/roles/prometheus.md", ["@rempart/observability"]),
    ("/roles/exporter/tasks/main.yml", ["@rempart/observability"]),  # imported by the exporters: their tier
    ("/roles/waf/templates/nginx.conf.j2", ["@rempart/edge", "@rempart/security"]),
    ("/playbooks/unlock.yml", ["@rempart/data", "@rempart/app"]),  # the roles it runs: pgBackRest's and the app's
    ("/playbooks/bootstrap.yml", ["@rempart/platform", "@rempart/security"]),
    ("/inventories/prod/topology.yml", ["@rempart/platform", "@rempart/security"]),
    ("/inventories/dev/topology.yml", ["@rempart/platform"]),
    ("/.github/CODEOWNERS", ["@rempart/platform", "@rempart/security"]),
    ("/README.md", ["@rempart/platform"]),
])
def test_each_path_has_the_owners_a_reviewer_expects(codeowners, path, expected):
    assert owners_of(codeowners, path) == expected


def test_every_role_and_playbook_has_its_own_owners(codeowners):
    teams, tiers = owners.load()["tiers"], owners.role_tiers()
    for role in sorted(p.name for p in owners.ROLES.iterdir() if p.is_dir()):
        assert owners_of(codeowners, f"/roles/{role}/defaults/main.yml") == teams[tiers[role]], role
    for playbook in sorted(owners.PLAYBOOKS.glob("*.yml")):
        if owners.roles_run_by(playbook):
            assert f"/playbooks/{playbook.name} " in codeowners, f"playbook {playbook.name} has no line of its own"


def test_a_role_no_tier_runs_stops_the_generation(monkeypatch, tmp_path):
    (tmp_path / "vault").mkdir()
    for role in owners.ROLES.iterdir():
        (tmp_path / role.name).symlink_to(role)
    monkeypatch.setattr(owners, "ROLES", tmp_path)
    with pytest.raises(owners.OwnersError, match="roles/vault: no tier's playbook runs it and no role imports it"):
        owners.codeowners(owners.load())


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "owners.yml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["tiers"].pop("edge"), "give each of these its owners, and only these"),
    (lambda d: d["tiers"].update(cache=["@rempart/platform"]), "give each of these its owners, and only these"),
    (lambda d: d.update(default=["rempart/platform"]), "default is ['rempart/platform']: give a list of GitHub owners"),
    (lambda d: d["tiers"].update(data=[]), "tiers.data is []: give a list of GitHub owners"),
    (lambda d: d["security"].update(team=None), "security.team is [None]"),
    (lambda d: d["security"]["paths"].append("/roles/vault/"), "security.paths names /roles/vault/, which the repository does not hold"),
    (lambda d: d["security"]["paths"].append("roles/pki/"), "each starting with / and without spaces"),
    (lambda d: d["security"]["paths"].append("/docs/pki.md @rempart/everyone"), "each starting with / and without spaces"),
])
def test_a_wrong_owners_file_names_the_place_and_the_fix(tmp_path, change, message):
    data = yaml.safe_load(owners.OWNERS.read_text(encoding="utf-8"))
    change(data)
    with pytest.raises(owners.OwnersError) as error:
        owners.load(write(tmp_path, data))
    assert message in str(error.value) and str(tmp_path / "owners.yml") in str(error.value)


def test_the_pull_request_template_carries_every_item_of_the_review_checklist(tmp_path):
    checklist = owners.CHECKLIST.read_text(encoding="utf-8")
    text = owners.template()
    for section in owners.SECTIONS:
        items = owners._items(checklist, section)
        assert items, section
        assert all(f"- [ ] {item}" in text for item in items)
    edited = tmp_path / "checklist.md"
    edited.write_text(checklist.replace("- yamllint and ansible-lint", "- yamllint, codespell and ansible-lint"), encoding="utf-8")
    assert "- [ ] yamllint, codespell and ansible-lint (production profile) pass." in owners.template(edited)
    edited.write_text(checklist.replace("## Checked by the reviewer", "## Reviewed"), encoding="utf-8")
    with pytest.raises(owners.OwnersError, match="no section `## Checked by the reviewer`"):
        owners.template(edited)
