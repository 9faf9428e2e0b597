"""The patroni role's small decisions: who may connect (from the flow matrix), what the vault lacks
(named, never shown), and which cluster-wide settings differ from the running cluster's (HA, ENC)."""

from __future__ import annotations


import pytest

from rempart import topology as model
from rempart.roledocs import filter_plugin

patroni = filter_plugin("patroni")

pytestmark = pytest.mark.HA

LAB = model.check(model.INVENTORIES / "lab" / model.TOPOLOGY_FILE)


def test_postgresql_clients_are_the_flow_matrix_s_sources_without_the_server_itself():
    assert patroni.patroni_clients(LAB, "db1", "postgresql") == ["app1", "app2", "db2"]
    assert patroni.patroni_clients(LAB, "db2", "patroni-api") == ["db1", "mon1"]


def test_a_service_no_flow_carries_to_the_host_has_no_client():
    assert patroni.patroni_clients(LAB, "app1", "postgresql") == []


@pytest.mark.ENC
def test_secret_problems_name_the_variable_and_the_vault_key_never_the_value():
    named = [
        {"key": "a", "vault": "vault_a", "value": ""},
        {"key": "b", "vault": "vault_b", "value": "short-secret"},
        {"key": "c", "vault": "vault_c", "value": "it's-long-enough-but-quoted"},
        {"key": "d", "vault": "vault_d", "value": "x" * 32},
        patroni.patroni_database_secret("eservice", {"other": "x" * 20}),
    ]
    problems = patroni.patroni_secret_problems(named)
    assert problems == [
        "a (by default the vault's vault_a) is missing",
        "b (by default the vault's vault_b) is shorter than 16 characters",
        "c (by default the vault's vault_c) holds a quote, a backslash or a line break",
        "patroni_database_passwords.eservice (by default the vault's vault_postgresql_eservice_password) is missing",
    ]
    assert not any("short-secret" in p or "quoted" in p for p in problems)


def test_the_patch_holds_only_what_the_running_configuration_lacks():
    wanted = {"ttl": 10, "synchronous_mode": True, "postgresql": {"use_slots": True, "parameters": {"max_connections": 200, "wal_level": "replica"}}}
    current = {"ttl": 30, "loop_wait": 10, "synchronous_mode": True,
               "postgresql": {"use_slots": True, "parameters": {"max_connections": "200", "wal_level": "replica"}}}
    assert patroni.patroni_config_patch(wanted, current) == {"ttl": 10}
    assert patroni.patroni_config_patch(wanted, {**current, "ttl": 10}) == {}


def test_everything_is_patched_when_the_running_configuration_is_unknown():
    wanted = {"ttl": 10, "postgresql": {"parameters": {"wal_level": "replica"}}}
    assert patroni.patroni_config_patch(wanted, None) == wanted


def test_a_parameter_no_longer_declared_is_removed_and_other_keys_are_left_alone():
    wanted = {"ttl": 10, "postgresql": {"parameters": {"wal_level": "replica"}}}
    current = {"ttl": 10, "slots": {"x": {}}, "postgresql": {"use_slots": True, "parameters": {"wal_level": "replica", "work_mem": "8MB"}}}
    assert patroni.patroni_config_patch(wanted, current) == {"postgresql": {"parameters": {"work_mem": None}}}


def test_a_switched_off_boolean_is_seen_as_a_difference():
    assert patroni.patroni_config_patch({"synchronous_mode_strict": True}, {"synchronous_mode_strict": False}) == {"synchronous_mode_strict": True}


def test_the_primary_is_the_member_its_probe_saw_primary():
    hostvars = {"db1": {"__patroni_host": {"state": {"role": "replica"}}},
                "db2": {"__patroni_host": {"state": {"role": "master"}}}}
    assert patroni.patroni_primary_of(["db1", "db2"], hostvars) == "db2"
    assert patroni.patroni_primary_of(["db1"], {"db1": {"__patroni_host": {"state": None}}}) == ""
