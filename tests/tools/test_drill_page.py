"""The drills' figures on the data tier's page: rendered from docs/results/drills.json, medians when
a drill ran several times, and a page that lost its block is an error that says where (HA, DOC)."""

from __future__ import annotations

import pytest

from rempart import drill

pytestmark = [pytest.mark.HA, pytest.mark.DOC]

RUN = {"write_outage_s": 11.5, "acknowledged_rows_lost": 0, "rows_pending_at_stop": 0, "primary_before": "db1"}


def test_no_result_yet_says_how_to_get_one():
    text = drill.render({})
    assert text.startswith(drill.BEGIN) and text.endswith(drill.END)
    assert "`make drill`" in text


def test_a_drill_run_three_times_shows_each_run_and_the_median():
    runs = [{**RUN, "write_outage_s": value} for value in (11.5, 10.0, 12.0)]
    results = {"failover": {"measured_at": "2026-11-30 22:00 UTC", "commit": "abc1234", "runs": runs,
                            "medians": {"write_outage_s": 11.5, "acknowledged_rows_lost": 0, "rows_pending_at_stop": 0}}}
    text = drill.render(results)
    assert "3 run(s) on 2026-11-30 22:00 UTC, commit `abc1234`" in text
    assert f"| {drill.FIGURES['write_outage_s']} | 11.5 | 10.0 | 12.0 | 11.5 |" in text
    assert f"| {drill.FIGURES['acknowledged_rows_lost']} | 0 | 0 | 0 | 0 |" in text
    assert "primary_before" not in text


def test_only_the_block_of_the_page_changes():
    page = f"# Data tier\n\nbefore\n\n{drill.BEGIN}\nold figures\n{drill.END}\n\nafter\n"
    new = drill.page_text({}, page)
    assert new.startswith("# Data tier\n\nbefore\n\n") and new.endswith("\n\nafter\n")
    assert "old figures" not in new


def test_a_page_without_its_block_is_an_error_naming_the_page():
    with pytest.raises(drill.DrillError, match="docs/data.md has no drills block"):
        drill.page_text({}, "# Data tier\n")


def test_figures_of_a_stream_of_rows():
    since = 100.0
    rows = [
        {"n": 1, "tried": 98.0, "acked": 98.1, "tries": 1, "server": "10.232.0.31"},
        {"n": 2, "tried": 99.9, "acked": 109.0, "tries": 4, "server": "10.232.0.32"},
        {"n": 3, "tried": 109.1, "acked": 109.2, "tries": 1, "server": "10.232.0.32"},
        {"n": 4, "tried": 109.3, "acked": None, "tries": 1, "server": None},
    ]
    found = drill.figures(rows, since, "db2")
    assert found == {"rows_acknowledged": 3, "rows_pending_at_stop": 1, "rows_retried": 1,
                     "rows_acknowledged_after_event": 2, "write_outage_s": 9.0, "first_write_on_new_primary_s": 9.0}
