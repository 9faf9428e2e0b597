"""The central logs' collector of role rsyslog (MON, AUDIT; category links), run here on counters as rsyslog
8.2302's impstats writes them (``<date>: {json}`` per line): the latest record of each queue to a collector, in
memory and on disk, what it dropped, nothing of the other queues; a file with nothing new says so and is
never left to grow; what it writes is valid text exposition (promtool)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rempart.engine import PROMTOOL

pytestmark = [pytest.mark.MON, pytest.mark.AUDIT]

SCRIPT = Path(__file__).resolve().parents[2] / "roles/rsyslog/files/rempart-rsyslog-metrics"


def record(name: str, origin: str = "core.queue", **counters) -> str:
    fields = {"name": name, "origin": origin, "size": 0, "enqueued": 0, "full": 0, "discarded.full": 0, "discarded.nf": 0,
              "maxqsize": 0, **counters}
    return "Sat Dec  5 04:46:44 2026: " + json.dumps(fields)


def run(tmp_path: Path, stats: Path) -> dict[str, float]:
    out = tmp_path / "textfile" / "rempart_rsyslog.prom"
    subprocess.run([sys.executable, str(SCRIPT), str(out), str(stats)], check=True, capture_output=True, text=True)
    text = out.read_text(encoding="utf-8")
    lint = subprocess.run([str(PROMTOOL), "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert "error" not in (lint.stdout + lint.stderr).lower(), lint.stdout + lint.stderr
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line and not line.startswith("#")}


def test_the_latest_counters_of_each_queue_to_a_collector_then_the_file_is_emptied(tmp_path):
    stats = tmp_path / "stats.json"
    stats.write_text("\n".join([
        record("rempart-to-mon1 queue", size=12),
        record("rempart-to-mon1", origin="core.action", processed=50),
        record("main Q", size=400),
        "not a record",
        "Sat Dec  5 04:46:45 2026: {broken",
        record("rempart-to-mon1 queue", size=50, **{"discarded.full": 2, "discarded.nf": 1}),
        record("rempart-to-mon1 queue[DA]", size=7),
    ]) + "\n")
    found = run(tmp_path, stats)
    assert found == {
        "rempart_rsyslog_stats_fresh": 1,
        'rempart_rsyslog_queue_size{collector="mon1",part="memory"}': 50,
        'rempart_rsyslog_queue_size{collector="mon1",part="disk"}': 7,
        'rempart_rsyslog_queue_discarded_total{collector="mon1",part="memory"}': 3,
        'rempart_rsyslog_queue_discarded_total{collector="mon1",part="disk"}': 0,
    }
    assert stats.read_text() == ""
    assert run(tmp_path, stats) == {"rempart_rsyslog_stats_fresh": 0}  # rsyslog wrote nothing since


def test_no_counters_file_is_said_as_not_fresh(tmp_path):
    assert run(tmp_path, tmp_path / "missing.json") == {"rempart_rsyslog_stats_fresh": 0}
