"""``python -m rempart drift [ENV] [ansible-playbook options]``: is an environment what the code says?

Runs the site playbook against the environment with ``--check --diff`` (nothing is changed on the
hosts), shows what differs, and exits 1 when any host would change (``changed=`` in the recap), 2 when
the run itself failed. ``make drift`` runs it against the lab; ``make test`` after the lab converged.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RECAP = re.compile(r"^(?P<host>\S+)\s+:\s+ok=\d+\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def main(argv: list[str] | None = None) -> int:
    args = list(argv or [])
    env = args.pop(0) if args and not args[0].startswith("-") else "lab"
    inventory = REPO / "inventories" / env
    if not (inventory / "topology.yml").is_file():
        print(f"drift: {inventory}/topology.yml does not exist: name an environment (lab, dev, test, prod).", file=sys.stderr)
        return 2
    command = [
        str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), str(REPO / "playbooks" / "site.yml"),
        "-e", f"rempart_target={env}", "--check", "--diff", *args,
    ]
    print(f"drift: {' '.join(command[1:])}", flush=True)
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    changed: dict[str, int] = {}
    broken: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:
        sys.stdout.write(line)
        match = RECAP.match(ANSI.sub("", line).strip())
        if match:
            changed[match["host"]] = changed.get(match["host"], 0) + int(match["changed"])
            if int(match["unreachable"]) or int(match["failed"]):
                broken.append(match["host"])
    status = process.wait()
    if status != 0 or broken:
        print(f"drift: the check run failed (exit {status}; hosts failed or unreachable: {', '.join(broken) or 'none'})", file=sys.stderr)
        return 2
    drifted = {host: count for host, count in sorted(changed.items()) if count}
    if drifted:
        listing = ", ".join(f"{host} ({count})" for host, count in drifted.items())
        print(f"drift: {env} differs from the code on {len(drifted)} host(s): {listing}; the diffs are above.", file=sys.stderr)
        return 1
    print(f"drift: {env} is what the code says ({len(changed)} hosts, no change).")
    return 0
