"""The VRRP peers of a host: the other hosts of its function, by overlay address, and those the flow
matrix does not let advertise to it."""

from __future__ import annotations

from rempart.topology import clients, members


def keepalived_peers(topology: dict, function: str, host: str) -> list[str]:
    return [topology["hosts"][other]["overlay"] for other in members(topology, function) if other != host]


def keepalived_unreached(topology: dict, function: str, host: str, service: str = "vrrp") -> list[str]:
    """The other hosts of the pair whose advertisements the flow matrix does not let reach ``host``."""
    allowed = set(clients(topology, host, service))
    return [other for other in members(topology, function) if other != host and other not in allowed]


class FilterModule:
    def filters(self):
        return {"keepalived_peers": keepalived_peers, "keepalived_unreached": keepalived_unreached}
