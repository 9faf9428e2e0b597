"""Filter ``rempart_flow_targets``: every other host the flow matrix lets a host reach with a TCP service, once per
service and port (rempart.topology.tcp_flow_targets), for the probes of each flow's path across the mesh::

    "{{ rempart_topology | rempart_flow_targets(inventory_hostname) }}"
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from rempart import topology


def rempart_flow_targets(model, host):
    if not isinstance(model, dict) or "hosts" not in model:
        raise AnsibleFilterError("rempart_flow_targets: the topology (rempart_topology), not " + type(model).__name__)
    if host not in model["hosts"]:
        raise AnsibleFilterError(f"rempart_flow_targets: {host!r} is no host of the topology")
    return topology.tcp_flow_targets(model, host)


class FilterModule:
    def filters(self):
        return {"rempart_flow_targets": rempart_flow_targets}
