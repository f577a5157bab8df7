"""Matplotlib figures written atomically, without a display.

matplotlib is imported on the first figure, not with this module: it costs about 0.3 s,
which commands that draw nothing (``shallowcert verify``) should not pay.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import TYPE_CHECKING

from shallowcert.atomic import atomic_path

if TYPE_CHECKING:
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure


def pyplot() -> ModuleType:
    """``matplotlib.pyplot`` on the display-less Agg backend (chosen before pyplot loads)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot

    return matplotlib.pyplot


def new_figure(width: float = 6.0, height: float = 4.0) -> tuple[Figure, plt.Axes]:
    fig, ax = pyplot().subplots(figsize=(width, height), dpi=100)
    return fig, ax


def new_panels(columns: int, width: float = 6.0, height: float = 4.0, *,
               rows: int = 1) -> tuple[Figure, list[plt.Axes]]:
    """A figure with ``rows`` × ``columns`` axes, returned row by row."""
    fig, axes = pyplot().subplots(rows, columns, figsize=(width, height), dpi=100, squeeze=False)
    return fig, [ax for row in axes for ax in row]


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> None:
    """Save ``fig`` as PNG at ``path`` atomically and release it."""
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    pyplot().close(fig)
