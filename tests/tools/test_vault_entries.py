"""The vault's entries listed in the runbooks (the first deploy of a real environment) are the ones the roles read,
and the lab, which stands for a vault, makes every one a run needs."""

from __future__ import annotations

import pytest
import yaml

from rempart import vaultdocs

pytestmark = pytest.mark.KEY

REPO = vaultdocs.REPO


def test_every_secret_a_role_reads_has_its_row():
    found = vaultdocs.entries()
    assert found["vault_postgresql_superuser_password"] == [("patroni", "patroni_superuser_password")]
    assert ("status_page", "status_page_prometheus_password") in found["vault_prometheus_web_password"]
    # Read through an internal of the role (one per database), shown with its pattern.
    assert found["vault_postgresql_<name>_password"] == [("patroni", "patroni_database_passwords")]
    table = vaultdocs.render(found)
    assert all(f"| `{entry}` |" in table for entry in found)


def test_a_role_that_reads_a_new_secret_adds_its_row(tmp_path):
    role = tmp_path / "newrole"
    (role / "defaults").mkdir(parents=True)
    (role / "vars").mkdir()
    (role / "defaults" / "main.yml").write_text('newrole_token: "{{ __newrole_token }}"\nnewrole_port: 8443\n')
    (role / "vars" / "main.yml").write_text("__newrole_token: \"{{ vault_newrole_token | default('') }}\"\n")
    assert vaultdocs.entries(tmp_path) == {"vault_newrole_token": [("newrole", "newrole_token")]}


def test_the_lab_makes_every_secret_a_run_needs():
    lab = yaml.safe_load((REPO / "inventories" / "lab" / "group_vars" / "all" / "lab.yml").read_text(encoding="utf-8"))
    databases = yaml.safe_load((REPO / "inventories" / "reference.yml").read_text(encoding="utf-8"))["databases"]
    app = yaml.safe_load((REPO / "roles" / "app" / "defaults" / "main.yml").read_text(encoding="utf-8"))
    optional = {item["vault"] for item in app["app_secrets"] if item.get("required") is False}
    needed = {e.replace("<name>", name) for e in vaultdocs.entries() for name in databases} - optional
    assert needed - set(lab) == set(), "the lab's vault (inventories/lab/group_vars/all/lab.yml) lacks these"


def test_a_runbooks_page_without_its_markers_is_refused():
    with pytest.raises(ValueError, match="the markers .* are missing"):
        vaultdocs.page_text("# Runbooks\n")
