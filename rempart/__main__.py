"""Command line of the project's tooling: ``python -m rempart <command> [args]``."""

from __future__ import annotations

import argparse
import importlib
import sys

# command -> (module, one line of help). Modules load lazily: engine and image must run
# with the standard library alone, before the virtualenv exists.
COMMANDS = {
    "engine": ("rempart.engine", "make sure a Docker engine answers (installs Debian's docker.io as root)"),
    "aptcache": ("rempart.aptcache", "run the package cache shared by lab containers (nginx, root on Debian)"),
    "image": ("rempart.image", "build the lab base image rempart/debian:12 when its recipe changed"),
    "labimage": ("rempart.labimage", "build the lab hosts' image (the base image with every host's packages) when it changed; --list"),
    "docs": ("rempart.roledocs", "generate the role reference pages; --check fails when they are stale"),
    "audit": ("rempart.audit", "score the hardening baseline with Lynis and ssh-audit, time its second run"),
    "topology": ("rempart.topology", "validate the environments' topologies (all, or the ones named)"),
    "drill": ("rempart.drill", "run drills on the lab (stop the primary, switchover, lose the standby, cut two sites); --record"),
    "bench": ("rempart.bench", "benchmark the WAF beside the same nginx without ModSecurity and a default Debian setup; --record"),
    "molecule": ("rempart.molecule", "run the roles' molecule scenarios side by side (--jobs), the heaviest first, each one's output in build/test-logs/"),
    "drift": ("rempart.drift", "run the site playbook with --check --diff against an environment; fail on any change"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rempart", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_module, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    args, rest = parser.parse_known_args(argv)
    module = importlib.import_module(COMMANDS[args.command][0])
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
