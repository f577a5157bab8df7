"""Matplotlib figures written atomically, without a display."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
from matplotlib.figure import Figure  # noqa: E402

from shallowcert.atomic import atomic_path  # noqa: E402


def new_figure(width: float = 6.0, height: float = 4.0) -> tuple[Figure, "plt.Axes"]:
    fig, ax = plt.subplots(figsize=(width, height), dpi=100)
    return fig, ax


def new_panels(columns: int, width: float = 6.0, height: float = 4.0) -> tuple[Figure, list["plt.Axes"]]:
    """A figure with ``columns`` side-by-side axes."""
    fig, axes = plt.subplots(1, columns, figsize=(width, height), dpi=100, squeeze=False)
    return fig, list(axes[0])


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> None:
    """Save ``fig`` as PNG at ``path`` atomically and release it."""
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
