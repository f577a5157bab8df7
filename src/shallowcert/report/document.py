"""A tiny document model: the report is a list of blocks rendered to Markdown and HTML."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from shallowcert.report.stats import Interval, Spread, mean_sd


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
    holds: bool | None  # None: a stage is missing, or the difference is within noise
    evidence: str
    test: str = ""  # the statistical test that decided it ("" when none could run)
    effect: Interval | None = None  # the effect and its interval (over the comparisons, for a claim over several)

    @property
    def verdict(self) -> str:
        if self.holds is None:
            return "undecided (difference within noise)" if self.test else "undecided"
        return "holds" if self.holds else "does not hold"


@dataclass
class Document:
    title: str
    blocks: list[Heading | Paragraph | Table | Figure | Code] = field(default_factory=list)

    def add(self, *blocks: Heading | Paragraph | Table | Figure | Code) -> None:
        self.blocks.extend(blocks)

    def tables(self) -> list[Table]:
        return [b for b in self.blocks if isinstance(b, Table)]


def cell(value: Any, *, digits: int = 4) -> str:
    """Numbers as a reader wants them: fractions to ``digits`` places, large ints grouped, a
    value over seeds as ``mean ± sd`` (the mean alone for one seed or when every seed agrees)."""
    if value is None:
        return "–"
    if isinstance(value, Spread):
        if value.sd is None:
            return cell(value.mean, digits=digits)
        if value.integers:
            return f"{value.mean:,.1f} ± {value.sd:,.1f}"
        return f"{cell(value.mean, digits=digits)} ± {cell(value.sd, digits=digits)}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def spread_text(values: Sequence[float], *, digits: int = 4) -> str:
    """``values`` (one per seed) as ``mean ± sd``, or the value itself when every seed agrees."""
    return cell(values[0] if len(set(values)) == 1 else mean_sd(values), digits=digits)
