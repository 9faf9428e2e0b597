"""Filter ``rempart_entry_name``: the name a citizen asks a public entry point (an item of the topology's
``floating``) for, its first DNS name, else its address (rempart.topology.entry_name, the one rule)::

    "{{ rempart_topology.floating.waf | rempart_entry_name }}"
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from rempart import topology


def rempart_entry_name(entry):
    if not isinstance(entry, dict) or "public" not in entry:
        raise AnsibleFilterError(f"rempart_entry_name: an entry point of the topology's floating (with public), not {entry!r}")
    return topology.entry_name(entry)


class FilterModule:
    def filters(self):
        return {"rempart_entry_name": rempart_entry_name}
