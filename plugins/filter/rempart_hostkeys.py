"""Filter ``rempart_host_key_problems``: what is wrong with the hosts' SSH keys the operators trust
(``rempart_ssh_host_keys``; rempart.hostkeys.problems), an empty list when nothing is::

    "{{ rempart_ssh_host_keys | rempart_host_key_problems(names, 'inventories/dev/group_vars/all/host_keys.yml') }}"
"""

from __future__ import annotations

from rempart import hostkeys


def rempart_host_key_problems(keys, names, where):
    return hostkeys.problems(keys, [str(name) for name in names], str(where))


class FilterModule:
    def filters(self):
        return {"rempart_host_key_problems": rempart_host_key_problems}
