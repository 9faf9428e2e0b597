"""Filter ``status_page_problems``: what is wrong with the status page's configuration, checked on the controller
before any host is touched by the generator's own checks (files/rempart-status, loaded here, so that the rules
are written once), and against the topology: each public service is one of its entry points (floating)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path

from ansible.errors import AnsibleFilterError

SCRIPT = Path(__file__).resolve().parents[1] / "files" / "rempart-status"


def generator():
    loader = importlib.machinery.SourceFileLoader("rempart_status", str(SCRIPT))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def status_page_problems(config, topology):
    if not isinstance(topology, dict) or "hosts" not in topology:
        raise AnsibleFilterError("status_page_problems: the topology (rempart_topology) is its argument")
    problems = generator().config_problems(config)
    entries = sorted((topology.get("floating") or {}).keys())
    for index, service in enumerate(config.get("services") or [] if isinstance(config, dict) else []):
        if isinstance(service, dict) and service.get("function") not in entries:
            problems.append(f"status_page_services[{index}].function: {service.get('function')!r} is no public entry point of "
                            f"the topology (floating: {entries}).")
    return problems


class FilterModule:
    def filters(self):
        return {"status_page_problems": status_page_problems}
