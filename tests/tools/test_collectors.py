"""The one way a role's textfile collector is run (rempart/collectors.py, filter rempart_collector)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rempart import collectors

pytestmark = pytest.mark.MON
REPO = Path(__file__).resolve().parents[2]


def test_a_collector_is_a_script_a_oneshot_service_and_a_timer_every_minute_named_after_it():
    made = collectors.collector("rights", "Who holds rights", args=["/var/lib/x/rempart_rights.prom", "--bastion=10.0.0.5"],
                                after=["network-online.target"], role="node_exporter")
    assert (made["script"], made["service"], made["timer"]) == (
        "/usr/local/sbin/rempart-rights-metrics", "rempart-rights-metrics.service", "rempart-rights-metrics.timer")
    service, timer = made["files"]
    assert service["path"] == "/etc/systemd/system/rempart-rights-metrics.service" and service["state"] == "present"
    assert "Type=oneshot\n" in service["content"] and "After=network-online.target\n" in service["content"]
    assert "ExecStart=/usr/local/sbin/rempart-rights-metrics /var/lib/x/rempart_rights.prom --bastion=10.0.0.5\n" in service["content"]
    assert "OnUnitActiveSec=60s\n" in timer["content"] and "WantedBy=timers.target" in timer["content"]
    assert "(role node_exporter)" in timer["content"]


def test_arguments_reach_the_script_as_written_whatever_they_hold():
    """Spaces, quotes, backslashes and systemd's own specifiers (%h) and variables ($HOME) are taken literally:
    a word that holds any is one double-quoted word with C escapes (systemd's quotes wrap whole words only)."""
    service = collectors.collector("x", "d", args=["a b", "it's", 'say "hi"\\', "100%h", "$HOME", "--plain=/a/b:1"])["files"][0]["content"]
    line = next(text for text in service.splitlines() if text.startswith("ExecStart="))
    assert line == ('ExecStart=/usr/local/sbin/rempart-x-metrics "a b" "it\'s" "say \\"hi\\"\\\\" "100%%h" "$$HOME" --plain=/a/b:1')


def test_absent_removes_both_units():
    assert [entry["state"] for entry in collectors.collector("x", "d", state="absent")["files"]] == ["absent", "absent"]


@pytest.mark.parametrize("name, args, state", [("X y", [], "present"), ("x", "a b", "present"), ("x", [""], "present"), ("x", [], "gone")])
def test_a_wrong_description_is_refused_in_one_line(name, args, state):
    with pytest.raises(collectors.CollectorError) as refused:
        collectors.collector(name, "d", args=args, state=state)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("role, key", [("wireguard", "__wireguard_metrics_collector"), ("pgbackrest", "__pgbackrest_metrics_collector"),
                                       ("node_exporter", "__node_exporter_rights_collector"), ("pki", "__pki_metrics_collector")])
def test_every_role_s_collector_goes_through_the_filter(role, key):
    """No role writes a collector's units of its own: its vars name the collector and ask the filter."""
    text = (REPO / "roles" / role / "vars/main.yml").read_text(encoding="utf-8")
    name = yaml.safe_load(text)[key]
    collectors.names(name)
    assert f"{key} | rempart_collector(" in text
    assert not [path for path in (REPO / "roles" / role).rglob("*") if "metrics.timer" in path.name or "metrics.service" in path.name]
