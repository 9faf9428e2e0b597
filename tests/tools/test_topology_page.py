"""The topology page shows the environments side by side: what differs between them once per
environment, what is the same once, every host once with its addresses in each (ENV, DOC)."""

from __future__ import annotations

import copy

import pytest

from rempart import topology
from rempart.topology.docs import render_page

pytestmark = [pytest.mark.ENV, pytest.mark.DOC]


@pytest.fixture(scope="module")
def environments():
    loaded = topology.load_all()
    return {env: loaded[env] for env in topology.ENVIRONMENTS if env in loaded}


@pytest.fixture(scope="module")
def reference():
    return topology.read(topology.INVENTORIES / "reference.yml").data


def test_differences_are_columns_and_what_is_shared_is_said_once(environments, reference):
    page = render_page(environments, reference)
    envs = list(environments)
    assert "| | " + " | ".join(f"`{env}`" for env in envs) + " |" in page
    vault_row = "| Vault id | " + " | ".join(f"`{environments[env]['identity']['vault_id']}`" for env in envs) + " |"
    assert vault_row in page
    assert "The same in every environment:" in page and "- Data may be hosted in: CH" in page
    assert page.count("| Host | Site | Zone | Functions |") == 1  # one hosts table, not one per environment


def test_a_host_placed_differently_in_one_environment_shows_each_placement(environments, reference):
    changed = copy.deepcopy(environments)
    last = list(changed)[-1]
    changed[last]["hosts"]["app1"]["zone"] = "data"
    page = render_page(changed, reference)
    hosts_table = page[page.index("| Host | Site | Zone | Functions |"):]
    row = next(line for line in hosts_table.splitlines() if line.startswith("| `app1` |"))
    assert f"{last}: data" in row and "application" in row
    for env, topo in environments.items():
        assert topo["hosts"]["app1"]["overlay"] in row
