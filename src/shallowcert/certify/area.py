"""The certification area: per-point certified radii sorted, with the running accuracy.

Points are sorted by certified radius, largest first (``r_(1) >= r_(2) >= ... >= r_(N)``).
Along that order the *running accuracy* at rank ``k`` is the fraction of correctly
classified points among the ``k`` most robust ones,

    running_accuracy_k = (1/k) * sum_{i<=k} correct_(i),

and the *area* under the curve ``k/N -> r_(k)`` is the average radius
``(1/N) * sum_i r_i`` (input units). Radii are those of the predicted class; a
misclassified point has no certificate for its true label, so the *true-label* average
counts it as radius 0: ``(1/N) * sum_i r_i * correct_i``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class CertificationArea:
    radii: torch.Tensor             # (N,) float64, sorted in decreasing order
    correct: torch.Tensor           # (N,) bool, in the same order
    running_accuracy: torch.Tensor  # (N,) float64, accuracy of the k most robust points
    mean_radius: float              # area under the sorted-radius curve
    mean_true_label_radius: float   # misclassified points count as radius 0

    def summary(self) -> dict[str, float]:
        return {"mean_radius": self.mean_radius, "mean_true_label_radius": self.mean_true_label_radius,
                "median_radius": float(self.radii[len(self.radii) // 2]) if len(self.radii) else 0.0}


def certification_area(radii: torch.Tensor, correct: torch.Tensor) -> CertificationArea:
    """Sort ``radii`` (N,) decreasingly and compute the running accuracy of ``correct`` (N, bool)."""
    if radii.shape != correct.shape or radii.dim() != 1:
        raise ValueError(f"radii {tuple(radii.shape)} and correct {tuple(correct.shape)} must be equal vectors")
    if len(radii) == 0:
        raise ValueError("the certification area of no points is undefined")
    values = radii.detach().to(torch.float64)
    order = torch.argsort(values, descending=True, stable=True)
    sorted_radii, sorted_correct = values[order], correct[order].bool()
    ranks = torch.arange(1, len(values) + 1, dtype=torch.float64, device=values.device)
    running = torch.cumsum(sorted_correct.double(), dim=0) / ranks
    return CertificationArea(
        radii=sorted_radii,
        correct=sorted_correct,
        running_accuracy=running,
        mean_radius=float(values.mean()),
        mean_true_label_radius=float((values * correct.double()).mean()),
    )
