"""The edge tier's page: the WAF's exclusions and rule files left out, each with its reason, and the
benchmark's figures, rendered from the role and the results (WAF, DOC)."""

from __future__ import annotations

import pytest
import yaml

from rempart import edgedocs

pytestmark = [pytest.mark.WAF, pytest.mark.DOC]


def test_every_exclusion_and_every_file_left_out_appears_with_its_reason():
    defaults = yaml.safe_load(edgedocs.DEFAULTS.read_text(encoding="utf-8"))
    block = edgedocs.render(defaults)
    for item in defaults["waf_exclusions"] + defaults["waf_rule_files_left_out"]:
        assert " ".join(item["reason"].split()) in block
    for item in defaults["waf_rule_files_left_out"]:
        assert f"`{item['file']}`" in block


def test_a_reason_cannot_break_the_table():
    block = edgedocs.render({"waf_exclusions": [{"rule_ids": [1], "reason": "a | b\nc"}], "waf_rule_files_left_out": []})
    row = next(line for line in block.splitlines() if line.startswith("| 0 |"))
    assert row.count("|") - row.count("\\|") == 6 and "a \\| b c" in row


def test_the_page_is_up_to_date_and_shows_the_benchmark_against_the_default():
    text = edgedocs.PAGE.read_text(encoding="utf-8")
    assert edgedocs.page_text(text) == text, "docs/edge.md is stale: run make docs"
    result = {"measured_at": "2026-12-01 08:30 UTC", "commit": "abc1234", "host": "waf1", "load": "wrk", "paranoia_level": 2,
              "attacks": 22, "ratio_get": 2.1, "ratio_post": 2.0, "blocking_lost": 0,
              "setups": {name: {"title": name, "get": {"requests_per_s": 1, "p99_ms": 2}, "post": {"requests_per_s": 3, "p99_ms": 4},
                                "attacks_blocked": 22} for name in ("ours", "modsecurity_off", "debian_default")}}
    block = edgedocs.render_bench(result)
    assert "**2.1×**" in block and "commit `abc1234`" in block and block.index("| ours |") < block.index("| debian_default |")


def test_a_page_without_its_markers_is_refused():
    with pytest.raises(ValueError, match="put it back"):
        edgedocs.page_text("# Edge tier\n")
