"""The hardening page of the docs, generated from the code and from a results file.

Sources, none typed into the page:
- the controls of the baseline role (``roles/baseline/vars/main.yml``: ``__baseline_controls``), the
  files and data that implement them (``__baseline_files``, ``baseline_sysctl``, ...) and the CIS tags
  on the tasks of every role (the SSH controls live in role ``sshd``);
- the exceptions of the role's defaults (each with its reason);
- the measured results (``docs/results/hardening.json``, written by ``make audit``): Lynis,
  ssh-audit, the time of the second run, and what the role applied, found not applicable in the
  container, or skipped; and Lynis on every lab host (``make audit-lab``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
ROLES = REPO / "roles"
BASELINE = ROLES / "baseline"
RESULTS = REPO / "docs" / "results" / "hardening.json"
PAGE = REPO / "docs" / "hardening.md"
CIS_TAG = re.compile(r"^(cis_[0-9][0-9.x]*|anssi_R[0-9]+|kspp|extra_[a-z_]+)$")
# Targets of issues 4 and 11 (Lynis on every lab host); the molecule verifier holds the same defaults as
# environment variables.
TARGETS = {"lynis_index": 90, "ssh_audit_fail": 0, "ssh_audit_warn": 0, "second_run_seconds": 20}
# ANSSI BP-028 v2 has R1 to R80; these are of its *high* level only, beyond the enhanced level in scope (issue 17).
ANSSI_HIGH_ONLY = {4, 6, *range(15, 28), 46, 47, 48, 49, 66, 76, 77}
ANSSI_IN_SCOPE = [f"anssi_R{n}" for n in range(1, 81) if n not in ANSSI_HIGH_ONLY]


def _ranges(numbers: set[int]) -> str:
    """R4, R6, R15-R27 and R46 for {4, 6, 15, ..., 27, 46}."""
    spans: list[list[int]] = []
    for n in sorted(numbers):
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    names = [f"R{a}" if a == b else f"R{a}-R{b}" for a, b in spans]
    return ", ".join(names[:-1]) + " and " + names[-1]


def _sort_key(control: str) -> list:
    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.findall(r"[0-9]+|[A-Za-z]+", control)]


def _tasks(role: Path):
    for path in sorted((role / "tasks").glob("*.yml")):
        for task in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            if isinstance(task, dict):
                yield path, task


def tagged_controls() -> dict[str, list[tuple[str, str]]]:
    """CIS id -> [(role, task name)] from the tags of every role's tasks."""
    found: dict[str, list[tuple[str, str]]] = {}
    for role in sorted(p for p in ROLES.iterdir() if (p / "tasks").is_dir()):
        for _path, task in _tasks(role):
            for tag in task.get("tags", []) or []:
                if isinstance(tag, str) and CIS_TAG.match(tag):
                    found.setdefault(tag, []).append((role.name, task.get("name", "?")))
    return found


def baseline_data() -> dict:
    variables = yaml.safe_load((BASELINE / "vars" / "main.yml").read_text(encoding="utf-8"))
    defaults = yaml.safe_load((BASELINE / "defaults" / "main.yml").read_text(encoding="utf-8"))
    where: dict[str, list[str]] = {}
    for entry in variables["__baseline_files"]:
        for control in entry.get("controls", []):
            where.setdefault(control, []).append(f"`{entry['path']}`")
    for key, label in (("baseline_sysctl", "sysctl"), ("baseline_blocked_modules", "module"),
                       ("baseline_absent_packages", "package absent"), ("baseline_kernel_cmdline", "kernel option")):
        for item in defaults[key]:
            where.setdefault(item["id"], []).append(f"{label} `{item.get('name', item.get('value'))}`")
    for control, path, *_ in variables["__baseline_permissions"]:
        where.setdefault(control, []).append(f"mode of `{path}`")
    by_function = [{**exception, "function": function}
                   for function, exceptions in (variables.get("__baseline_function_exceptions") or {}).items() for exception in exceptions]
    return {"controls": variables["__baseline_controls"], "where": where, "exceptions": defaults["baseline_exceptions"] + by_function,
            "lynis_reasons": variables.get("__baseline_lynis_reasons") or {}}


SSHD = ROLES / "sshd"


def sshd_data() -> dict:
    """Role sshd's CIS controls (vars: __sshd_controls) and, for each, the lines of sshd_config that
    meet it, rendered from the role's template with its defaults (the page states what the code writes)."""
    import jinja2  # noqa: PLC0415 - Ansible's own dependency, only needed here

    controls = yaml.safe_load((SSHD / "vars" / "main.yml").read_text(encoding="utf-8"))["__sshd_controls"]
    defaults = yaml.safe_load((SSHD / "defaults" / "main.yml").read_text(encoding="utf-8"))
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    environment.tests["search"] = lambda value, pattern: re.search(pattern, value) is not None
    template = environment.from_string((SSHD / "templates" / "sshd_config.j2").read_text(encoding="utf-8"))
    config = template.render(ansible_managed="", **defaults).splitlines()
    lines = {control: [line.strip() for line in config for keyword in entry["keywords"] if line.split(" ", 1)[0] == keyword]
             for control, entry in controls.items()}
    return {"controls": controls, "lines": lines}


def check(results: dict | None) -> list[str]:
    """Catalogue, tags and results agree; problems as messages naming the fix."""
    data = baseline_data()
    tags = tagged_controls()
    errors = []
    catalogue = set(data["controls"])
    baseline_tags = {tag for tag, uses in tags.items() if any(role == "baseline" for role, _ in uses)}
    # Other roles implement some controls of the catalogue (role common's updates, role firewall's nftables).
    other_roles = {tag for tag in tags if tag in catalogue or tag.startswith("anssi_")}
    implemented = baseline_tags | other_roles | set(data["where"])
    for control, entry in data["controls"].items():
        unknown = [part for part in entry.get("via", []) if part not in catalogue]
        if unknown:
            errors.append(f"roles/baseline: {control} is implemented via {', '.join(unknown)}, which __baseline_controls lacks")
        if entry.get("via") or entry.get("relaxed"):
            implemented.add(control)
        if entry.get("relaxed") and (entry.get("via") or control in data["where"] or control in tags):
            errors.append(f"roles/baseline: {control} is relaxed (not applied) in __baseline_controls, yet something implements it: "
                          "drop `relaxed`, or what implements it")
        needed = sorted({need for part in entry.get("via", []) if part in catalogue for need in data["controls"][part]["needs"]})
        if entry.get("via") and not set(needed) <= set(entry["needs"]):
            errors.append(f"roles/baseline: {control} needs {needed} (the needs of what it is implemented via), "
                          f"not {sorted(entry['needs'])}: fix its `needs` in __baseline_controls")
    sshd = sshd_data()
    for control, entry in sshd["controls"].items():
        missing = [keyword for keyword in entry["keywords"] if not any(line.startswith(keyword + " ") for line in sshd["lines"][control])]
        if missing:
            errors.append(f"roles/sshd: {control} names {', '.join(missing)} in __sshd_controls, which templates/sshd_config.j2 "
                          "no longer writes: fix the template or the entry")
    sshd_tags = {tag for tag, uses in tags.items() if any(role == "sshd" for role, _ in uses)}
    for control in sorted(sshd_tags - set(sshd["controls"]) - catalogue, key=_sort_key):
        errors.append(f"roles/sshd: a task carries {control}, which __sshd_controls (vars/main.yml) does not describe: add it")
    for control in sorted(set(sshd["controls"]) - sshd_tags, key=_sort_key):
        errors.append(f"roles/sshd: {control} is in __sshd_controls but no task of the role carries it as a tag")
    for control in ANSSI_IN_SCOPE:
        if control not in catalogue:
            errors.append(f"roles/baseline: ANSSI BP-028 {control} (enhanced level) is missing from __baseline_controls: "
                          "implement it, or list it with `relaxed` and the reason")
    for control in sorted(catalogue - implemented, key=_sort_key):
        errors.append(f"roles/baseline: control {control} is in __baseline_controls but no task tag, file or data item implements it")
    for control in sorted(implemented - catalogue, key=_sort_key):
        errors.append(f"roles/baseline: {control} is used by a task or data item but missing from __baseline_controls (vars/main.yml)")
    if results is None:
        errors.append(f"{RESULTS.relative_to(REPO)} is missing: run `make audit` and commit it")
        return errors
    for suggestion in _suggestions(results):
        test = suggestion.partition(": ")[0]
        if test not in data["lynis_reasons"]:
            errors.append(f"Lynis suggests {suggestion!r} and roles/baseline/vars/main.yml (__baseline_lynis_reasons) "
                          f"gives no reason for {test}: follow it, or add the reason")
    reported = set(results["baseline"]["applied"]) | set(results["baseline"]["not_applicable"]) | set(results["baseline"]["skipped"])
    if reported != catalogue:
        changed = sorted(reported ^ catalogue, key=_sort_key)
        errors.append(f"{RESULTS.relative_to(REPO)} is stale (controls changed: {', '.join(changed)}): run `make audit` and commit it")
    return errors


def _suggestions(results: dict) -> list[str]:
    """What Lynis suggests on the scenario's host and on any lab host, each once."""
    found = set(results["lynis"]["suggestions"])
    for entry in results.get("lab", {}).get("hosts", {}).values():
        found.update(entry["suggestions"])
    return sorted(found)


def _lab_lines(lab: dict | None) -> list[str]:
    if not lab:
        return []
    lines = [
        "",
        f"## Every lab host ({lab['measured']}, commit {lab['commit']}, `{lab['command']}`)",
        "",
        f"Lynis {lab['version']} on each host of the lab, once `make lab` has built the whole platform (the",
        "firewall and the private links included, which the scenario above does not have).",
        "",
        "| Host | Lynis hardening index | Target | |",
        "|---|---|---|---|",
    ]
    for host, entry in sorted(lab["hosts"].items()):
        lines.append(f"| `{host}` | {entry['index']} | ≥ {TARGETS['lynis_index']} | {_mark(entry['index'] >= TARGETS['lynis_index'])} |")
    return lines


def _status(control: str, report: dict) -> str:
    """As the role reported it: relaxed (an exception, or not applied by design), not applicable, or applied."""
    if control in report["skipped"]:
        return f"relaxed: {report['skipped'][control]}"
    if control in report["not_applicable"]:
        return f"not applicable in the container ({report['not_applicable'][control].replace('this host does not allow: ', 'needs ')})"
    return "applied"


def _cell(text: str) -> str:
    """Text for a Markdown table cell: a `|` in it would end the cell."""
    return text.replace("|", "\\|")


def _mark(ok: bool) -> str:
    return "met" if ok else "**missed**"


def render(results: dict) -> str:
    data = baseline_data()
    tags = tagged_controls()
    report = results["baseline"]
    lynis, ssh = results["lynis"], results["ssh_audit"]
    baseline_run, scenario_run = results["run"]["baseline"], results["run"]["scenario"]
    lines = [
        "<!-- Generated by `make docs` from the code and docs/results/hardening.json (`make audit`). Do not edit. -->",
        "# Hardening baseline",
        "",
        "Every host gets the roles `sshd` and `baseline` (requirements HARD, AUDIT): the CIS Debian Linux 12",
        "Benchmark v1.0.1, Level 1 server, where it makes sense on a server, with CIS Level 2's accounts, logging,",
        "audit, AppArmor and partition controls, plus kernel self-protection settings; and every",
        "recommendation of ANSSI's guide BP-028 v2 (*Recommandations de configuration d'un système",
        f"GNU/Linux*) up to its *enhanced* level (ids `anssi_R<n>`; the *high* level's {_ranges(ANSSI_HIGH_ONLY)}",
        "are not in scope). Many BP-028 recommendations are implemented *through* CIS",
        "controls, named in the *Where* column; a few by other roles (named there). External tools score the",
        "result on the baseline role's molecule scenario (one Debian 12 container with `common`, `sshd` and",
        "`baseline`).",
        "",
        f"## Measured figures ({results['measured']}, commit {results.get('commit', '?')}, `{results['command']}`, {results['machine']})",
        "",
        "| Measure | Target | Measured | |",
        "|---|---|---|---|",
        f"| Lynis {lynis['version']} hardening index | ≥ {TARGETS['lynis_index']} | {lynis['index']} | {_mark(lynis['index'] >= TARGETS['lynis_index'])} |",
        f"| ssh-audit {ssh['version']}: failures | {TARGETS['ssh_audit_fail']} | {len(ssh['fail'])} | {_mark(len(ssh['fail']) <= TARGETS['ssh_audit_fail'])} |",
        f"| ssh-audit {ssh['version']}: warnings | {TARGETS['ssh_audit_warn']} | {len(ssh['warn'])} | {_mark(len(ssh['warn']) <= TARGETS['ssh_audit_warn'])} |",
        f"| Second run of `sshd` + `baseline` over SSH | < {TARGETS['second_run_seconds']} s, 0 changed | "
        f"{baseline_run['second']['seconds']} s, {baseline_run['second']['changed']} changed ({baseline_run['second']['tasks_ok']} tasks) | "
        f"{_mark(baseline_run['second']['seconds'] < TARGETS['second_run_seconds'] and baseline_run['second']['changed'] == 0)} |",
        f"| Second run of the whole scenario (`common` too) | 0 changed | {scenario_run['second']['seconds']} s, "
        f"{scenario_run['second']['changed']} changed ({scenario_run['second']['tasks_ok']} tasks) | "
        f"{_mark(scenario_run['second']['changed'] == 0)} |",
        "",
        f"Runs: {results['run']['connection']}. The molecule verifier asserts the Lynis and ssh-audit targets on",
        "every `make test` (thresholds: `LYNIS_MIN_INDEX`, `SSH_AUDIT_MAX_FAIL`, `SSH_AUDIT_MAX_WARN`).",
        *_lab_lines(results.get("lab")),
        "",
        "## Controls",
        "",
        '!!! info "Not applicable in the container"',
        "    The figures and statuses below come from a container. *Not applicable in the container* means the",
        "    role wrote what persists (e.g. the sysctl file) but the container does not let it take effect:",
        "    kernel parameters, mounts, boot options, AppArmor and auditd belong to the host's kernel there. On",
        "    a real host these controls apply.",
        "",
        "Status is what the role reported on the measured container. *Relaxed* controls are exceptions (`baseline_exceptions`), each with",
        "its reason and what compensates; a few are not applied by design (firmware settings, a boot loader",
        "password, mail for root), said with the reason. Some controls are checks whose fix needs a person rather than a",
        "script (a second UID 0 account, duplicate ids, an `.rhosts` file, sudo without a password, an",
        "unowned file): *applied* means the role checks them on every run and prints each finding as a",
        "`warn` line that names the fix, until someone deals with it.",
        "",
        "| Control | What | Where | Status |",
        "|---|---|---|---|",
    ]
    for control in sorted(data["controls"], key=_sort_key):
        title = data["controls"][control]["title"]
        where = list(data["where"].get(control, [])) or [f"task: {name}" for role, name in tags.get(control, []) if role == "baseline"]
        where += [f"role `{role}`: {name}" for role, name in tags.get(control, []) if role != "baseline"]
        where += [f"through `{part}`" for part in data["controls"][control].get("via", [])]
        lines.append(f"| `{control}` | {_cell(title)} | {'<br>'.join(_cell(w) for w in sorted(set(where)))} | {_cell(_status(control, report))} |")
    ssh_controls = {tag: uses for tag, uses in tags.items() if any(role == "sshd" for role, _ in uses)}
    sshd = sshd_data()
    lines += [
        "",
        "## SSH server (role `sshd`)",
        "",
        "What each control asks, and the lines of `/etc/ssh/sshd_config` that meet it, rendered from the role's",
        "template with its defaults (`roles/sshd/vars/main.yml`: `__sshd_controls`); the whole file is checked",
        "with `sshd -t` before it replaces the running one, and ssh-audit scores the result above.",
        "",
        "| Control | What | sshd_config (role defaults) | Task |",
        "|---|---|---|---|",
    ]
    for control in sorted(ssh_controls, key=_sort_key):
        names = sorted({name.partition(" | ")[2] or name for role, name in ssh_controls[control] if role == "sshd"})
        title = sshd["controls"][control]["title"] if control in sshd["controls"] else data["controls"][control]["title"]
        config = "<br>".join(f"`{_cell(line)}`" for line in sshd["lines"].get(control, []))
        lines.append(f"| `{control}` | {_cell(title)} | {config} | {'<br>'.join(_cell(name) for name in names)} |")
    lines += ["", "## Exceptions", "", "| Control | Where | Reason |", "|---|---|---|"]
    for exception in data["exceptions"]:
        where = f"hosts with function `{exception['function']}`" if "function" in exception else "every host"
        lines.append(f"| `{exception['id']}` | {where} | {_cell(' '.join(exception['reason'].split()))} |")
    lines += [
        "",
        "An inventory adds its own with `baseline_exceptions` (a host that serves the web, for instance, on",
        "`cis_2.1.18`); the role refuses an id it does not know or an empty reason. Those of a function",
        "(`__baseline_function_exceptions`) come with the function in the topology.",
        "",
        "## What Lynis still suggests",
        "",
        "Each suggestion, on the scenario's host or on a lab host, with the reason it is not followed",
        "(`__baseline_lynis_reasons` in the baseline role):",
        "",
        "| Test | Suggestion | Why not |",
        "|---|---|---|",
    ]
    for suggestion in _suggestions(results):
        test, _, text = suggestion.partition(": ")
        reason = " ".join(data["lynis_reasons"].get(test, "").split())
        lines.append(f"| `{test}` | {_cell(text)} | {_cell(reason)} |")
    if not _suggestions(results):
        lines.append("| | (none) | |")
    lines.append("")
    return "\n".join(lines)


def load_results() -> dict | None:
    return json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else None
