"""The VRRP peers of a host: the other hosts of its function, by overlay address."""

from __future__ import annotations

from rempart.topology import members


def keepalived_peers(topology: dict, function: str, host: str) -> list[str]:
    return [topology["hosts"][other]["overlay"] for other in members(topology, function) if other != host]


class FilterModule:
    def filters(self):
        return {"keepalived_peers": keepalived_peers}
