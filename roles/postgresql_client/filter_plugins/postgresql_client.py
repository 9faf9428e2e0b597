"""Filter of the postgresql_client role: a shim over ``rempart.topology.clients`` (tested there)."""

from __future__ import annotations

from rempart.topology import clients


def postgresql_client_of(topology, servers, service):
    """Hosts the flow matrix lets reach any of ``servers`` with ``service``."""
    return sorted({host for server in servers for host in clients(topology, server, service)})


class FilterModule:
    def filters(self):
        return {"postgresql_client_of": postgresql_client_of}
