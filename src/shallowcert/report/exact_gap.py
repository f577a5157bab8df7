"""Certified against exact radius: Table E.1 and Figure E.1 of the certification section.

Each certification model's ``<model>-exact.json`` (see :mod:`shallowcert.study.exact_gap`)
holds, per point, the certified radius ``c`` and the exact radius bracket
``lower <= r* <= upper`` found by the complete verifier (radii in input units, inputs in
[0, 1]). A point is *settled* when ``upper - lower <= rtol * upper``; only settled points
enter the exact-radius columns, so an unsettled point (a teacher that did not finish) is
counted, never averaged in. Over the settled points ``S`` of one seed:

* exact radius: ``mean_S lower`` and ``mean_S upper`` (the bracket of the mean exact radius);
* gap: ``mean_S (lower - c)``, what the bound gives away (``>= 0``: ``c`` was proved, and
  ``lower`` is the largest radius proved, so ``c <= lower <= r*``);
* ratio: ``mean_S c / mean_S lower``, the share of the exact radius the certificate reaches
  (ratio of means, defined whenever some settled point has ``lower > 0``);
* the same share bounded over *every* point ``B`` with a counterexample (settled or not):
  ``mean_B c / mean_B upper <= mean_B c / mean_B r* <= mean_B c / mean_B lower``, since
  ``lower <= r* <= upper`` — what the brackets prove even where the verifier ran out of time.

Seeds are aggregated cell by cell (mean ± sd), a seed without settled points left out of
the exact-radius cells.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shallowcert.figures import new_panels, save_figure

HEADERS = ["model", "points", "settled", "certified radius", "certified radius (settled)",
           "exact radius, lower (settled)", "exact radius, upper (settled)", "gap: exact lower − certified (settled)",
           "certified / exact lower (settled)", "certified / exact, at least (all bracketed)",
           "certified / exact, at most (all bracketed)"]


@dataclass(frozen=True)
class ExactPoints:
    """One model's per-point exact radius brackets for one seed (float64 arrays, ``upper`` inf
    where no counterexample was found; ``settled`` bool)."""

    lower: np.ndarray
    upper: np.ndarray
    certified: np.ndarray
    settled: np.ndarray

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "ExactPoints":
        """From the per-point lists of ``<model>-exact.json``
        (:meth:`shallowcert.verify.exact.ExactRadius.per_point`)."""
        return cls(np.asarray(record["lower"], dtype=np.float64),
                   np.asarray([math.inf if u is None else u for u in record["upper"]], dtype=np.float64),
                   np.asarray(record["certified"], dtype=np.float64), np.asarray(record["settled"], dtype=bool))

    @classmethod
    def read(cls, path: Path) -> "ExactPoints":
        return cls.from_record(json.loads(path.read_text()))


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if values.size else None


def gap_row(name: str, points: ExactPoints) -> list[Any]:
    """One model's row of Table E.1 for one seed (module docstring; ``None``: no settled point)."""
    s = points.settled
    lower = _mean(points.lower[s])
    certified = _mean(points.certified[s])
    ratio = certified / lower if lower is not None and certified is not None and lower > 0 else None
    bracketed = np.isfinite(points.upper)
    share = _mean(points.certified[bracketed])
    below, above = _mean(points.upper[bracketed]), _mean(points.lower[bracketed])
    return [name, int(points.lower.size), int(s.sum()), _mean(points.certified), certified, lower,
            _mean(points.upper[s]), _mean(points.lower[s] - points.certified[s]), ratio,
            share / below if share is not None and below else None,
            share / above if share is not None and above else None]


@dataclass(frozen=True)
class PanelCounts:
    """What one model's panel of Figure E.1 shows, over every seed."""

    settled: int
    bracketed: int  # unsettled, drawn as a bar [lower, upper]
    omitted: int    # unsettled without a counterexample (no finite upper end)


def shown_models(models: dict[str, dict[int, ExactPoints]]) -> list[str]:
    """The panels of Figure E.1: every student, and a teacher when one of its points settled."""
    return [name for name, seeds in models.items()
            if not name.startswith("teacher") or any(p.settled.any() for p in seeds.values())]


def _counts(seeds: dict[int, ExactPoints]) -> PanelCounts:
    finite = [np.isfinite(p.upper) for p in seeds.values()]
    return PanelCounts(sum(int(p.settled.sum()) for p in seeds.values()),
                       sum(int((~p.settled & f).sum()) for p, f in zip(seeds.values(), finite)),
                       sum(int((~p.settled & ~f).sum()) for p, f in zip(seeds.values(), finite)))


def plot_exact_gap(models: dict[str, dict[int, ExactPoints]], path: Path, *, title: str) -> dict[str, PanelCounts]:
    """Draw Figure E.1 into ``path``: one panel per shown model (:func:`shown_models`; ``models``
    maps a name to its points per seed), per point x = exact radius, y = certified radius,
    with the line y = x. Settled points are dots at ``x = lower``; unsettled ones are
    horizontal bars from ``lower`` to ``upper`` (hollow marker at ``lower``), left out when
    ``upper`` is infinite. Returns the counts of every model, shown or not."""
    names = shown_models(models)
    fig, axes = new_panels(len(names), 3.6 * len(names), 3.8)
    for ax, name in zip(axes, names):
        top = 0.0
        for seed_index, (seed, p) in enumerate(models[name].items()):
            colour = f"C{seed_index % 10}"
            bar = ~p.settled & np.isfinite(p.upper)
            ax.scatter(p.lower[p.settled], p.certified[p.settled], s=12, color=colour, label=f"seed {seed}")
            if bar.any():
                ax.errorbar(p.lower[bar], p.certified[bar], xerr=[np.zeros(int(bar.sum())), (p.upper - p.lower)[bar]],
                            fmt="o", mfc="none", color=colour, markersize=4, elinewidth=1, capsize=2)
            top = max([top, *p.upper[p.settled | bar].tolist(), *p.certified.tolist(), *p.lower.tolist()])
        top = 1.05 * top if top > 0 else 1.0
        ax.plot([0.0, top], [0.0, top], linestyle="--", color="grey", linewidth=1, label="y = x")
        ax.set_xlim(0.0, top)
        ax.set_ylim(0.0, top)
        ax.set_xlabel("exact radius (L-inf, input units)")
        ax.set_ylabel("certified radius (input units)")
        counts = _counts(models[name])
        ax.set_title(f"{name}: {counts.settled} settled, {counts.bracketed} bracketed", fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle(title, fontsize=10)
    save_figure(fig, path)
    return {name: _counts(seeds) for name, seeds in models.items()}
