"""A small declarative schema for YAML configs that reports every mistake at once.

A schema is a nested ``dict`` of field name -> :class:`Field` (or a nested schema).
:func:`validate` walks the YAML *node* tree (not just the loaded data) so that every
error carries its key path and its line in the file, e.g.::

    study.yaml:12 teacher.epochs: expected an integer >= 1, got -3
    study.yaml:20 attacks.attack: unknown key (known: attacks, eps, restarts, steps)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import yaml

Check = Callable[[Any], str | None]  # returns an error message, or None when the value is fine


@dataclass(frozen=True)
class Field:
    """One typed config value with a default and an optional extra check."""

    kind: str  # int, float, str, bool, list[int], list[float], list[str], str?, int?
    default: Any
    check: Check | None = None
    doc: str = ""


def _type_error(kind: str, value: Any) -> str | None:
    optional = kind.endswith("?")
    base = kind.rstrip("?")
    if value is None:
        return None if optional else f"expected {base}, got nothing"
    if base.startswith("list["):
        if not isinstance(value, list):
            return f"expected a list of {base[5:-1]}, got {type(value).__name__}"
        for i, item in enumerate(value):
            err = _type_error(base[5:-1], item)
            if err:
                return f"item {i}: {err}"
        return None
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
        "str": isinstance(value, str),
        "bool": isinstance(value, bool),
    }[base]
    return None if ok else f"expected {base}, got {type(value).__name__} {value!r}"


def at_least(lo: float) -> Check:
    def check(value: Any) -> str | None:
        values = value if isinstance(value, list) else [value]
        bad = [v for v in values if v is not None and v < lo]
        return f"must be >= {lo:g}, got {bad[0]!r}" if bad else None
    return check


def greater_than(lo: float) -> Check:
    def check(value: Any) -> str | None:
        values = value if isinstance(value, list) else [value]
        bad = [v for v in values if v is not None and not v > lo]
        return f"must be > {lo:g}, got {bad[0]!r}" if bad else None
    return check


def between(lo: float, hi: float) -> Check:
    def check(value: Any) -> str | None:
        values = value if isinstance(value, list) else [value]
        bad = [v for v in values if v is not None and not lo <= v <= hi]
        return f"must be in [{lo:g}, {hi:g}], got {bad[0]!r}" if bad else None
    return check


def one_of(*choices: str) -> Check:
    def check(value: Any) -> str | None:
        values = value if isinstance(value, list) else [value]
        bad = [v for v in values if v is not None and v not in choices]
        return f"must be one of {', '.join(choices)}; got {bad[0]!r}" if bad else None
    return check


def non_empty(value: Any) -> str | None:
    return "must not be empty" if isinstance(value, list) and not value else None


def all_of(*checks: Check) -> Check:
    def check(value: Any) -> str | None:
        for c in checks:
            err = c(value)
            if err:
                return err
        return None
    return check


Schema = dict[str, "Field | Schema"]


def defaults(schema: Schema) -> dict[str, Any]:
    """The config with every default filled in."""
    return {k: defaults(v) if isinstance(v, dict) else v.default for k, v in schema.items()}


def _line(node: yaml.Node | None) -> str:
    return f":{node.start_mark.line + 1}" if node is not None else ""


def validate(schema: Schema, root: yaml.Node | None, *, source: str) -> tuple[dict[str, Any], list[str]]:
    """Merge the YAML under ``root`` over the defaults; return (values, errors). A value with an
    error keeps its default, so the values always have the schema's layout."""
    errors: list[str] = []
    config = defaults(schema)

    def walk(sch: Schema, node: yaml.Node | None, out: dict[str, Any], path: str) -> None:
        if node is None:
            return
        if not isinstance(node, yaml.MappingNode):
            errors.append(f"{source}{_line(node)} {path or '(top level)'}: expected a mapping of keys")
            return
        for key_node, value_node in node.value:
            key = key_node.value
            where = f"{path}.{key}" if path else key
            if key not in sch:
                errors.append(f"{source}{_line(key_node)} {where}: unknown key (known: {', '.join(sorted(sch))})")
                continue
            entry = sch[key]
            if isinstance(entry, dict):
                walk(entry, value_node, out[key], where)
                continue
            value = yaml.safe_load(yaml.serialize(value_node))
            err = _type_error(entry.kind, value) or (entry.check(value) if entry.check and value is not None else None)
            if err:
                errors.append(f"{source}{_line(value_node)} {where}: {err}")
            else:
                out[key] = float(value) if entry.kind.rstrip("?") == "float" and value is not None else (
                    [float(v) for v in value] if entry.kind == "list[float]" else value)

    walk(schema, root, config, "")
    return config, errors
