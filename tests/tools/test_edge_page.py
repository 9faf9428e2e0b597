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


LIVE = """pid /run/nginx.pid;
error_log /var/log/nginx/error.log warn;
http {
	access_log /var/log/nginx/access.log rempart buffer=64k flush=1s;
	geo $rempart_limited {
		default 1;
	}
	modsecurity on;
	modsecurity_rules_file /etc/nginx/rempart/modsecurity.conf;
	upstream app {
		server 10.232.0.21:8443 max_fails=1 fail_timeout=5s;
		server 10.232.0.22:8443 max_fails=1 fail_timeout=5s;
		keepalive 32;
	}

	# Port 80 only redirects to HTTPS.
	server {
		listen 80 default_server;
		location / {
			return 301 https://x$request_uri;
		}
	}

	server {
		listen 443 ssl http2 default_server;
		location / {
			proxy_pass https://app;
		}
	}
}
"""


def test_the_benchmark_runs_the_roles_configuration_on_the_loopback_before_the_same_backend():
    from rempart import bench

    ours = bench.ours_conf(LIVE, "ours", 18441, modsecurity=True)
    assert "listen 127.0.0.1:18441 ssl http2 default_server;" in ours and "listen 80" not in ours
    assert f"server 127.0.0.1:{bench.BACKEND_PORT};" in ours and "10.232.0.21" not in ours
    assert "proxy_pass http://app;" in ours and "\t\t127.0.0.1 0;" in ours and "modsecurity on;" in ours
    assert "modsecurity off;" in bench.ours_conf(LIVE, "off", 18442, modsecurity=False)
    with pytest.raises(bench.BenchError, match="update rempart/bench.py"):
        bench.ours_conf(LIVE.replace("listen 443 ssl http2 default_server;", "listen 443 ssl;"), "ours", 18441, True)
