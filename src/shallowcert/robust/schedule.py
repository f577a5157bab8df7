"""The epsilon warm-up of certified training (Wong & Kolter, 2018).

Training at the full radius from the first epoch tends to collapse the network to a
constant, so the radius grows linearly over the first ``warmup_epochs`` epochs:

    eps(t) = start + (eps - start) * t / (warmup_epochs - 1)   for t < warmup_epochs,
    eps(t) = eps                                                afterwards,

with ``t`` the 0-based epoch (the same values as ``numpy.linspace(start, eps,
warmup_epochs)``); radii in input units, inputs in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

from shallowcert.checks import non_negative_float, positive_int
from shallowcert.errors import UserError


@dataclass(frozen=True)
class EpsilonSchedule:
    """Linear warm-up from ``start`` to ``eps`` over ``warmup_epochs`` epochs (see the module doc)."""

    eps: float
    warmup_epochs: int = 1
    start: float = 0.001

    def __post_init__(self) -> None:
        non_negative_float("epsilon", self.eps)
        non_negative_float("the starting epsilon", self.start)
        positive_int("warmup_epochs", self.warmup_epochs)
        if self.start > self.eps:
            raise UserError(f"the starting epsilon {self.start} exceeds the final epsilon {self.eps}")

    def __call__(self, epoch: int) -> float:
        """The radius for 0-based ``epoch``."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        if epoch >= self.warmup_epochs - 1:
            return float(self.eps)
        return self.start + (self.eps - self.start) * epoch / (self.warmup_epochs - 1)
