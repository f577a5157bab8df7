"""Tables over seeds: each seed builds the same rows, and the report shows them cell by cell
as mean ± sample standard deviation (see :func:`shallowcert.report.stats.mean_sd`).

A cell whose value is the same for every seed (a name, a parameter count, epsilon) is shown
as it is; a numeric cell that varies becomes a :class:`~shallowcert.report.stats.Spread`.
When the seeds' rows do not line up (a different number of rows, or a text cell that
differs, e.g. another student chosen for pruning), the table lists every seed's rows with
a ``seed`` column instead of inventing an average. A table built with ``partial=True``
allows numeric cells that some seeds leave empty (``None``: nothing to average in that
seed, e.g. no settled point): such a cell is the mean ± sd of the seeds that have a value.
"""

from __future__ import annotations

from typing import Any

from shallowcert.report.document import Table
from shallowcert.report.stats import is_finite_number, mean_sd

Rows = list[list[Any]]


def _merge_cell(values: list[Any], *, partial: bool = False) -> Any:
    """The value of a cell over seeds; raises ValueError when the seeds disagree on a non-number
    (``partial``: the seeds without a value, ``None``, are left out of a numeric cell)."""
    present = [v for v in values if v is not None] if partial else values
    if present and len(present) < len(values) and all(is_finite_number(v) for v in present):
        return _merge_cell(present)
    if all(v == values[0] for v in values):
        return values[0]
    if all(is_finite_number(v) for v in values):
        return mean_sd(values)
    raise ValueError(f"cell values differ across seeds: {values}")


def merge_rows(rows_by_seed: list[Rows], *, partial: bool = False) -> Rows:
    """Cell-by-cell merge of the seeds' rows (same shape); ValueError when they do not line up."""
    if len({len(rows) for rows in rows_by_seed}) != 1:
        raise ValueError("the seeds have different numbers of rows")
    merged = []
    for rows in zip(*rows_by_seed):
        if len({len(row) for row in rows}) != 1:
            raise ValueError("the seeds have rows of different lengths")
        merged.append([_merge_cell(list(cells), partial=partial) for cells in zip(*rows)])
    return merged


def seed_note(seeds: list[int]) -> str:
    if len(seeds) == 1:
        return f" One seed ({seeds[0]})."
    return f" Mean ± sample standard deviation over n={len(seeds)} seeds ({', '.join(map(str, seeds))})."


def seed_table(label: str, caption: str, headers: list[str], rows_by_seed: dict[int, Rows], *,
               partial: bool = False) -> Table:
    """A table over seeds: merged cells when the seeds' rows line up, else every seed's rows
    (``partial``: see the module docstring)."""
    seeds = list(rows_by_seed)
    try:
        rows = merge_rows(list(rows_by_seed.values()), partial=partial)
    except ValueError:
        return Table(label, caption + " The seeds' rows differ, so each seed is listed.", ["seed"] + headers,
                     [[seed] + row for seed, rows in rows_by_seed.items() for row in rows])
    return Table(label, caption + seed_note(seeds), headers, rows)
