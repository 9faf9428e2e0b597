"""What a molecule scenario's testinfra tests share: its hosts and topology.

    from rempart import scenario
    testinfra_hosts, TOPOLOGY = scenario.load(__file__)

The topology is the scenario's own (``rempart_topology`` in its molecule.yml), the only place its
addresses are written; ``node(name)`` is a testinfra host of the scenario, reached as Ansible does.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import testinfra
import testinfra.utils.ansible_runner
import yaml

REPO = Path(__file__).resolve().parent.parent


def load(test_file: str) -> tuple[list[str], dict]:
    """The scenario's hosts and its topology, for a test module of the scenario."""
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    hosts = testinfra.utils.ansible_runner.AnsibleRunner(inventory).get_hosts("all")
    molecule_yml = Path(test_file).resolve().parents[1] / "molecule.yml"
    config = yaml.safe_load(molecule_yml.read_text(encoding="utf-8"))
    return hosts, config["provisioner"]["inventory"]["group_vars"]["all"]["rempart_topology"]


def node(name: str, sudo: bool = False):
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={os.environ['MOLECULE_INVENTORY_FILE']}", sudo=sudo)


def eventually(ask, ready, seconds: float, interval: float = 1.0):
    """``ask()`` again until ``ready(answer)`` holds or ``seconds`` have passed; returns the last answer,
    for the test to assert on (its failure then shows what was last seen)."""
    deadline = time.monotonic() + seconds
    while True:
        answer = ask()
        if ready(answer) or time.monotonic() > deadline:
            return answer
        time.sleep(interval)
