"""The waf role's filters: upstream servers from the topology, exclusions as ModSecurity rules (WAF)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rempart import topology as model
from rempart.roledocs import filter_plugin

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.WAF
waf = filter_plugin("waf")
DEFAULTS = yaml.safe_load((REPO / "roles/waf/defaults/main.yml").read_text(encoding="utf-8"))


def test_the_upstreams_are_every_app_server_on_the_overlay_and_the_app_port():
    lab = model.check(model.INVENTORIES / "lab" / model.TOPOLOGY_FILE)
    port = model.port(lab, "app")
    assert waf.waf_upstream_servers(lab, "app", "app") == [f"{lab['hosts'][h]['overlay']}:{port}" for h in model.members(lab, "app")]


def test_the_shipped_exclusions_are_valid_and_each_has_its_reason():
    assert waf.waf_exclusion_problems(DEFAULTS["waf_exclusions"]) == []
    rules = waf.waf_exclusion_rules(DEFAULTS["waf_exclusions"])
    reasons = [line for line in rules["before"] + rules["after"] if line.startswith("# waf_exclusions[")]
    assert len(reasons) == len(DEFAULTS["waf_exclusions"])


def test_an_exclusion_for_a_path_removes_targets_at_run_time_only_there():
    rules = waf.waf_exclusion_rules([{"rule_ids": [942200, 942260], "targets": ["ARGS:message"], "path": "/submissions",
                                      "reason": "prose in the message"}])
    assert rules["after"] == []
    rule = " ".join(rules["before"][1:])
    assert rule.startswith('SecRule REQUEST_FILENAME "@beginsWith /submissions"')
    assert "ctl:ruleRemoveTargetById=942200;ARGS:message,ctl:ruleRemoveTargetById=942260;ARGS:message" in rule
    assert f"id:{waf.EXCLUSION_FIRST_ID}," in rule and "phase:1" in rule


def test_an_exclusion_everywhere_is_applied_once_the_rules_are_loaded():
    rules = waf.waf_exclusion_rules([{"rule_ids": [920350], "reason": "no DNS name here"},
                                     {"tags": ["attack-sqli"], "targets": ["ARGS:a", "ARGS:b"], "reason": "fields never in SQL"}])
    assert rules["before"] == []
    assert "SecRuleRemoveById 920350" in rules["after"]
    assert 'SecRuleUpdateTargetByTag "attack-sqli" "!ARGS:a|!ARGS:b"' in rules["after"]


@pytest.mark.parametrize(("exclusion", "place"), [
    ({"rule_ids": [1], "reason": "too short"}, "reason"),
    ({"rule_ids": ["x1"], "reason": "a real reason here"}, "rule_ids"),
    ({"tags": ["Bad Tag"], "reason": "a real reason here"}, "tags"),
    ({"rule_ids": [1], "targets": ["ARGS:a b"], "reason": "a real reason here"}, "targets"),
    ({"rule_ids": [1], "path": '/a" deny', "reason": "a real reason here"}, "path"),
    ({"reason": "a real reason here"}, "either rule_ids"),
])
def test_a_wrong_exclusion_is_named_with_its_fix(exclusion, place):
    problems = waf.waf_exclusion_problems([exclusion])
    assert problems and problems[0].startswith("waf_exclusions[0]") and place in problems[0], problems


def test_keepalived_names_the_pair_members_whose_advertisements_the_flow_matrix_stops():
    keepalived = filter_plugin("keepalived")
    lab = model.check(model.INVENTORIES / "lab" / model.TOPOLOGY_FILE)
    assert keepalived.keepalived_unreached(lab, "waf", "waf1") == []
    assert keepalived.keepalived_peers(lab, "waf", "waf1") == [lab["hosts"]["waf2"]["overlay"]]
    lab["flows"] = [f for f in lab["flows"] if "vrrp" not in f["services"]]
    assert keepalived.keepalived_unreached(lab, "waf", "waf1") == ["waf2"]
