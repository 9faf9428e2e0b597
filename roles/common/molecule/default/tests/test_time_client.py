"""The time client follows the host declared as its server (group time_clients of the scenario)."""

from __future__ import annotations

import os

import testinfra.utils.ansible_runner
from test_common import SYNC_TIMEOUT_S

from rempart import scenario

testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(
    os.environ["MOLECULE_INVENTORY_FILE"]
).get_hosts("time_clients")


def test_time_client_is_synced_to_the_configured_server(host):
    def observed():
        return host.run("chronyc -n tracking").stdout + host.run("chronyc sources").stdout

    def synced(out: str) -> bool:
        return "Leap status     : Normal" in out and "^*" in out

    last = scenario.eventually(observed, synced, SYNC_TIMEOUT_S, interval=2)
    assert synced(last), last
    assert "common-time" in host.run("chronyc sources").stdout, last
