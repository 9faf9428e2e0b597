"""mkdocs hooks (mkdocs.yml: hooks): every page of the built site says which commit it describes, so
that a reader, a screenshot or a printed page can be matched to the code; the topology's diagrams are
drawn, as SVG files of the site, from the inventories the site is built from (DOC)."""

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


def diagrams() -> dict[str, str]:
    """Site path -> SVG: one network diagram per environment, one data-flow diagram (the flow matrix)."""
    from rempart import topology  # noqa: PLC0415 - loaded by mkdocs only when the site is built
    from rempart.topology.diagrams import flows_svg, network_svg  # noqa: PLC0415
    from rempart.topology.docs import flow_state, what_is_built  # noqa: PLC0415

    loaded = topology.load_all()
    ordered = {env: loaded[env] for env in topology.ENVIRONMENTS if env in loaded}
    built = what_is_built(REPO)
    first = next(iter(ordered.values()))
    drawn = {f"diagrams/network-{env}.svg": network_svg(topo, env) for env, topo in ordered.items()}
    drawn["diagrams/flows.svg"] = flows_svg(first, {number: flow_state(flow, *built) for number, flow in enumerate(first["flows"])})
    return drawn


def on_files(files, config, **_kwargs):
    from mkdocs.structure.files import File  # noqa: PLC0415

    for path, svg in diagrams().items():
        files.append(File.generated(config, path, content=svg))
    return files
