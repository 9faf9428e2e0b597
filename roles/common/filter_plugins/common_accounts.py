"""Filters of role common: from the wanted operators and the accounts the probe read, what to change."""

from __future__ import annotations


def _differs(operator: dict, found: dict | None, admin_group: str) -> bool:
    if operator["state"] == "absent":
        return found is not None
    return (
        found is None
        or found["comment"] != operator["comment"]
        or found["shell"] != operator["shell"]
        or admin_group not in found["groups"]
        or found["password"] != "locked"
    )


def common_accounts_to_change(operators: list, accounts: dict, admin_group: str) -> list:
    """The operators whose account must be created, changed or removed."""
    return [operator for operator in operators if _differs(operator, accounts.get(operator["name"]), admin_group)]


def common_key_files(operators: list, accounts: dict) -> list:
    """rempart_files entries: each present operator's ~/.ssh and authorized_keys, exactly the keys listed.

    An account created in this run gets what useradd gives it: /home/<name> and the group <name>.
    """
    files = []
    for operator in operators:
        if operator["state"] != "present":
            continue
        found = accounts.get(operator["name"]) or {}
        home = found.get("home", "/home/" + operator["name"])
        group = found.get("group", operator["name"])
        owner = {"owner": operator["name"], "group": group}
        files.append({"path": home + "/.ssh", "state": "directory", "mode": "0700", **owner})
        files.append({"path": home + "/.ssh/authorized_keys", "mode": "0600", **owner,
                      "content": "".join(key.strip() + "\n" for key in operator["ssh_keys"])})
    return files


class FilterModule:
    def filters(self):
        return {"common_accounts_to_change": common_accounts_to_change, "common_key_files": common_key_files}
