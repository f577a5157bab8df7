"""The certification-area figure: sorted certified radii coloured by running accuracy."""

from __future__ import annotations

import os

from shallowcert.certify.area import CertificationArea
from shallowcert.figures import new_figure, save_figure


def plot_certification_area(area: CertificationArea, path: str | os.PathLike[str], *, title: str = "") -> None:
    """Write a PNG: x = fraction of points (most robust first), y = certified radius (input units),
    colour = running accuracy of the points up to x; the shaded area equals the mean radius."""
    fig, ax = new_figure()
    n = len(area.radii)
    fraction = [(k + 1) / n for k in range(n)]
    radii = area.radii.tolist()
    ax.fill_between([0.0] + fraction, radii[:1] + radii, step="pre", alpha=0.15, color="grey")
    points = ax.scatter(fraction, radii, c=area.running_accuracy.tolist(), cmap="viridis", vmin=0.0, vmax=1.0, s=6)
    fig.colorbar(points, ax=ax, label="running accuracy")
    ax.set_xlabel("fraction of points (sorted by certified radius)")
    ax.set_ylabel("certified radius (L-inf, input units)")
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(bottom=0.0)
    ax.set_title(title or f"certification area: mean radius {area.mean_radius:.4g}")
    save_figure(fig, path)
