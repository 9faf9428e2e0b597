"""Filters of the patroni role. Which hosts may connect is read from the flow matrix by
``rempart.topology.clients`` (tested there); the others are small and tested in tests/tools."""

from __future__ import annotations

from rempart.topology import clients

# What a password written between single quotes in a systemd environment file may not hold.
_UNSAFE = ("'", "\\", "\n")
MIN_LENGTH = 16


def patroni_clients(topology, host, service):
    """Hosts the flow matrix lets reach ``host`` with ``service`` (pg_hba's sources)."""
    return clients(topology, host, service)


def patroni_database_secret(name, passwords):
    """A database role's password, named for the validation's message."""
    return {"key": f"patroni_database_passwords.{name}", "vault": f"vault_postgresql_{name}_password",
            "value": (passwords or {}).get(name)}


def patroni_secret_problems(named):
    """One message per password that is missing, too short or unsafe; never the value itself."""
    problems = []
    for entry in named:
        value = entry.get("value")
        where = f"{entry['key']} (by default the vault's {entry['vault']})"
        if not value:
            problems.append(f"{where} is missing")
        elif len(str(value)) < MIN_LENGTH:
            problems.append(f"{where} is shorter than {MIN_LENGTH} characters")
        elif any(character in str(value) for character in _UNSAFE):
            problems.append(f"{where} holds a quote, a backslash or a line break")
    return problems


def patroni_config_patch(wanted, current, _path=()):
    """The part of ``wanted`` that ``current`` (Patroni's dynamic configuration) does not have yet.

    Values are compared as text (Patroni may hand back 'on' where True was sent, 10 where '10').
    PostgreSQL parameters the cluster has but ``wanted`` no longer declares are patched to None,
    which removes them (PostgreSQL's default comes back): the role owns the cluster's parameters.
    An empty dict: nothing to change.
    """
    patch = {}
    for key, value in wanted.items():
        have = (current or {}).get(key)
        if isinstance(value, dict):
            sub = patroni_config_patch(value, have if isinstance(have, dict) else {}, (*_path, key))
            if sub:
                patch[key] = sub
        elif _text(value) != _text(have):
            patch[key] = value
    if _path == ("postgresql", "parameters"):
        for key, have in (current or {}).items():
            if key not in wanted and have is not None:
                patch[key] = None
    return patch


def patroni_primary_of(members, hostvars):
    """The member whose probe saw it primary ('' when none did)."""
    for name in members:
        state = (hostvars[name].get("__patroni_host") or {}).get("state") or {}
        if state.get("role") in ("master", "primary"):
            return name
    return ""


def _text(value):
    if isinstance(value, bool):
        return "on" if value else "off"
    return "" if value is None else str(value).lower()


class FilterModule:
    def filters(self):
        return {
            "patroni_clients": patroni_clients,
            "patroni_database_secret": patroni_database_secret,
            "patroni_secret_problems": patroni_secret_problems,
            "patroni_config_patch": patroni_config_patch,
            "patroni_primary_of": patroni_primary_of,
        }
