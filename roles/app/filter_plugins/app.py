"""Filters of the app role: the application's files, its clients, its agents."""

from __future__ import annotations

from pathlib import Path

from rempart.topology import clients

SKIPPED = {"__pycache__", ".pytest_cache"}


def app_source_files(source: str, dest: str) -> list[dict]:
    """Every file of the application's source (a folder on the controller), for rempart_files:
    folders first, read-only for the application (root owns them)."""
    root = Path(source).resolve()
    if not root.is_dir():
        raise ValueError(f"app_source: {source} is not a folder on the controller")
    out = [{"path": dest, "state": "directory", "mode": "0755"}]
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if SKIPPED & set(relative.parts) or path.suffix == ".pyc":
            continue
        target = f"{dest}/{relative.as_posix()}"
        if path.is_dir():
            out.append({"path": target, "state": "directory", "mode": "0755"})
        else:
            out.append({"path": target, "content": path.read_text(encoding="utf-8"), "mode": "0644"})
    return out


def app_clients_of(topology: dict, host: str, service: str) -> list[str]:
    """Hosts the flow matrix lets reach ``host`` with ``service`` (a shim over rempart.topology.clients)."""
    return sorted(clients(topology, host, service))


def app_with_hashes(agents: list[dict], hashes: dict) -> list[dict]:
    """The agents, each with its password hash from the vault (empty when the vault has none)."""
    return [{**agent, "password_hash": (hashes or {}).get(agent["login"], "")} for agent in agents or []]


class FilterModule:
    def filters(self):
        return {"app_source_files": app_source_files, "app_clients_of": app_clients_of, "app_with_hashes": app_with_hashes}
