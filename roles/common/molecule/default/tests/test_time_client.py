"""The time client follows the host declared as its server (group time_clients of the scenario)."""

from __future__ import annotations

import os

import testinfra.utils.ansible_runner
from test_common import SYNC_TIMEOUT_S, wait_for

testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(
    os.environ["MOLECULE_INVENTORY_FILE"]
).get_hosts("time_clients")


def test_time_client_is_synced_to_the_configured_server(host):
    def synced():
        tracking = host.run("chronyc -n tracking")
        sources = host.run("chronyc sources")
        ok = "Leap status     : Normal" in tracking.stdout and "^*" in sources.stdout
        return ok, tracking.stdout + sources.stdout

    observed = wait_for(synced, SYNC_TIMEOUT_S)
    assert "common-time" in host.run("chronyc sources").stdout, observed
