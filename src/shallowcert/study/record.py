"""Frozen dataclasses that travel as JSON: the study's config sections and result records.

A :class:`Record` converts itself to a JSON object (:meth:`Record.to_json`, fields in
declaration order) and back (:meth:`Record.from_json`), following its type hints: nested
records, ``list[T]``, ``tuple[T, ...]``, ``dict[str, T]``, ``T | None``, string enums and
plain JSON values. Reading is strict: a missing or unknown key raises :class:`RecordError`
naming its path, so a file written in another layout is never half-read.

A field declared with ``field(default=None, metadata=OMIT_NONE)`` is left out of the JSON
while it is ``None`` (a key that some rows have and others do not).
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar, Union

R = TypeVar("R", bound="Record")
Json = Any  # a value json.dumps accepts; its shape is given by the record's type hints
OMIT_NONE: Mapping[str, bool] = {"omit_none": True}


class RecordError(ValueError):
    """A JSON object that does not have the layout of the record read from it."""


class Key(str, enum.Enum):
    """A string enum whose members are keys in files and names: each prints as its value."""

    def __str__(self) -> str:
        return str(self.value)


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    """The resolved type hints of a record class (computed once per class)."""
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _dump(value: Any) -> Json:
    if isinstance(value, Record):
        return value.to_json()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_dump(v) for v in value]
    if isinstance(value, dict):
        return {k: _dump(v) for k, v in value.items()}
    return value


def _load(hint: Any, value: Json, path: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) != 1:
            raise TypeError(f"{path}: only 'T | None' unions can be read, not {hint}")
        return _load(options[0], value, path)
    if isinstance(hint, type) and issubclass(hint, Record):
        if not isinstance(value, Mapping):
            raise RecordError(f"{path}: expected an object, got {type(value).__name__}")
        return hint._from_mapping(value, path)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except ValueError:
            raise RecordError(f"{path}: unknown value {value!r}") from None
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise RecordError(f"{path}: expected a list, got {type(value).__name__}")
        items = [_load(args[0], v, f"{path}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, Mapping):
            raise RecordError(f"{path}: expected an object, got {type(value).__name__}")
        return {k: _load(args[1], v, f"{path}.{k}") for k, v in value.items()}
    return value


@dataclasses.dataclass(frozen=True)
class Record:
    """Base of the study's JSON records (see the module docstring)."""

    def to_json(self) -> dict[str, Json]:
        """The record as a JSON object, keys in field order."""
        out: dict[str, Json] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None and f.metadata.get("omit_none"):
                continue
            out[f.name] = _dump(value)
        return out

    @classmethod
    def from_json(cls: type[R], data: Mapping[str, Json]) -> R:
        """The record held by ``data``; :class:`RecordError` when a key is missing or unknown."""
        return cls._from_mapping(data, cls.__name__)

    @classmethod
    def _from_mapping(cls: type[R], data: Mapping[str, Json], path: str) -> R:
        hints = _hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise RecordError(f"{path}: unknown key(s) {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for name, f in fields.items():
            if name in data:
                values[name] = _load(hints[name], data[name], f"{path}.{name}")
            elif not f.metadata.get("omit_none"):
                raise RecordError(f"{path}: missing key {name}")
        return cls(**values)

    def extend(self, cls: type[R], **extra: Any) -> R:
        """A ``cls`` with ``extra`` and, for its other fields, this record's values (a record
        that adds fields to, or keeps a part of, this one)."""
        shared = {f.name: getattr(self, f.name) for f in dataclasses.fields(cls)
                  if f.name not in extra and hasattr(self, f.name)}
        return cls(**shared, **extra)
