"""The certification areas of each certification teacher and its distilled student, overlaid.

The thesis' question is whether a student carries a larger certificate than its teacher,
so each pair shares one panel: per model, the certified radii of the predicted class on the
same test points, sorted in decreasing order, against the fraction of points (the curve of
the per-model certification-area figure, without its colouring); the area under a curve is
that model's mean radius. One curve per seed, the first solid, the others faint.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shallowcert.figures import new_panels, save_figure

Pair = tuple[str, str]  # (teacher, the student distilled from it): model names of stage 6
COLOURS = {"teacher": "tab:blue", "student": "tab:orange"}


def plot_area_pairs(radii: dict[str, list[np.ndarray]], rows: list[list[Pair]], path: Path, *, eps: float) -> None:
    """Write the PNG, one panel per pair, one line of panels per list in ``rows`` (one teacher
    kind each, every list as long): ``radii[model]`` holds one array of radii (input units) per
    seed; a dotted line marks the certification radius ``eps``."""
    columns = len(rows[0])
    fig, axes = new_panels(columns, width=5.5 * columns, height=4.0 * len(rows), rows=len(rows))
    for ax, pair in zip(axes, [pair for row in rows for pair in row]):
        for name in pair:
            colour = COLOURS["teacher" if "teacher" in name else "student"]
            for seed, values in enumerate(radii[name]):
                ordered = np.sort(values)[::-1]
                fraction = np.arange(1, len(ordered) + 1) / len(ordered)
                label = f"{name} (mean radius {np.mean([v.mean() for v in radii[name]]):.4g})" if seed == 0 else None
                ax.step(fraction, ordered, where="pre", color=colour, alpha=1.0 if seed == 0 else 0.3, label=label)
        ax.axhline(eps, color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel("fraction of points (sorted by certified radius)")
        ax.set_ylabel("certified radius (L-inf, input units)")
        ax.set_xlim(0.0, 1.0)
        ax.set_ylim(bottom=0.0)
        ax.set_title(f"{pair[0]} and {pair[1]}")
        ax.legend(fontsize=8)
    save_figure(fig, path)
