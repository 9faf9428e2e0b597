"""What the waf role derives: its upstream servers from the topology, and its exclusions as ModSecurity rules."""

from __future__ import annotations

import re

from rempart.topology import members, port

# Identifiers of the generated exclusion rules: the range ModSecurity leaves to local rules, away from
# the Core Rule Set's (900000-999999) and from the engine's own (200000-200099).
EXCLUSION_FIRST_ID = 10000
TAG = re.compile(r"^[a-z0-9][a-z0-9/_.-]*$")
TARGET = re.compile(r"^[A-Z_]+(:[A-Za-z0-9_.-]+)?$")
PATH = re.compile(r"^/[A-Za-z0-9/_.~-]*$")


def waf_upstream_servers(topology: dict, function: str, service: str) -> list[str]:
    """``address:port`` of every host with ``function``, on the overlay, on ``service``'s first port."""
    number = port(topology, service)
    return [f"{topology['hosts'][host]['overlay']}:{number}" for host in members(topology, function)]


def waf_exclusion_problems(exclusions: list) -> list[str]:
    """What is wrong with each exclusion, as sentences that name it and the fix."""
    problems = []
    for index, item in enumerate(exclusions or []):
        where = f"waf_exclusions[{index}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: give a mapping with rule_ids or tags, and a reason.")
            continue
        ids, tags = item.get("rule_ids") or [], item.get("tags") or []
        if bool(ids) == bool(tags):
            problems.append(f"{where}: give either rule_ids (numbers) or tags (e.g. attack-sqli), not both, not none.")
        if any(not str(i).isdigit() for i in ids):
            problems.append(f"{where}.rule_ids: {ids} must be rule numbers such as 942100.")
        if any(not TAG.match(str(t)) for t in tags):
            problems.append(f"{where}.tags: {tags} must be rule tags such as attack-sqli.")
        if any(not TARGET.match(str(t)) for t in item.get("targets") or []):
            problems.append(f"{where}.targets: {item.get('targets')} must be variables such as ARGS:password or REQUEST_COOKIES:name.")
        if "path" in item and not PATH.match(str(item["path"])):
            problems.append(f"{where}.path: {item['path']!r} must be a URL path prefix such as /agent/login.")
        if len(str(item.get("reason") or "").split()) < 4:
            problems.append(f"{where}.reason: say why the application needs it (the docs show it).")
    return problems


def quoted(text: str) -> str:
    return f'"{text}"'


def waf_exclusion_rules(exclusions: list) -> dict:
    """ModSecurity lines for the exclusions: ``before`` the Core Rule Set (runtime, for a path) and
    ``after`` it (at start-up, everywhere)."""
    before, after = [], []
    for index, item in enumerate(exclusions or []):
        reason = " ".join(str(item["reason"]).split())
        by_tag = bool(item.get("tags"))
        selectors = [str(t) for t in (item.get("tags") or item.get("rule_ids"))]
        targets = [str(t) for t in item.get("targets") or []]
        header = f"# waf_exclusions[{index}]: {reason}"
        if item.get("path"):
            kind = ("ruleRemoveTargetByTag" if by_tag else "ruleRemoveTargetById") if targets else ("ruleRemoveByTag" if by_tag else "ruleRemoveById")
            actions = [f"ctl:{kind}={s};{t}" for s in selectors for t in targets] if targets else [f"ctl:{kind}={s}" for s in selectors]
            before += [header, f'SecRule REQUEST_FILENAME "@beginsWith {item["path"]}" \\',
                       f'    "id:{EXCLUSION_FIRST_ID + index},phase:1,pass,nolog,t:none,' + ",".join(actions) + '"']
        elif targets:
            directive = "SecRuleUpdateTargetByTag" if by_tag else "SecRuleUpdateTargetById"
            negated = "|".join("!" + t for t in targets)
            after += [header] + [f'{directive} {quoted(s) if by_tag else s} "{negated}"' for s in selectors]
        else:
            directive = "SecRuleRemoveByTag" if by_tag else "SecRuleRemoveById"
            after += [header] + [f"{directive} {quoted(s) if by_tag else s}" for s in selectors]
    return {"before": before, "after": after}


class FilterModule:
    def filters(self):
        return {
            "waf_upstream_servers": waf_upstream_servers,
            "waf_exclusion_problems": waf_exclusion_problems,
            "waf_exclusion_rules": waf_exclusion_rules,
        }
