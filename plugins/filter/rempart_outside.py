"""Filter ``rempart_outside_probers``: the outside probers of the topology (machines off the platform that ask
the public entry points as a citizen does: the ends of declared paths out carrying the blackbox exporter's
service, rempart.topology.outside_probers), all of them or those a host may read::

    "{{ rempart_topology | rempart_outside_probers(inventory_hostname) }}"
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from rempart import topology


def rempart_outside_probers(model, host=None):
    if not isinstance(model, dict) or "hosts" not in model:
        raise AnsibleFilterError("rempart_outside_probers: the topology (rempart_topology), not " + type(model).__name__)
    if host is not None and host not in model["hosts"]:
        raise AnsibleFilterError(f"rempart_outside_probers: {host!r} is no host of the topology")
    return topology.outside_probers(model, host)


class FilterModule:
    def filters(self):
        return {"rempart_outside_probers": rempart_outside_probers}
