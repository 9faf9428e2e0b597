"""Inventory plugin: an environment's ``topology.yml`` becomes Ansible groups and host variables."""

from __future__ import annotations

import sys
from pathlib import Path

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin

DOCUMENTATION = r"""
name: rempart_topology
short_description: Rempart's topology file as an inventory
description:
  - Reads C(inventories/<env>/topology.yml) (sites, zones, hosts, flow matrix), validates it against
    itself and the other environments, and fails before any host is touched when it is wrong.
  - "Groups: one per zone (C(edge), C(app), C(data), C(mgmt)), one per function (C(waf), C(db), ...),
    one per site (C(site_<name>)), one for the environment (C(env_<name>)). Host variables: C(rempart_site), C(rempart_zone),
    C(rempart_functions), C(rempart_underlay_address), C(rempart_overlay_address),
    C(rempart_public_address), C(ansible_host) (the public address of a bastion, the overlay address of
    every other host). Every host also gets C(rempart_environment) and
    C(rempart_topology), the whole validated model."
options:
  plugin:
    description: Token that marks the file as a topology.
    required: true
    choices: [rempart_topology]
"""

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from rempart import topology as model  # noqa: E402


class InventoryModule(BaseInventoryPlugin):
    NAME = "rempart_topology"

    def verify_file(self, path):
        return super().verify_file(path) and Path(path).name == model.TOPOLOGY_FILE

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        try:
            topology = model.check(Path(path))
        except model.TopologyError as exc:
            raise AnsibleParserError(str(exc)) from None

        environment = topology["environment"]
        self.inventory.set_variable("all", "rempart_environment", environment)
        self.inventory.set_variable("all", "rempart_topology", topology)
        for name in model.ZONES:
            self.inventory.add_group(name)
        for name in model.FUNCTIONS:
            self.inventory.add_group(name)
        for site in topology["sites"]:
            self.inventory.add_group(f"site_{site}")
        # Groups add up across inventories where variables overwrite each other: env_<name> tells
        # a run that was given two environments' inventories at once.
        env_group = self.inventory.add_group(f"env_{environment}")

        for host, spec in topology["hosts"].items():
            self.inventory.add_host(host, group=env_group)
            self.inventory.add_host(host, group=spec["zone"])
            self.inventory.add_host(host, group=f"site_{spec['site']}")
            functions = list(spec.get("functions") or [])
            for function in functions:
                self.inventory.add_host(host, group=function)
            variables = {
                # Per host too: two inventories given at once cannot hide each other's environment.
                "rempart_environment": environment,
                "rempart_site": spec["site"],
                "rempart_zone": spec["zone"],
                "rempart_functions": functions,
                "rempart_underlay_address": str(spec["underlay"]),
                "rempart_overlay_address": str(spec["overlay"]),
                "rempart_public_address": str(spec["public"]) if spec.get("public") else None,
                # Operators reach the bastion on its public address and every other host through it,
                # on the private network (the generated ssh_config carries the ProxyJump).
                # The bastion is reached on its public address; every other host through it, on the
                # overlay (playbooks/connect.yml falls back to the underlay until the mesh exists).
                "ansible_host": str(spec["public"]) if "bastion" in functions else str(spec["overlay"]),
            }
            for key, value in variables.items():
                self.inventory.set_variable(host, key, value)
