"""The sound shortcut: the zero of a margin bound that is affine in the radius.

Fix the intermediate (pre-activation) bounds computed for the ball of radius ``R``. They
stay valid for every smaller ball, so the back-substituted lower bound of a specification
row keeps the form

    J(e) = b + min_{x' in B(e)} lam . x',     B(e) = {x' : ||x' - c||_inf <= e} ∩ [lo, hi]^d,

for every ``e <= R``, with the same ``b`` and ``lam``. Writing ``a = b + lam . c``:

* without a domain, ``J(e) = a - e * ||lam||_1`` and ``J > 0`` for every ``e < a / ||lam||_1``;
* with the domain, coordinate ``i`` can move against ``lam_i`` only by
  ``d_i = c_i - lo`` (``lam_i > 0``) or ``hi - c_i`` (``lam_i < 0``), so
  ``J(e) = a - sum_i |lam_i| * min(e, d_i)``: convex, piecewise affine and non-increasing;
  its zero lies on the segment between the sorted ``d_i`` where the sum crosses ``a``
  (``inf`` if ``a > sum_i |lam_i| d_i``: the whole domain is certified).

The certificate holds at ``e`` when every row is positive, so the zero of a point is the
smallest zero of its rows; every ``e < min(R, zero)`` is proved by the one evaluation at ``R``.
"""

from __future__ import annotations

import math

import torch


def affine_zero(offset: torch.Tensor, weight: torch.Tensor, center: torch.Tensor,
                domain: tuple[float, float] | None) -> torch.Tensor:
    """Smallest zero over rows of ``J(e)`` (module docstring), one per point.

    ``offset`` ``b``: (N, K); ``weight`` ``lam``: (N, K, *input); ``center`` ``c``: (N, *input).
    Returns (N,) radii in input units: 0 where some row is already <= 0 at the centre,
    ``inf`` where every row stays positive for every radius.
    """
    lam = weight.flatten(2)
    c = center.flatten(1).unsqueeze(1)                      # (N, 1, D)
    a = offset + (lam * c).sum(-1)                          # J(0), (N, K)
    w = lam.abs()
    if domain is None:
        total = w.sum(-1)
        zero = torch.where(total > 0, a / total.clamp(min=torch.finfo(a.dtype).tiny), torch.full_like(a, math.inf))
    else:
        lo, hi = domain
        reach = torch.where(lam > 0, c - lo, hi - c).expand_as(lam).clamp(min=0)
        reach, order = torch.sort(reach, dim=-1)
        w = torch.gather(w, -1, order)
        cum_w = torch.cumsum(w, -1)
        cum_wd = torch.cumsum(w * reach, -1)
        at_break = cum_wd + reach * (cum_w[..., -1:] - cum_w)  # sum_i w_i min(d_(j), d_i)
        j = (at_break < a.unsqueeze(-1)).sum(-1, keepdim=True)  # breakpoints before the zero
        before = (j - 1).clamp(min=0)
        used_wd = torch.where(j > 0, torch.gather(cum_wd, -1, before), torch.zeros_like(a.unsqueeze(-1)))
        used_w = torch.where(j > 0, torch.gather(cum_w, -1, before), torch.zeros_like(a.unsqueeze(-1)))
        slope = (cum_w[..., -1:] - used_w).squeeze(-1)
        inside = (a.unsqueeze(-1) - used_wd).squeeze(-1) / slope.clamp(min=torch.finfo(a.dtype).tiny)
        zero = torch.where(j.squeeze(-1) >= lam.shape[-1], torch.full_like(a, math.inf), inside)
    zero = torch.where(a > 0, zero, torch.zeros_like(a))
    return zero.min(dim=1).values

