"""What the prometheus role derives: its scrape targets from the flow matrix, and the bcrypt hash of
its web password (rempart.webauth: kept while it still matches, so a second run changes nothing)."""

from __future__ import annotations

from rempart.topology import port, reached
from rempart.webauth import password_hash as prometheus_password_hash


def prometheus_scrape_targets(topology: dict, host: str, service: str) -> list[dict]:
    """Prometheus static_configs for ``service``: every host the flow matrix lets ``host`` reach with it,
    at its overlay address and the service's port, labelled with its name, site and zone."""
    number = port(topology, service)
    return [
        {"targets": [f"{topology['hosts'][target]['overlay']}:{number}"],
         "labels": {"instance": target, "site": topology["hosts"][target]["site"], "zone": topology["hosts"][target]["zone"]}}
        for target in reached(topology, host, service)
    ]


def prometheus_entry_targets(topology: dict, host: str, function: str, service: str) -> list[dict]:
    """The static_configs of the public entry point of ``function`` (the topology's ``floating``): the hosts of
    the function that the flow matrix lets ``host`` reach with ``service``, as prometheus_scrape_targets gives them."""
    return [target for target in prometheus_scrape_targets(topology, host, service)
            if function in topology["hosts"][target["labels"]["instance"]]["functions"]]


def prometheus_entries_unreached(topology: dict, host: str, functions, service: str) -> list[str]:
    """The functions among ``functions`` with a public entry point that ``host`` reaches through none of their hosts."""
    floating = topology.get("floating") or {}
    return [name for name in functions or [] if name in floating and not prometheus_entry_targets(topology, host, name, service)]


def prometheus_unreached(topology: dict, host: str, services: list) -> list[str]:
    """The known services among ``services`` that no flow lets ``host`` reach on any host."""
    return [name for name in services or [] if name in topology["services"] and not reached(topology, host, name)]


def prometheus_rule_file(name: str, directory: str, source: str) -> dict:
    """A rempart_files entry for one alert rule file of the role, checked by promtool before it goes live."""
    with open(f"{source}/{name}", encoding="utf-8") as handle:
        return {"path": f"{directory}/{name}", "content": handle.read(), "validate": "promtool check rules %s"}


class FilterModule:
    def filters(self):
        return {"prometheus_scrape_targets": prometheus_scrape_targets, "prometheus_entry_targets": prometheus_entry_targets,
                "prometheus_entries_unreached": prometheus_entries_unreached,
                "prometheus_unreached": prometheus_unreached,
                "prometheus_password_hash": prometheus_password_hash, "prometheus_rule_file": prometheus_rule_file}
