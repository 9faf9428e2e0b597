"""The role reference generator: its checks catch each kind of drift, and the repository passes them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rempart import roledocs

pytestmark = pytest.mark.DOC

GOOD_SPECS = {
    "argument_specs": {
        "main": {
            "short_description": "Demo role.",
            "options": {
                "demo_port": {"type": "int", "default": 8080, "description": "Port it listens on."},
                "demo_users": {
                    "type": "list",
                    "elements": "dict",
                    "default": [],
                    "description": "Users.",
                    "options": {"name": {"type": "str", "required": True, "description": "Login."}},
                },
                "demo_token": {"type": "str", "required": True, "no_log": True, "description": "API token."},
            },
        }
    }
}
GOOD_DEFAULTS = {"demo_port": 8080, "demo_users": []}


def make_role(root: Path, specs: dict, defaults: dict, name: str = "demo", tags=("SEG",)) -> roledocs.Role:
    role = root / name
    (role / "meta").mkdir(parents=True)
    (role / "defaults").mkdir()
    (role / "tasks").mkdir()
    (role / "meta" / "argument_specs.yml").write_text(yaml.safe_dump(specs), encoding="utf-8")
    (role / "defaults" / "main.yml").write_text(yaml.safe_dump(defaults), encoding="utf-8")
    task = [{"name": "Do it", "ansible.builtin.debug": {"msg": "hi"}, "tags": list(tags) + ["demo"]}]
    (role / "tasks" / "main.yml").write_text(yaml.safe_dump(task), encoding="utf-8")
    return roledocs.load_role(role)


def test_a_consistent_role_passes(tmp_path):
    assert roledocs.check_role(make_role(tmp_path, GOOD_SPECS, GOOD_DEFAULTS)) == []


def test_default_missing_from_specs_is_reported(tmp_path):
    role = make_role(tmp_path, GOOD_SPECS, {**GOOD_DEFAULTS, "demo_extra": 1})
    assert roledocs.check_role(role) == [
        "demo: demo_extra is set in roles/demo/defaults/main.yml but not described in "
        "roles/demo/meta/argument_specs.yml: add it there."
    ]


def test_optional_variable_without_default_is_reported(tmp_path):
    role = make_role(tmp_path, GOOD_SPECS, {"demo_users": []})
    errors = roledocs.check_role(role)
    assert len(errors) == 1 and "demo_port is optional" in errors[0] and "add the default" in errors[0]


def test_differing_defaults_are_reported(tmp_path):
    role = make_role(tmp_path, GOOD_SPECS, {**GOOD_DEFAULTS, "demo_port": "8080"})
    errors = roledocs.check_role(role)
    assert errors == [
        'demo: demo_port defaults to "8080" in roles/demo/defaults/main.yml but to 8080 in '
        "roles/demo/meta/argument_specs.yml: make them equal."
    ]


def test_missing_description_is_reported_also_for_suboptions(tmp_path):
    specs = yaml.safe_load(yaml.safe_dump(GOOD_SPECS))
    del specs["argument_specs"]["main"]["options"]["demo_users"]["options"]["name"]["description"]
    errors = roledocs.check_role(make_role(tmp_path, specs, GOOD_DEFAULTS))
    assert len(errors) == 1 and "demo_users.name has no description" in errors[0]


def test_unprefixed_variable_is_reported(tmp_path):
    specs = yaml.safe_load(yaml.safe_dump(GOOD_SPECS))
    specs["argument_specs"]["main"]["options"]["port"] = {"type": "int", "default": 1, "description": "x"}
    errors = roledocs.check_role(make_role(tmp_path, specs, {**GOOD_DEFAULTS, "port": 1}))
    assert errors == ["demo: variable port does not start with 'demo_': rename it."]


def test_unknown_requirement_tag_is_reported(tmp_path):
    errors = roledocs.check_role(make_role(tmp_path, GOOD_SPECS, GOOD_DEFAULTS, tags=("SEG", "HARDD")))
    assert errors == [
        "demo: tag HARDD in roles/demo/tasks/ is not a requirement ID (SEG, HARD, ENV, WAF, ENC, KEY, DOC, DR, HA, "
        "AVAIL, LINK, MON, STATUS, AUDIT, LOC, ISMS): fix it, or write the tag in lower case if it is not one."
    ]


def test_role_without_specs_is_reported(tmp_path):
    errors = roledocs.check_role(make_role(tmp_path, {}, GOOD_DEFAULTS))
    assert errors and "has no argument_specs" in errors[0]


def test_page_lists_every_variable_and_the_requirements(tmp_path):
    page = roledocs.render_role(make_role(tmp_path, GOOD_SPECS, GOOD_DEFAULTS))
    assert "| `demo_port` | int | `8080` | Port it listens on. |" in page
    assert "| `demo_users[].name` | str | *required* | Login. |" in page
    assert "| `demo_token` | str | *required* | API token. |" in page
    assert "**Requirements** (task tags): `SEG`" in page


def test_stale_and_orphan_pages_are_detected(tmp_path):
    role = make_role(tmp_path / "roles", GOOD_SPECS, GOOD_DEFAULTS)
    docs = tmp_path / "docs"
    pages = roledocs.expected_pages([role])
    roledocs.write_pages(pages, docs)
    assert roledocs.stale_pages(pages, docs) == []
    (docs / "demo.md").write_text("edited by hand\n", encoding="utf-8")
    (docs / "gone.md").write_text("old role\n", encoding="utf-8")
    stale = roledocs.stale_pages(pages, docs)
    assert any(entry.endswith("demo.md") for entry in stale)
    assert any("gone.md" in entry and "no such role" in entry for entry in stale)


@pytest.mark.parametrize("role", roledocs.load_roles(), ids=lambda role: role.name)
def test_repository_roles_are_consistent(role):
    assert roledocs.check_role(role) == []


def test_a_role_other_roles_import_is_tested_where_they_are(tmp_path, monkeypatch):
    for name, tasks in (("shared", "- ansible.builtin.debug: {msg: shared}\n"),
                        ("user", "- name: The shared part\n  ansible.builtin.import_role:\n    name: shared\n"),
                        ("other", "- name: Another role\n  ansible.builtin.import_role:\n    name: shared_too\n")):
        (tmp_path / name / "tasks").mkdir(parents=True)
        (tmp_path / name / "tasks" / "main.yml").write_text(f"---\n{tasks}", encoding="utf-8")
    (tmp_path / "tier" / "molecule" / "default").mkdir(parents=True)
    (tmp_path / "tier" / "molecule" / "default" / "converge.yml").write_text("roles:\n  - role: user\n", encoding="utf-8")
    monkeypatch.setattr(roledocs, "ROLES_DIR", tmp_path)
    assert roledocs.role_importers("shared") == ["user"]
    testing = roledocs._testing("shared")
    assert testing[0].startswith("Imported by [`user`](user.md)")
    assert any("roles/tier/molecule/default/" in line for line in testing[1:])
    assert roledocs._testing("other") == ["**No test covers this role yet.**"]


def test_repository_pages_are_current():
    assert roledocs.stale_pages(roledocs.expected_pages(roledocs.load_roles())) == []


def test_offline_check_flags_remote_fonts_and_scripts(tmp_path):
    (tmp_path / "ok.html").write_text('<link rel="stylesheet" href="assets/main.css"><script src="x.js"></script>')
    (tmp_path / "bad.html").write_text(
        '<link rel="preconnect" href="https://fonts.gstatic.com" crossorigin>\n'
        '<script src="//cdn.example.org/lib.js"></script>'
    )
    (tmp_path / "bad.css").write_text('@import url("https://fonts.googleapis.com/css?family=Roboto");')
    found = roledocs.offline_violations(tmp_path)
    assert len(found) == 3
    assert all(entry.startswith(("bad.html", "bad.css")) for entry in found)


def test_nav_block_lists_every_role(tmp_path):
    role = make_role(tmp_path, GOOD_SPECS, GOOD_DEFAULTS)
    text = f"nav:\n  - Roles:\n      {roledocs.NAV_BEGIN}\n      - old: roles/old.md\n      {roledocs.NAV_END}\n"
    assert roledocs.render_nav([role], text) == (
        f"nav:\n  - Roles:\n      {roledocs.NAV_BEGIN}\n      - demo: roles/demo.md\n      {roledocs.NAV_END}\n"
    )


def test_a_canonical_link_to_where_the_site_is_published_is_not_a_load(tmp_path):
    (tmp_path / "page.html").write_text('<link rel="canonical" href="https://docs.example.org/page.html">')
    assert roledocs.offline_violations(tmp_path) == []


def test_every_page_of_the_site_names_the_commit_it_was_built_from(tmp_path):
    from rempart import mkdocs_hooks

    stamp = mkdocs_hooks.stamp()
    assert stamp.startswith("commit ") and len(stamp.split()[1]) == 12
    (tmp_path / "index.html").write_text(f"<footer>Rempart documentation, {stamp}.</footer>")
    (tmp_path / "old.html").write_text("<footer>Rempart documentation, commit 000000000000 of 2026-01-01.</footer>")
    (tmp_path / "404.html").write_text("<p>not found</p>")
    assert roledocs.unstamped_pages(tmp_path, stamp) == ["old.html"]
