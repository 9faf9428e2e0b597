"""Reading topology files: YAML with the line of every key, refused duplicates, ``extends`` merged.

Every problem found while reading is a ``TopologyError`` whose messages name the file and the line;
no YAML or Python exception reaches the user.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

# Top-level keys an environment merges entry by entry with the file it extends (the others replace).
MERGED_BY_NAME = ("services", "functions")


class TopologyError(ValueError):
    """The topology is wrong; ``errors`` lists every problem found, each naming its place and its fix."""

    def __init__(self, path: Path | str, errors: list[str]):
        self.path = path
        self.errors = errors
        super().__init__(f"{path}: {len(errors)} problem(s) in the topology:\n- " + "\n- ".join(errors))


@dataclass
class Source:
    """One file as read: its data and the line of each place (path tuple -> 1-based line)."""

    path: Path
    data: object
    lines: dict[tuple, int] = field(default_factory=dict)


def display(path: Path) -> str:
    """A path as a person reads it: relative to the working directory when it is below it."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _walk(node: yaml.Node, where: tuple, lines: dict, problems: list[str], name: str) -> None:
    lines.setdefault(where, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            line = key_node.start_mark.line + 1
            if key == "<<":  # a merge key: its entries are the mapping's own
                continue
            if key in seen:
                problems.append(
                    f"{name}:{line}: {dotted(where + (key,))} is given twice (first on line {seen[key]}): "
                    "YAML keeps only the last one; remove one of them."
                )
            seen[key] = line
            _walk(value_node, where + (_key_value(key_node),), lines, problems, name)
            lines[where + (_key_value(key_node),)] = line
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, where + (index,), lines, problems, name)


def _key_value(node: yaml.Node):
    """A key as safe_load makes it (so that 1: and true: land where the data has them)."""
    if isinstance(node, yaml.ScalarNode):
        try:
            return yaml.SafeLoader("").construct_object(node)
        except yaml.YAMLError:
            return node.value
    return str(node.value)


def read(path: Path) -> Source:
    """A topology file: a mapping, with the line of each place; refused with file and line when not."""
    path = Path(path)
    name = display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TopologyError(name, [f"{name}: the file does not exist: create it or fix the path."]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TopologyError(name, [f"{name}: the file cannot be read ({exc.__class__.__name__}): it must be UTF-8 text."]) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        problem = " ".join(str(exc.problem or exc.context or "not YAML").split())
        raise TopologyError(name, [f"{name}{line}: this is not valid YAML ({problem}): fix the syntax there."]) from None
    except yaml.YAMLError as exc:
        raise TopologyError(name, [f"{name}: this is not valid YAML ({' '.join(str(exc).split())}): fix the syntax."]) from None
    if node is None or data is None:
        raise TopologyError(name, [f"{name}: the file is empty: a topology is a mapping (plugin, extends, environment, sites, hosts, ...)."])
    if not isinstance(data, dict):
        kind = type(data).__name__.replace("str", "a string").replace("list", "a list").replace("int", "a number")
        raise TopologyError(
            name,
            [f"{name}:{node.start_mark.line + 1}: the file holds {kind}, not a mapping: a topology is a mapping of keys "
             "(plugin, extends, environment, sites, hosts, ...)."],
        )
    problems: list[str] = []
    lines: dict[tuple, int] = {}
    _walk(node, (), lines, problems, name)
    if problems:
        raise TopologyError(name, problems)
    return Source(path, data, lines)


def merge(base: dict, data: dict) -> dict:
    """``data`` on top of ``base``: its keys win; services and functions merge entry by entry."""
    merged = {**base, **data}
    for key in MERGED_BY_NAME:
        if isinstance(base.get(key), dict) and isinstance(data.get(key), dict):
            merged[key] = {**base[key], **data[key]}
    return merged


# --- places -----------------------------------------------------------------------------------------

_STEP = re.compile(r"\.?([^.\[\]]+)|\[(\d+)\]")


def dotted(where: tuple) -> str:
    """('hosts', 'db1', 'underlay') -> hosts.db1.underlay; ('flows', 3, 'to') -> flows[3].to."""
    text = ""
    for step in where:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text or "topology"


def parse_place(text: str) -> tuple:
    """The inverse of ``dotted`` for the leading place of a message."""
    steps: list = []
    for match in _STEP.finditer(text):
        steps.append(int(match.group(2)) if match.group(2) is not None else match.group(1))
    return tuple(steps)


def locate(message: str, sources: list[Source]) -> str:
    """``message`` prefixed with the file and line of the place it starts with (the deepest one known)."""
    head = re.match(r"[A-Za-z_][\w.\[\]-]*", message)
    if not head:
        return message
    where = parse_place(head.group(0))
    while where:
        for source in sources:
            if where in source.lines:
                return f"{display(source.path)}:{source.lines[where]}: {message}"
        where = where[:-1]
    return f"{display(sources[0].path)}: {message}" if sources else message
