"""The data tier's drills (HA): break the lab on purpose under a steady stream of writes, then check
what must hold whatever the timings: no acknowledged commit lost, writes back, never two primaries,
every machine back in its place. The timings themselves are figures, recorded by `make drill`
(docs/results/drills.json, rendered on the data tier's page), never asserted here.
"""

from __future__ import annotations

import json

import pytest

from rempart import drill

pytestmark = pytest.mark.HA


def show(name: str, result: dict) -> dict:
    print(f"{name}: {json.dumps(result)}")
    return result


def test_losing_the_primary_loses_no_acknowledged_commit_and_it_comes_back_as_the_standby():
    result = show("failover", drill.drill_failover())
    assert result["acknowledged_rows_lost"] == 0
    assert result["primary_after"] != result["primary_before"]
    assert result["first_write_on_new_primary_s"] is not None, "no write was acknowledged by the new primary"
    assert result["old_primary_role_after"] == "sync_standby"


def test_a_planned_switchover_under_load_fails_no_write():
    result = show("switchover", drill.drill_switchover())
    assert result["acknowledged_rows_lost"] == 0
    assert result["rows_pending_at_stop"] == 0, "a write the client kept retrying was never acknowledged"
    assert result["primary_after"] != result["primary_before"]
    assert result["healthy_after"]


def test_losing_the_standby_keeps_writes_going_on_the_same_primary():
    result = show("standby", drill.drill_standby())
    assert not result["primary_restarted"], "the primary stepped down (its PostgreSQL restarted) when the standby was lost"
    assert result["primary_unchanged"]
    assert result["acknowledged_rows_lost"] == 0
    assert result["rows_acknowledged_after_event"] > 0, "no write was acknowledged after the standby was lost"


def test_cutting_two_sites_apart_never_gives_two_primaries():
    result = show("partition", drill.drill_partition())
    assert result["most_primaries_at_once"] == 1
    assert result["acknowledged_rows_lost"] == 0
    assert result["rows_acknowledged_after_event"] > 0, "the primary's side stopped writing for the whole cut"
