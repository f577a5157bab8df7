"""The L-infinity geometry shared by FGSM, PGD, BIM and MIM.

Ball of radius ``eps`` (input units) around ``x0``: ``{x : max_j |x_j - x0_j| <= eps}``.
Projection onto the ball intersected with the domain ``[0, 1]^d`` (exact, coordinate-wise,
in Foolbox's order)::

    project(x) = clip(x0 + clip(x - x0, -eps, eps), 0, 1)

Because ``x0`` lies in ``[0, 1]``, the outer clip never leaves the ball.
"""

from __future__ import annotations

import torch
from torch import Tensor

from shallowcert.attacks.base import IterativeAttack, per_point


class LinfAttack(IterativeAttack):
    """Iterative L-infinity attack: direction ``sign(g)``, projection as in the module docstring."""

    norm = "linf"

    def random_point(self, x0: Tensor, eps: Tensor, generator: torch.Generator) -> Tensor:
        """``clip(x0 + u, 0, 1)`` with ``u`` uniform in ``[-eps, eps]^d`` per point."""
        u = torch.rand(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
        return (x0 + (2.0 * u - 1.0) * per_point(eps, x0)).clamp(0.0, 1.0)

    def direction(self, gradient: Tensor, memory: Tensor) -> tuple[Tensor, Tensor]:
        """``sign(g)``: the steepest ascent direction of the L-infinity ball."""
        return gradient.sign(), memory

    def project(self, x: Tensor, x0: Tensor, eps: Tensor) -> Tensor:
        radius = per_point(eps, x)
        return (x0 + (x - x0).clamp(-radius, radius)).clamp(0.0, 1.0)

    def distance(self, x: Tensor, x0: Tensor) -> Tensor:
        """``max_j |x_j - x0_j|`` per point."""
        return (x - x0).flatten(1).abs().amax(dim=1)
