"""mkdocs hooks (mkdocs.yml: hooks): every page of the built site says which commit it describes, so
that a reader, a screenshot or a printed page can be matched to the code; the topology's diagrams are
drawn, as SVG files of the site, from the inventories the site is built from; and a written page states
a role variable's value or a service's port through a macro read from the code, never typed (DOC); and
an identifier in a table cell (a test's name, a path, a variable) may wrap after its own separators, so
that a table fits the column instead of scrolling sideways, and never breaks mid-word. The macros:

- ``{{ default: <variable>[.<key or index>...] }}``: the value in ``roles/<role>/defaults/main.yml``
  (``{{ default: waf_rate_limits.0.rate }}``);
- ``{{ port: <service> }}``: the service's first port in ``inventories/reference.yml``;
- ``{{ wiring: <name> }}``: the topology's ``wiring.<name>`` in ``inventories/reference.yml`` (``shipped_logs.audit``: a key
  inside it).

An unknown name, or a default computed by Jinja rather than written, stops the build."""

from __future__ import annotations

import os
import re
import subprocess
from functools import cache
from pathlib import Path

from rempart.roledocs import _templated

REPO = Path(__file__).resolve().parent.parent


MACRO = re.compile(r"\{\{\s*(default|port|wiring):\s*([A-Za-z0-9_.-]+)\s*\}\}")


class MacroError(ValueError):
    pass


@cache
def role_defaults() -> dict:
    """Every role's public variables with their defaults, as the role pages read them (each name is
    prefixed by its role: no clash)."""
    from rempart.roledocs import load_roles  # noqa: PLC0415

    return {name: value for role in load_roles() for name, value in role.defaults.items()}


def macro_value(kind: str, name: str) -> str:
    if kind == "port":
        from rempart import topology  # noqa: PLC0415

        reference = topology.read(topology.INVENTORIES / "reference.yml").data
        if name not in reference["services"]:
            raise MacroError(f"no service {name!r} in inventories/reference.yml")
        return str(topology.port(reference, name))
    if kind == "wiring":
        from rempart import topology  # noqa: PLC0415

        value = topology.read(topology.INVENTORIES / "reference.yml").data["wiring"]
        for part in name.split("."):
            if not isinstance(value, dict) or part not in value:
                raise MacroError(f"no wiring.{name} in inventories/reference.yml")
            value = value[part]
        return str(value)
    variable, *path = name.split(".")
    if variable not in role_defaults():
        raise MacroError(f"no role default {variable!r} in roles/*/defaults/main.yml")
    value = role_defaults()[variable]
    for step in path:
        try:
            value = value[int(step)] if isinstance(value, list) else value[step]
        except (KeyError, IndexError, ValueError, TypeError):
            raise MacroError(f"{name!r}: {variable} has no {step!r}") from None
    if isinstance(value, (dict, list)) or _templated(value):
        raise MacroError(f"{name!r} is not a written value (a mapping, a list or a Jinja expression): name one of its parts")
    return str(value).lower() if isinstance(value, bool) else str(value)


def render_macros(markdown: str, where: str) -> str:
    def replace(match: re.Match) -> str:
        try:
            return macro_value(match.group(1), match.group(2))
        except MacroError as error:
            raise MacroError(f"{where}: {match.group(0)}: {error}") from None
    return MACRO.sub(replace, markdown)


NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])")
VARIABLE = re.compile(r"`([a-z][a-z0-9]*_[a-z0-9_]+)`")


def typed_values(markdown: str) -> list[str]:
    """Places where a written page types a number next to a role variable whose default holds one,
    instead of reading it with a macro: ``line: variable: text``. The window is the 100 characters
    before the name and the 60 after it, on the same line (a table row or a wrapped sentence); code
    spans in it (a status, a command) are not counted."""
    found = []
    for number, line in enumerate(markdown.splitlines(), 1):
        plain = MACRO.sub("(macro)", line)
        for match in VARIABLE.finditer(plain):
            if match.group(1) not in role_defaults() or not re.search(r"\d", str(role_defaults()[match.group(1)])):
                continue
            window = plain[max(0, match.start() - 100): match.end() + 60]
            window = re.sub(r"`[^`]*`", "", window)  # names and code (a status, a command) are not values
            if NUMBER.search(window):
                found.append(f"{number}: {match.group(1)}: {window.strip()}")
    return found


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
    config.extra["stamp"] = stamp()
    config.copyright = f"Rempart documentation, {config.extra['stamp']}."
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


TABLE_CELL = re.compile(r"(<td\b[^>]*>)(.*?)(</td>)", re.S)
CODE = re.compile(r"(<code\b[^>]*>)(.*?)(</code>)", re.S)
# After these, a line may end: a path's slash, a test's `::`, a name's underscore or dot.
SEPARATOR = re.compile(r"(::|[/_.])(?=[^\s<])")


def wrappable(html: str) -> str:
    """The page's HTML with a break opportunity (``<wbr>``) after each separator of the code in table cells."""
    def code(match: re.Match) -> str:
        parts = re.split(r"(<[^>]+>|&[#a-zA-Z0-9]+;)", match.group(2))  # tags and entities stay whole
        text = "".join(part if part.startswith(("<", "&")) else SEPARATOR.sub(r"\1<wbr>", part) for part in parts)
        return match.group(1) + text + match.group(3)

    return TABLE_CELL.sub(lambda cell: cell.group(1) + CODE.sub(code, cell.group(2)) + cell.group(3), html)


def on_page_content(html, **_kwargs):
    return wrappable(html)


def on_page_markdown(markdown, page, **_kwargs):
    from mkdocs.exceptions import PluginError  # noqa: PLC0415

    try:
        return render_macros(markdown, f"docs/{page.file.src_uri}")
    except MacroError as error:
        raise PluginError(str(error)) from None
