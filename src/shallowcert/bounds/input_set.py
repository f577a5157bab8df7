"""The input set: an L-infinity ball per point (or a box), optionally clipped to the data domain."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from shallowcert.errors import UserError


@dataclass(frozen=True)
class InputSet:
    """``{x : ||x - center||_inf <= eps[n]} ∩ [lo, hi]^d`` for every point ``n``.

    ``center`` is ``(N, C, H, W)`` or ``(N, D)`` in input units (data in [0, 1]);
    ``eps`` is an ``(N,)`` tensor of L-inf radii in the same units, or a tensor shaped like
    ``center`` giving one radius per coordinate (the box ``|x_i - c_i| <= eps_i``, e.g. a
    VNN-LIB input box as centre and half-widths); ``domain`` is the data range ``(lo, hi)``
    the set is intersected with, or ``None`` for no clipping.
    The engine works in ``center.dtype`` (use float64 for certification).
    """

    center: torch.Tensor
    eps: torch.Tensor
    domain: tuple[float, float] | None = (0.0, 1.0)

    def __post_init__(self) -> None:
        center, eps = self.center, self.eps
        if not isinstance(center, torch.Tensor) or not center.is_floating_point() or center.dim() not in (2, 4):
            raise UserError("InputSet center must be a floating tensor shaped (N, C, H, W) or (N, D)")
        if not isinstance(eps, torch.Tensor) or (tuple(eps.shape) != (center.shape[0],)
                                                 and eps.shape != center.shape):
            raise UserError(f"InputSet eps must be a tensor of shape ({center.shape[0]},), one radius per point, "
                            f"or shaped like the center {tuple(center.shape)}, one radius per coordinate")
        if not bool(torch.isfinite(center).all()):
            raise UserError("InputSet center contains NaN or infinite values")
        if not bool(torch.isfinite(eps).all()) or bool((eps < 0).any()):
            raise UserError("epsilon must be finite and >= 0 (NaN, inf or negative radius given)")
        if self.domain is not None:
            lo, hi = self.domain
            if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
                raise UserError(f"InputSet domain must be (lo, hi) with lo <= hi, got {self.domain}")

    @property
    def radius(self) -> torch.Tensor:
        """``eps`` broadcast to the shape of ``center`` (same dtype and device)."""
        eps = self.eps.to(dtype=self.center.dtype, device=self.center.device)
        if eps.shape == self.center.shape:
            return eps
        return eps.reshape(-1, *([1] * (self.center.dim() - 1))).expand_as(self.center)

    def box(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The box ``[max(lo, c - eps), min(hi, c + eps)]`` as ``(lower, upper)``.

        Raises :class:`UserError` when the ball misses the domain (empty set).
        """
        lower, upper = self.center - self.radius, self.center + self.radius
        if self.domain is not None:
            lower, upper = lower.clamp(min=self.domain[0]), upper.clamp(max=self.domain[1])
            if bool((lower > upper).any()):
                raise UserError(f"the eps-ball around a point does not meet the domain {self.domain}: empty input set")
        return lower, upper

    def mid_radius(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The box as centre and radius: ``((lower + upper) / 2, (upper - lower) / 2)``.

        Without a domain this is exactly ``(center, eps)``.
        """
        if self.domain is None:
            return self.center, self.radius
        lower, upper = self.box()
        return (lower + upper) / 2, (upper - lower) / 2
