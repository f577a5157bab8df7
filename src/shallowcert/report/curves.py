"""Learning-curve figures: one per stage, one colour per model.

Left panel: cross-entropy (nats) on the training split (dashed) and the validation split
(solid) after each epoch; right panel: the same for accuracy. The first seed is drawn
solid, every other seed faint, so the spread between seeds shows without a legend per
seed. The curves are the ``history`` of each model's row (see
:func:`shallowcert.training.loop.fit`); models without one (loaded, pruned) are left out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Protocol, Sequence, TypeVar

from matplotlib.ticker import MaxNLocator

from shallowcert.figures import new_panels, save_figure
from shallowcert.study.context import History
CURVE_KEYS = ("train_loss", "val_loss", "train_accuracy", "val_accuracy")
FAINT = 0.3


def has_curves(history: History | None) -> bool:
    """True when ``history`` holds every learning-curve measure for each epoch."""
    return history is not None and len(history) > 0 and all(all(k in entry for k in CURVE_KEYS) for entry in history)


def plot_learning_curves(curves: dict[str, list[History]], path: Path, *, title: str) -> Path:
    """Draw ``curves`` (model name -> its history for each seed, first seed first) into ``path``."""
    fig, (loss_ax, acc_ax) = new_panels(2, 11.0, 4.2)
    for i, (name, histories) in enumerate(curves.items()):
        colour = f"C{i % 10}"
        for seed_index, history in enumerate(histories):
            alpha = 1.0 if seed_index == 0 else FAINT
            label = name if seed_index == 0 else None
            epochs = [entry["epoch"] for entry in history]
            for ax, measure in ((loss_ax, "loss"), (acc_ax, "accuracy")):
                ax.plot(epochs, [e[f"val_{measure}"] for e in history], color=colour, alpha=alpha, label=label,
                        marker="o", markersize=3)
                ax.plot(epochs, [e[f"train_{measure}"] for e in history], color=colour, alpha=alpha,
                        linestyle="--", marker="x", markersize=3)
    loss_ax.set_ylabel("cross-entropy (nats)")
    acc_ax.set_ylabel("accuracy")
    for ax in (loss_ax, acc_ax):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    acc_ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"{title} (solid: validation, dashed: train; faint: other seeds)", fontsize=10)
    save_figure(fig, path)
    return path


class HasHistory(Protocol):
    """A result row that may carry its model's learning curves."""

    @property
    def history(self) -> History | None: ...


Row = TypeVar("Row", bound=HasHistory)


def stage_curves(rows_by_seed: Sequence[Sequence[Row]], name_of: Callable[[Row], str]) -> dict[str, list[History]]:
    """Model name -> histories over seeds, from each seed's rows (rows without curves left out)."""
    curves: dict[str, list[History]] = {}
    for rows in rows_by_seed:
        for row in rows:
            if row.history is not None and has_curves(row.history):
                curves.setdefault(name_of(row), []).append(row.history)
    return curves
