"""mkdocs hooks (mkdocs.yml: hooks): every page of the built site says which commit it describes, so
that a reader, a screenshot or a printed page can be matched to the code (DOC)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _git(*args: str) -> str:
    result = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False)
    return result.stdout.strip() if result.returncode == 0 else ""


def stamp() -> str:
    """`commit <12 hex> of <date>`, `with uncommitted changes` when the tree differs; `no commit` outside git."""
    commit = _git("rev-parse", "--short=12", "HEAD")
    if not commit:
        return "built outside a git checkout: no commit"
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return f"commit {commit} of {_git('log', '-1', '--format=%cs')}" + (" with uncommitted changes" if dirty else "")


def on_config(config, **_kwargs):
    """The footer's stamp; the published address when the publishing job gives one (REMPART_DOCS_URL)."""
    if os.environ.get("REMPART_DOCS_URL"):
        config.site_url = os.environ["REMPART_DOCS_URL"]
    config.copyright = f"Rempart documentation, {stamp()}."
    config.extra["stamp"] = stamp()
    return config
