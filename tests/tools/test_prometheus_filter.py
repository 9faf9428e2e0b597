"""The prometheus role's derivations: its scrape targets from the flow matrix (never a hand-kept
list), the services it is refused, and a password hash that a second run keeps (MON)."""

from __future__ import annotations


import bcrypt
import pytest

from rempart import topology as model
from rempart.roledocs import filter_plugin

prometheus = filter_plugin("prometheus")

pytestmark = pytest.mark.MON

LAB = model.check(model.INVENTORIES / "lab" / model.TOPOLOGY_FILE)


def test_node_exporter_targets_are_every_host_the_matrix_lets_the_monitoring_host_reach():
    targets = prometheus.prometheus_scrape_targets(LAB, "mon1", "node-exporter")
    port = model.port(LAB, "node-exporter")
    assert [t["labels"]["instance"] for t in targets] == sorted(LAB["hosts"])
    assert all(t["targets"] == [f"{LAB['hosts'][t['labels']['instance']]['overlay']}:{port}"] for t in targets)
    assert {t["labels"]["site"] for t in targets} == set(LAB["sites"])
    assert next(t for t in targets if t["labels"]["instance"] == "db1")["labels"]["zone"] == "data"


def test_targets_follow_the_matrix_not_the_service_name():
    """The Patroni API is scraped on the database servers only: the matrix's monitoring to db."""
    assert [t["labels"]["instance"] for t in prometheus.prometheus_scrape_targets(LAB, "mon1", "patroni-api")] == ["db1", "db2"]
    assert prometheus.prometheus_scrape_targets(LAB, "app1", "node-exporter") == []


def test_a_service_no_flow_carries_from_the_host_is_named():
    assert prometheus.prometheus_unreached(LAB, "mon1", ["node-exporter", "postgresql", "not-a-service"]) == ["postgresql"]
    assert prometheus.prometheus_unreached(LAB, "mon1", ["node-exporter"]) == []


def test_an_entry_point_is_asked_through_the_hosts_of_its_function_the_matrix_lets_the_host_reach():
    """The WAFs, at their overlay address and the https port: the matrix's monitoring to waf; not another host
    the same service reaches, and none from a host without that flow."""
    wafs = model.members(LAB, "waf")
    targets = prometheus.prometheus_entry_targets(LAB, "mon1", "waf", "https")
    assert [t["labels"]["instance"] for t in targets] == wafs
    assert all(t["targets"] == [f"{LAB['hosts'][t['labels']['instance']]['overlay']}:{model.port(LAB, 'https')}"] for t in targets)
    assert prometheus.prometheus_entry_targets(LAB, "mon1", "app", "https") == []
    assert prometheus.prometheus_entries_unreached(LAB, "mon1", ["waf"], "https") == []
    assert prometheus.prometheus_entries_unreached(LAB, "app1", ["waf", "not-floating"], "https") == ["waf"]


def test_the_hash_is_kept_while_the_password_matches_and_made_anew_otherwise():
    first = prometheus.prometheus_password_hash("a-long-enough-password")
    assert bcrypt.checkpw(b"a-long-enough-password", first.encode())
    assert prometheus.prometheus_password_hash("a-long-enough-password", first) == first
    changed = prometheus.prometheus_password_hash("another-long-password", first)
    assert changed != first and bcrypt.checkpw(b"another-long-password", changed.encode())
    assert bcrypt.checkpw(b"x" * 16, prometheus.prometheus_password_hash("x" * 16, "not a hash").encode())
