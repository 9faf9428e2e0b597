"""Filter ``rempart_collector``: the systemd units that run a role's textfile collector every minute
(rempart/collectors.py says why and how)::

    __wireguard_collector: >-
      {{ 'wireguard' | rempart_collector(description="WireGuard peers' handshakes", role='wireguard',
                                         after=['wg-quick@wg0.service']) }}

gives ``{"script": "/usr/local/sbin/rempart-wireguard-metrics", "service": "rempart-wireguard-metrics.service",
"timer": "rempart-wireguard-metrics.timer", "files": [...]}`` (the units, entries for the ``rempart_files``
module; ``state="absent"`` removes them). ``args``: the script's arguments.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from rempart import collectors


def rempart_collector(name, description, args=(), after=(), state="present", role=""):
    try:
        return collectors.collector(name, description, args if isinstance(args, str) else list(args), list(after), state, role)
    except collectors.CollectorError as error:
        raise AnsibleFilterError(f"rempart_collector: {error}") from None


class FilterModule:
    def filters(self):
        return {"rempart_collector": rempart_collector}
