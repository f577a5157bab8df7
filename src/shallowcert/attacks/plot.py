"""Accuracy-under-attack curves, several models on one plot."""

from __future__ import annotations

import os
from typing import Mapping, Sequence

from shallowcert.figures import new_figure, save_figure

NORM_NAMES = {"linf": "L-inf", "l2": "L2"}


def plot_robust_accuracy(curves: Mapping[str, Sequence[float]], grid: Sequence[float], *, norm: str, title: str,
                         path: str | os.PathLike[str]) -> None:
    """Robust accuracy (y) against eps (x, input units), one line per label of ``curves``."""
    fig, ax = new_figure()
    for label, accuracy in curves.items():
        ax.plot(grid, accuracy, marker="o", markersize=3, label=label)
    ax.set_xlabel(f"eps ({NORM_NAMES[norm]} radius, input units)")
    ax.set_ylabel("robust accuracy")
    ax.set_ylim(0.0, 1.0)
    ax.set_title(title, fontsize=7)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, path)
