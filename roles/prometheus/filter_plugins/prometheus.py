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


def prometheus_unreached(topology: dict, host: str, services: list) -> list[str]:
    """The known services among ``services`` that no flow lets ``host`` reach on any host."""
    return [name for name in services or [] if name in topology["services"] and not reached(topology, host, name)]


def prometheus_rule_file(name: str, directory: str, source: str) -> dict:
    """A rempart_files entry for one alert rule file of the role, checked by promtool before it goes live."""
    with open(f"{source}/{name}", encoding="utf-8") as handle:
        return {"path": f"{directory}/{name}", "content": handle.read(), "validate": "promtool check rules %s"}


class FilterModule:
    def filters(self):
        return {"prometheus_scrape_targets": prometheus_scrape_targets, "prometheus_unreached": prometheus_unreached,
                "prometheus_password_hash": prometheus_password_hash, "prometheus_rule_file": prometheus_rule_file}
