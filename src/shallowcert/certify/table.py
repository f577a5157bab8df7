"""The per-point radii table (``radii.csv``)."""

from __future__ import annotations

import csv
import io
import os

import torch

from shallowcert import atomic
from shallowcert.certify.radius import RadiusResult


def write_radii_csv(path: str | os.PathLike[str], result: RadiusResult, labels: torch.Tensor, *,
                    attack_distance: torch.Tensor | None = None) -> None:
    """One row per point: index, label, predicted, correct, certified radius of the predicted
    class (input units, ``result.dtype``) and, when given, the closest adversarial distance."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["index", "label", "predicted", "correct", f"radius_{result.dtype}"]
    writer.writerow(header + (["attack_distance"] if attack_distance is not None else []))
    for i in range(len(labels)):
        row = [i, int(labels[i]), int(result.predicted[i]), int(result.predicted[i] == labels[i]),
               repr(float(result.radius[i]))]
        writer.writerow(row + ([repr(float(attack_distance[i]))] if attack_distance is not None else []))
    atomic.write_text(path, buffer.getvalue())
