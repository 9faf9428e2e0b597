"""Textfile collectors: how a role's metrics script is run for the node exporter, written once.

Several roles write metrics of their own for the node exporter's textfile collector (pgBackRest's
state, WireGuard's handshakes, who holds rights, the certificates' expiry): each ships a script that
writes its ``*.prom`` file atomically, run by a oneshot service that a timer starts every minute. The
script's path, the units' names, their text and the cadence are this module's; roles get them through
the filter ``rempart_collector`` (plugins/filter), the tests through :func:`names`.
"""

from __future__ import annotations

import re

NAME = re.compile(r"^[a-z][a-z0-9-]*$")
UNIT_DIR = "/etc/systemd/system"
SCRIPT_DIR = "/usr/local/sbin"
# 30 s after boot, then every minute: Prometheus scrapes the node exporter more often than that, and
# the rules read these values over minutes.
TIMER = """\
[Timer]
OnBootSec=30s
OnUnitActiveSec=60s
AccuracySec=5s

[Install]
WantedBy=timers.target
"""


SAFE = re.compile(r"^[A-Za-z0-9_./:=,@+-]+$")


def _systemd_word(word: str) -> str:
    """One word of ExecStart, taken literally by systemd: a whole word in double quotes with C escapes
    when it holds anything else than plain characters (systemd's quotes wrap whole words only), and its
    specifiers (%) and variables ($) doubled."""
    if not SAFE.match(word):
        word = '"' + word.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return word.replace("%", "%%").replace("$", "$$")


class CollectorError(ValueError):
    """A collector described wrongly (a role's bug, said in one line)."""


def names(name: str) -> dict:
    """The script, the service and the timer of the collector ``name``."""
    if not isinstance(name, str) or not NAME.match(name):
        raise CollectorError(f"the collector's name {name!r} must be lower-case letters, digits and dashes")
    stem = f"rempart-{name}-metrics"
    return {"script": f"{SCRIPT_DIR}/{stem}", "service": f"{stem}.service", "timer": f"{stem}.timer"}


def collector(name: str, description: str, args=(), after=(), state: str = "present", role: str = "") -> dict:
    """``{"script", "service", "timer", "files"}``: the role installs its script at ``script``; ``files``
    are the units, entries for the ``rempart_files`` module, present, or absent with ``state="absent"``
    (the role then removes its script and what it wrote too)."""
    found = names(name)
    if state not in ("present", "absent"):
        raise CollectorError(f"the collector {name}'s state {state!r} must be present or absent")
    if isinstance(args, str) or not all(isinstance(part, str) and part for part in args):
        raise CollectorError(f"the collector {name}'s arguments must be a list of non-empty strings")
    service, timer = found["service"], found["timer"]
    command = " ".join(map(_systemd_word, [found["script"], *args]))
    description = " ".join(str(description).split())
    managed = f"# Managed by Rempart{f' (role {role})' if role else ''}.\n"
    after_line = f"After={' '.join(after)}\n" if after else ""
    service_text = (
        f"{managed}[Unit]\nDescription={description}, for the node exporter's textfile collector\n{after_line}\n"
        f"[Service]\nType=oneshot\nExecStart={command}\n"
    )
    timer_text = f"{managed}[Unit]\nDescription={description}, for the node exporter, every minute\n\n{TIMER}"
    return {
        **found,
        "files": [
            {"path": f"{UNIT_DIR}/{service}", "content": service_text, "state": state},
            {"path": f"{UNIT_DIR}/{timer}", "content": timer_text, "state": state},
        ],
    }
