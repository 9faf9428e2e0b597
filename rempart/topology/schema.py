"""The shape of a topology, declared once in ``schema/topology.schema.json`` (JSON Schema 2020-12).

Editors validate topology files against the same file as they are typed (the modeline at the top of
each file). Here it turns every shape error into one sentence: the place (``hosts.db1.underlay``),
what is wrong, and what to write instead, taken from the schema's own descriptions. The closed lists
of the model (environments, protocols, requirement IDs, ...) are read from it too.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from jsonschema import Draft202012Validator

from .source import dotted

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema" / "topology.schema.json"


@cache
def schema() -> dict:
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


def enum(*where: str) -> tuple[str, ...]:
    """A closed list of the schema, by its place: enum('$defs', 'requirement')."""
    node = schema()
    for step in where:
        node = node[step]
    return tuple(node.get("enum") or node["items"]["enum"])


def _resolve(node: dict) -> dict:
    """A schema node with its $ref followed; the local description wins over the referenced one."""
    while "$ref" in node:
        target = schema()
        for step in node["$ref"].removeprefix("#/").split("/"):
            target = target[step]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _child(node: dict, step) -> dict | None:
    node = _resolve(node)
    if isinstance(step, int):
        items = node.get("items")
        if items is None and "anyOf" in node:
            items = next((n.get("items") for n in node["anyOf"] if "items" in n), None)
        return items
    if step in (node.get("properties") or {}):
        return node["properties"][step]
    extra = node.get("additionalProperties")
    return extra if isinstance(extra, dict) else None


def describe(where: tuple) -> str:
    """What belongs at a place, in the schema's words."""
    node: dict | None = schema()
    for step in where:
        node = _child(node, step) if node is not None else None
    return (_resolve(node).get("description") if node else None) or "what the schema describes"


def _kind(value) -> str:
    if isinstance(value, bool):
        return "a boolean"
    return {int: "a number", float: "a number", str: "a string", list: "a list", dict: "a mapping",
            type(None): "empty"}.get(type(value), type(value).__name__)


def _expected(types) -> str:
    names = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "a whole number",
             "boolean": "true or false", "number": "a number"}
    types = types if isinstance(types, list) else [types]
    return " or ".join(names.get(t, t) for t in types)


def _message(error) -> list[str]:
    where = tuple(error.absolute_path)
    place = dotted(where)
    value = error.instance
    keyword = error.validator
    if "propertyNames" in error.relative_schema_path:
        names_schema = _resolve(error.schema)
        return [f"{dotted(where + (str(value),))}: the name {value!r} is not {names_schema.get('description')}: rename it."]
    if keyword == "additionalProperties" and error.validator_value is False:
        known = sorted((_resolve(error.schema).get("properties") or {}))
        return [
            f"{dotted(where + (key,))} is not a known key (known: {', '.join(known)}): fix the spelling or remove it."
            for key in sorted(set(value) - set(known), key=str)
        ]
    if keyword == "required":
        return [f"{dotted(where + (key,))} is missing: give {describe(where + (key,))}." for key in error.validator_value
                if key not in value]
    if keyword == "type":
        return [f"{place}: {value!r} is {_kind(value)} where {_expected(error.validator_value)} belongs: give {describe(where)}."]
    if keyword in ("enum", "const"):
        choices = error.validator_value if keyword == "enum" else [error.validator_value]
        return [f"{place}: {value!r} is not one of {', '.join(map(str, choices))}: give {describe(where)}."]
    if keyword in ("minItems", "minProperties"):
        return [f"{place} is empty: give {describe(where)}."]
    if keyword == "uniqueItems":
        return [f"{place}: {value!r} lists an item twice: remove the repeat."]
    return [f"{place}: {value!r} is not {describe(where)}: fix it."]


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(schema())


def shape_errors(document: dict) -> list[str]:
    """Every shape error of one file (or of a merged topology), as sentences."""
    validator = _validator()
    found: list[str] = []
    for error in sorted(validator.iter_errors(document), key=lambda e: [str(p) for p in e.absolute_path]):
        for message in _message(error):
            if message not in found:
                found.append(message)
    return found


def missing_keys(merged: dict) -> list[str]:
    """Top-level keys that neither the environment's file nor the file it extends gives."""
    return [f"{key} is missing: give {describe((key,))}." for key in schema()["x-rempart-required"] if key not in merged]
