"""A tiny document model: the report is a list of blocks rendered to Markdown and HTML."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Table:
    label: str  # e.g. "Table 8.2" — also the CSV file name
    caption: str
    headers: list[str]
    rows: list[list[Any]]


@dataclass(frozen=True)
class Figure:
    label: str
    caption: str
    path: Path  # PNG written by a stage


@dataclass(frozen=True)
class Code:
    text: str


@dataclass
class Claim:
    statement: str
    holds: bool | None  # None: not enough data to decide
    evidence: str


@dataclass
class Document:
    title: str
    blocks: list[Heading | Paragraph | Table | Figure | Code] = field(default_factory=list)

    def add(self, *blocks: Heading | Paragraph | Table | Figure | Code) -> None:
        self.blocks.extend(blocks)

    def tables(self) -> list[Table]:
        return [b for b in self.blocks if isinstance(b, Table)]


def cell(value: Any) -> str:
    """Numbers as a reader wants them: fractions to 4 places, large ints grouped."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)
