"""Inventory plugin: an environment's ``topology.yml`` becomes Ansible groups and host variables.

A shim over ``rempart.topology`` (importable from the project's virtualenv, where ``make venv`` puts
the repository on the path): all reading and checking happens there.
"""

from __future__ import annotations

from pathlib import Path

from ansible.errors import AnsibleError
from ansible.plugins.inventory import BaseInventoryPlugin
from ansible.template import trust_as_template

from rempart import topology as model

DOCUMENTATION = r"""
name: rempart_topology
short_description: Rempart's topology file as an inventory
description:
  - Reads C(inventories/<env>/topology.yml) (services, sites, zones, hosts, flow matrix) on top of the
    file it extends, validates it against the schema, the rules and the other environments, and fails
    before any host is touched when it is wrong, with the file, the line, the place and the fix.
  - "Groups: one per zone, one per function, one per site (C(site_<name>)) and one for the environment
    (C(env_<name>)); the prefixes are the topology's C(wiring). Host variables: C(rempart_site),
    C(rempart_zone), C(rempart_functions), C(rempart_underlay_address), C(rempart_overlay_address),
    C(rempart_public_address), C(ansible_host) (the public address of a bastion, the overlay address of
    every other host), C(ansible_port) (the C(ssh) service's port) and C(rempart_tcp_destinations) (the
    overlay C(address:port) of every TCP service the flows let the host reach). Every host also gets
    C(rempart_environment) and C(rempart_topology), the whole validated model."
  - "How Ansible connects: with the ssh_config that every run writes from the topology
    (C(playbooks/tasks/ssh-config.yml)) in C(rempart_operator_dir), the environment's directory on the machine
    that runs Ansible (C(.<env>/) beside C(ansible.cfg): C(.lab/), C(.dev/), ...), through C(ansible_ssh_common_args)."
options:
  plugin:
    description: Token that marks the file as a topology.
    required: true
    choices: [rempart_topology]
"""


class InventoryModule(BaseInventoryPlugin):
    NAME = "rempart_topology"

    def verify_file(self, path):
        return super().verify_file(path) and Path(path).name == model.TOPOLOGY_FILE

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        try:
            topology = model.check(Path(path))
        except model.TopologyError as exc:
            # Not an AnsibleParserError: that would let the next plugin try the file and bury this message.
            raise AnsibleError(str(exc)) from None

        wiring = topology["wiring"]
        environment = topology["environment"]
        self.inventory.set_variable("all", "rempart_environment", environment)
        self.inventory.set_variable("all", "rempart_topology", topology)
        # Where the operators' ssh_config and known_hosts of this environment live, and Ansible's way to use them.
        # Templates of this plugin's own making (an inventory source's strings are not templated otherwise).
        self.inventory.set_variable("all", "rempart_operator_dir",
                                    trust_as_template("{{ ansible_config_file | dirname }}/." + environment))
        self.inventory.set_variable("all", "ansible_ssh_common_args", trust_as_template("-F {{ rempart_operator_dir }}/ssh_config"))
        for name in (*topology["zones"], *topology["functions"]):
            self.inventory.add_group(name)
        for site in topology["sites"]:
            self.inventory.add_group(wiring["site_group_prefix"] + site)
        # Groups add up across inventories where variables overwrite each other: env_<name> tells
        # a run that was given two environments' inventories at once.
        self.inventory.add_group(wiring["environment_group_prefix"] + environment)
        ssh_port = model.port(topology, "ssh")

        for host, spec in topology["hosts"].items():
            for group in model.inventory_groups(topology, host):
                self.inventory.add_host(host, group=group)
            functions = list(spec["functions"])
            variables = {
                # Per host too: two inventories given at once cannot hide each other's environment.
                "rempart_environment": environment,
                "rempart_site": spec["site"],
                "rempart_zone": spec["zone"],
                "rempart_functions": functions,
                "rempart_underlay_address": str(spec["underlay"]),
                "rempart_overlay_address": str(spec["overlay"]),
                "rempart_public_address": str(spec["public"]) if spec.get("public") else None,
                # The bastion is reached on its public address; every other host through it, on the
                # overlay (playbooks/connect.yml falls back to the underlay until the mesh exists).
                "ansible_host": str(spec["public"]) if "bastion" in functions else str(spec["overlay"]),
                "ansible_port": ssh_port,
                # Where a relay on this host may forward to (the bastion's SSH tunnels): what the flows let it reach.
                "rempart_tcp_destinations": model.tcp_destinations(topology, host),
            }
            for key, value in variables.items():
                self.inventory.set_variable(host, key, value)
