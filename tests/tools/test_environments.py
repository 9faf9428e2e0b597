"""A run touches only the environment it was asked for (ENV); these runs stop before any host."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.ENV
REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def validate(*args: str, playbook: str = "playbooks/validate.yml") -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "ansible-playbook"), *args, playbook],
        capture_output=True, text=True, check=False, cwd=REPO,
        env={"PATH": f"{BIN}:/usr/bin:/bin", "HOME": "/tmp", "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
             "ANSIBLE_NOCOLOR": "1"},
    )


def test_run_without_a_target_is_refused():
    result = validate("-i", "inventories/dev")
    assert result.returncode != 0
    assert "add -e rempart_target=dev" in " ".join(result.stdout.split())


def test_run_for_another_environment_is_refused():
    result = validate("-i", "inventories/dev", "-e", "rempart_target=test")
    assert result.returncode != 0
    assert "rempart_target=test but the inventory is the dev environment" in " ".join(result.stdout.split())


def test_two_environments_at_once_are_refused():
    result = validate("-i", "inventories/dev", "-i", "inventories/test", "-e", "rempart_target=dev")
    assert result.returncode != 0
    assert "hold hosts of several environments (dev, test)" in " ".join(result.stdout.split())


def test_production_needs_the_confirmation():
    refused = validate("-i", "inventories/prod", "-e", "rempart_target=prod")
    assert refused.returncode != 0
    assert "Add -e rempart_confirm_prod=yes" in " ".join(refused.stdout.split())


def test_a_dry_run_of_production_needs_the_confirmation_too():
    refused = validate("-i", "inventories/prod", "-e", "rempart_target=prod", "--check", playbook="playbooks/site.yml")
    assert refused.returncode != 0
    assert "Add -e rempart_confirm_prod=yes" in " ".join(refused.stdout.split())


def test_the_right_environment_passes_validation():
    for args in (["-i", "inventories/dev", "-e", "rempart_target=dev"],
                 ["-i", "inventories/prod", "-e", "rempart_target=prod", "-e", "rempart_confirm_prod=yes"]):
        result = validate(*args)
        assert result.returncode == 0, result.stdout + result.stderr


# Every playbook that can be run alone (each tier, bootstrap, rotation) validates before anything else.
ALONE = ["playbooks/site.yml", "playbooks/base.yml", "playbooks/network.yml", "playbooks/bootstrap.yml",
         "playbooks/rotate-wireguard-keys.yml", "playbooks/pki.yml",
         "playbooks/data.yml", "playbooks/switchover.yml", "playbooks/unlock.yml", "playbooks/restore-drill.yml",
         "playbooks/app.yml", "playbooks/rotate-app-key.yml", "playbooks/edge.yml", "playbooks/monitoring.yml"]


@pytest.mark.parametrize("playbook", ALONE)
def test_every_playbook_run_alone_refuses_a_missing_target(playbook):
    result = validate("-i", "inventories/dev", playbook=playbook)
    assert result.returncode != 0
    assert "add -e rempart_target=dev" in " ".join(result.stdout.split())


@pytest.mark.parametrize("playbook", ALONE)
def test_every_playbook_run_alone_refuses_prod_without_confirmation(playbook):
    result = validate("-i", "inventories/prod", "-e", "rempart_target=prod", playbook=playbook)
    assert result.returncode != 0
    assert "Add -e rempart_confirm_prod=yes" in " ".join(result.stdout.split())


def test_the_playbooks_are_all_covered():
    """A new playbook in playbooks/ (not a helper imported by others) is added to ALONE."""
    helpers = {"playbooks/validate.yml", "playbooks/connect.yml"}
    found = {str(p.relative_to(REPO)) for p in (REPO / "playbooks").glob("*.yml")}
    assert found - helpers == set(ALONE)


@pytest.mark.parametrize("playbook", ["playbooks/site.yml", "playbooks/monitoring.yml"])
def test_no_play_for_every_host_comes_after_the_outside_probers_join_the_run(playbook):
    """playbooks/monitoring.yml adds the outside probers (machines off the platform) to its run: a later play for
    all hosts would treat them as platform hosts (harden them, mesh them, firewall them)."""
    from rempart import labimage  # noqa: PLC0415 - reads the plays as the lab's images do

    plays = labimage._plays(REPO / playbook)  # noqa: SLF001
    joined = [index for index, play in enumerate(plays)
              if any("ansible.builtin.add_host" in task for task in play.get("tasks") or [])]
    assert len(joined) == 1
    assert [play["name"] for play in plays[joined[0] + 1:] if play.get("hosts") not in ("outside_probers", "localhost")] == []


# The data tier's secrets, as a vault would give them (throwaway values: the dev hosts are never reached).
DATA_PASSWORDS = {name: "x" * 24 for name in ("vault_postgresql_superuser_password", "vault_postgresql_replication_password",
                                              "vault_postgresql_rewind_password", "vault_patroni_restapi_password",
                                              "vault_postgresql_eservice_password")}


@pytest.mark.parametrize(("case", "given", "named"), [
    ("no vault at all", {}, "vault_postgresql_superuser_password"),
    ("the passwords but no backup passphrase", DATA_PASSWORDS, "vault_pgbackrest_cipher_pass"),
    ("a backup passphrase too short", {**DATA_PASSWORDS, "vault_pgbackrest_cipher_pass": "short"}, "vault_pgbackrest_cipher_pass"),
])
def test_the_data_tier_without_its_secrets_stops_before_any_host(case, given, named):
    stops_before_any_host("playbooks/data.yml", case, given, named)


def stops_before_any_host(playbook: str, case: str, given: dict, named: str) -> None:
    """The dev hosts do not exist here: a run that reached one would say UNREACHABLE. The run names
    the variable to fix and prints none of the secrets it was given."""
    result = validate("-i", "inventories/dev", "-e", "rempart_target=dev", "-e", json.dumps(given), playbook=playbook)
    text = " ".join(result.stdout.split())
    assert result.returncode != 0, case
    assert named in text, f"{case}: {text[-1500:]}"
    assert "UNREACHABLE" not in text, f"{case}: a host was contacted"
    # (a secret of a few letters, given to be refused as too short, may be a word of the message)
    secrets = [v for k, v in given.items() if k.startswith("vault_") and len(v) >= 12]
    assert not [s for s in secrets if s in text], f"{case}: a secret was printed"


APP_KEY = "A" * 43 + "="


@pytest.mark.MON
@pytest.mark.parametrize(("case", "given", "named"), [
    ("no Prometheus password", {}, "vault_prometheus_web_password"),
    ("a Prometheus password too short", {"vault_prometheus_web_password": "short"}, "vault_prometheus_web_password"),
    ("a scraped service that no flow carries from the monitoring host",
     {"vault_prometheus_web_password": "x" * 24, "prometheus_scrape_services": ["node-exporter", "postgresql"]},
     "no flow carries postgresql"),
    ("a probed service that no flow carries from the monitoring host",
     {"vault_prometheus_web_password": "x" * 24, "vault_alertmanager_web_password": "y" * 24,
      "prometheus_probe_services": {"app": "/readyz", "postgresql": "/"}},
     "no flow carries postgresql"),
    ("a probe's path that would end its quoting", {"vault_prometheus_web_password": "x" * 24, "prometheus_probe_services": {"app": '/x" y'}},
     "prometheus_probe_services"),
    ("an entry point probed for a function without a floating address",
     {"vault_prometheus_web_password": "x" * 24, "vault_alertmanager_web_password": "y" * 24,
      "alertmanager_receivers": [{"name": "operators"}], "prometheus_entry_probes": {"app": "/readyz"}},
     "prometheus_entry_probes"),
    ("an entry point's path that would end its quoting",
     {"vault_prometheus_web_password": "x" * 24, "vault_alertmanager_web_password": "y" * 24,
      "alertmanager_receivers": [{"name": "operators"}], "prometheus_entry_probes": {"waf": '/x" y'}},
     "prometheus_entry_probes"),
    ("a probe timeout that is not a duration",
     {"vault_prometheus_web_password": "x" * 24, "vault_alertmanager_web_password": "y" * 24,
      "alertmanager_receivers": [{"name": "operators"}], "blackbox_exporter_timeout": "5 minutes"},
     "blackbox_exporter_timeout"),
    ("an Alertmanager password too short", {"vault_prometheus_web_password": "x" * 24, "vault_alertmanager_web_password": "short"},
     "vault_alertmanager_web_password"),
    ("no receiver", {"vault_prometheus_web_password": "x" * 24, "vault_alertmanager_web_password": "y" * 24}, "alertmanager_receivers"),
    ("a severity routed to a receiver that does not exist",
     {"vault_prometheus_web_password": "x" * 24, "vault_alertmanager_web_password": "y" * 24,
      "alertmanager_receivers": [{"name": "operators"}], "alertmanager_severity_receivers": {"critical": "on-call"}},
     "alertmanager_severity_receivers"),
])
def test_the_monitoring_tier_without_its_secrets_receivers_or_flows_stops_before_any_host(case, given, named):
    stops_before_any_host("playbooks/monitoring.yml", case, given, named)


@pytest.mark.AUDIT
@pytest.mark.parametrize(("case", "given", "named"), [
    ("no log collector", {"rsyslog_collector_hosts": []}, "function log_collector"),
    ("a collector that is not a host's name", {"rsyslog_collector_hosts": ['mon1" target="elsewhere']}, "rsyslog_collector_hosts"),
    ("a queue size that is not one", {"rsyslog_queue_max_disk": "lots"}, "rsyslog_queue_max_disk"),
    ("a sender that is not a host of the inventory", {"rsyslog_sender_hosts": ["mon1", "mon9"]}, "rsyslog_sender_hosts"),
])
def test_the_central_logs_with_a_wrong_input_stop_before_any_host(case, given, named):
    stops_before_any_host("playbooks/monitoring.yml", case, given, named)


@pytest.mark.parametrize(("case", "given", "named"), [
    ("no key-encryption key", {"vault_postgresql_eservice_password": "x" * 24}, "vault_eservice_kek"),
    ("a key that is not 32 bytes in base64", {"vault_postgresql_eservice_password": "x" * 24, "vault_eservice_kek": "x" * 24},
     "vault_eservice_kek"),
    ("no database password", {"vault_eservice_kek": APP_KEY}, "vault_postgresql_eservice_password"),
    ("an agent without a password hash", {"vault_postgresql_eservice_password": "x" * 24, "vault_eservice_kek": APP_KEY,
                                          "app_eservice_agents": [{"login": "ada", "name": "Ada"}]}, "vault_eservice_agent_password_hashes"),
])
def test_the_app_tier_without_its_secrets_stops_before_any_host(case, given, named):
    stops_before_any_host("playbooks/app.yml", case, given, named)


@pytest.mark.WAF
@pytest.mark.parametrize(("case", "given", "named"), [
    ("an exclusion without its reason", {"waf_exclusions": [{"rule_ids": [942100], "targets": ["ARGS:q"]}]}, "waf_exclusions[0].reason"),
    ("an exclusion naming rules both ways", {"waf_exclusions": [{"rule_ids": [942100], "tags": ["attack-sqli"], "reason": "a b c d e"}]},
     "waf_exclusions[0]"),
    ("a paranoia level out of range", {"waf_paranoia_level": 7}, "waf_paranoia_level"),
    ("an exempt address that is not one", {"waf_rate_limit_exempt": ["10.0.0.1 0; } server { listen 8080"]}, "waf_rate_limit_exempt"),
    ("a header value that would end its directive", {"waf_headers": {"X-Frame-Options": 'DENY"; return 200 "x'}}, "waf_headers"),
    ("a rate limit in the wrong syntax", {"waf_rate_limits": [{"name": "requests", "rate": "20/s", "burst": 5}]}, "waf_rate_limits"),
])
def test_the_edge_tier_with_a_wrong_input_stops_before_any_host(case, given, named):
    stops_before_any_host("playbooks/edge.yml", case, given, named)
