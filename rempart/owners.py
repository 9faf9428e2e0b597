"""Who reviews what, written by ``make docs`` (``--check`` fails when stale):

- ``.github/CODEOWNERS`` from ``.github/owners.yml`` and the playbooks: each tier's team owns the tier's playbook
  (an import of ``playbooks/site.yml`` named "... tier"), the roles it runs, first run wins in site.yml's order (a
  role only other roles import goes with them), and their generated pages; another playbook goes to the teams of
  the roles it runs; the security paths need the security team too;
- ``.github/pull_request_template.md`` from the review checklist (``docs/development/review-checklist.md``), item
  by item, so that the two cannot say different things.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from .roledocs import role_importers
from .topology.docs import play_roles

REPO = Path(__file__).resolve().parent.parent
OWNERS = REPO / ".github" / "owners.yml"
CODEOWNERS = REPO / ".github" / "CODEOWNERS"
TEMPLATE = REPO / ".github" / "pull_request_template.md"
CHECKLIST = REPO / "docs" / "development" / "review-checklist.md"
PLAYBOOKS = REPO / "playbooks"
ROLES = REPO / "roles"
# A GitHub owner: a user (@name) or a team (@organisation/team).
OWNER = re.compile(r"^@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:/[A-Za-z0-9._-]+)?$")
SECTIONS = ("Checked by `make test`", "Checked by the reviewer")


class OwnersError(ValueError):
    """A wrong owners file: the message names the file, the place and the fix."""


def _where(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def load(path: Path = OWNERS) -> dict:
    """The owners file, checked: every tier of site.yml has owners, every owner is a GitHub user or team."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise OwnersError(f"{_where(path)}: cannot be read ({error}): it is YAML with `default`, `tiers` and `security`") from None
    if not isinstance(data, dict):
        raise OwnersError(f"{_where(path)}: must be a mapping with `default`, `tiers` and `security`")
    owners = {"default": data.get("default"), **{f"tiers.{k}": v for k, v in (data.get("tiers") or {}).items()}}
    security = data.get("security") or {}
    owners["security.team"] = [security.get("team")]
    for place, value in owners.items():
        if not isinstance(value, list) or not value or not all(isinstance(o, str) and OWNER.match(o) for o in value):
            raise OwnersError(f"{_where(path)}: {place} is {value!r}: give a list of GitHub owners, each `@user` or `@organisation/team`")
    missing = [tier for tier in tiers() if tier not in (data.get("tiers") or {})]
    unknown = [tier for tier in (data.get("tiers") or {}) if tier not in tiers()]
    if missing or unknown:
        raise OwnersError(f"{_where(path)}: tiers lists {', '.join(data.get('tiers') or {}) or 'nothing'} but playbooks/site.yml's tiers "
                          f"are {', '.join(tiers())}: give each of these its owners, and only these")
    paths = security.get("paths")
    if not isinstance(paths, list) or not all(isinstance(p, str) and p.startswith("/") and not re.search(r"\s", p) for p in paths):
        raise OwnersError(f"{_where(path)}: security.paths is {paths!r}: give a list of paths from the repository's root, each starting "
                          "with / and without spaces")
    absent = [p for p in paths if not (REPO / p.lstrip("/")).exists()]
    if absent:
        raise OwnersError(f"{_where(path)}: security.paths names {', '.join(absent)}, which the repository does not hold: "
                          "mend or remove the path")
    return data


def tiers() -> list[str]:
    """The tiers of playbooks/site.yml, in its order: the name of each imported playbook named "... tier"."""
    site = yaml.safe_load((PLAYBOOKS / "site.yml").read_text(encoding="utf-8"))
    return [Path(play["ansible.builtin.import_playbook"]).stem for play in site
            if str(play.get("name", "")).endswith(" tier") and "ansible.builtin.import_playbook" in play]


def roles_run_by(playbook: Path) -> list[str]:
    """The roles a playbook's plays apply (as the topology page reads them), in order, once."""
    plays = [play for play in yaml.safe_load(playbook.read_text(encoding="utf-8")) or [] if isinstance(play, dict)]
    return list(dict.fromkeys(role for play in plays for role in play_roles(play)))


def role_tiers() -> dict[str, str]:
    """Each role's tier: the first tier playbook that runs it, else the tier of the first role that imports it."""
    owner: dict[str, str] = {}
    for tier in tiers():
        for role in roles_run_by(PLAYBOOKS / f"{tier}.yml"):
            owner.setdefault(role, tier)
    for role in sorted(p.name for p in ROLES.iterdir() if p.is_dir()):
        if role in owner:
            continue
        importers = [name for name in role_importers(role) if name in owner]
        if importers:
            owner[role] = owner[importers[0]]
    return owner


def codeowners(data: dict) -> str:
    teams = data["tiers"]
    of_role = role_tiers()
    lost = sorted(p.name for p in ROLES.iterdir() if p.is_dir() and p.name not in of_role)
    if lost:
        raise OwnersError(f"roles/{lost[0]}: no tier's playbook runs it and no role imports it, so no team owns it: run it "
                          "from the playbook of its tier (playbooks/site.yml imports each), or remove it")
    security = data["security"]
    lines = [
        "# Generated by `make docs` from .github/owners.yml and the playbooks: do not edit.",
        "# The last matching line gives a path's owners.",
        "",
        f"* {' '.join(data['default'])}",
        "",
    ]
    rows: dict[str, list[str]] = {}
    for tier in tiers():
        rows[f"/playbooks/{tier}.yml"] = teams[tier]
    for playbook in sorted(PLAYBOOKS.glob("*.yml")):
        key = f"/playbooks/{playbook.name}"
        if key not in rows and playbook.stem != "site":
            found = [o for role in roles_run_by(playbook) if role in of_role for o in teams[of_role[role]]]
            if found:
                rows[key] = list(dict.fromkeys(found))
    for role, tier in sorted(of_role.items()):
        rows[f"/roles/{role}/"] = teams[tier]
        rows[f"/docs/roles/{role}.md"] = teams[tier]
    for path in security["paths"]:
        rows[path] = list(dict.fromkeys([*rows.get(path, data["default"]), security["team"]]))
    width = max(map(len, rows))
    lines += [f"{path.ljust(width)} {' '.join(owners)}" for path, owners in rows.items()]
    return "\n".join(lines) + "\n"


def _items(markdown: str, section: str) -> list[str]:
    """The bullets of a level-2 section, each joined on one line, links reduced to their text."""
    match = re.search(rf"^## {re.escape(section)}\n(.*?)(?=^## |\Z)", markdown, re.MULTILINE | re.DOTALL)
    if not match:
        raise OwnersError(f"{_where(CHECKLIST)}: no section `## {section}`: the pull-request template is made from it; put it back")
    items: list[str] = []
    for line in match.group(1).splitlines():
        if line.startswith("- "):
            items.append(line[2:].strip())
        elif line.startswith("  ") and items:
            items[-1] += " " + line.strip()
    return [re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", item) for item in items]


def template(checklist: Path = CHECKLIST) -> str:
    markdown = checklist.read_text(encoding="utf-8")
    lines = [
        "<!-- Generated by `make docs` from docs/development/review-checklist.md (published under Development): "
        "edit that page, not this file. -->",
        "",
        "## What this changes",
        "",
        "<!-- The issue, the roles and playbooks touched, the requirement IDs served. -->",
    ]
    for section in SECTIONS:
        lines += ["", f"## {section}", ""] + [f"- [ ] {item}" for item in _items(markdown, section)]
    lines += ["", "## Time", "", "Seconds added to `make test`: … · to a second `make lab`: …", ""]
    return "\n".join(lines)


def files() -> dict[Path, str]:
    """What ``make docs`` writes: the CODEOWNERS file and the pull-request template."""
    return {CODEOWNERS: codeowners(load()), TEMPLATE: template()}
