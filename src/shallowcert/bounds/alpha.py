"""alpha-CROWN: optimise the lower ReLU slopes of the final back-substitution.

Every lower slope ``a`` in [0, 1] gives a sound bound (``relu(z) >= a z`` for all ``z``),
so the slopes of the unstable neurons of every ReLU are free parameters, one set per
point and specification row (``(N, K, *shape)``). They start at CROWN's slopes and take
``steps`` projected Adam steps (learning rate ``lr``) maximising the bound; the best slopes
seen per row are kept, so the result is never below CROWN's. Intermediate bounds stay
CROWN's (not re-optimised).
"""

from __future__ import annotations

import torch

from shallowcert.bounds.backward import back_substitute, concretize
from shallowcert.bounds.intermediate import Bounds
from shallowcert.bounds.network import Network
from shallowcert.bounds.relaxation import Relaxation, relax


def _final_bound(network: Network, bounds: Bounds, slopes: dict[int, torch.Tensor], spec: torch.Tensor,
                 mid: torch.Tensor, rad: torch.Tensor) -> torch.Tensor:
    relaxations = {p: relax(lower, upper, lower_slope=slopes[p]) for p, (lower, upper) in bounds.items()}
    bound = back_substitute(network.steps, spec, relaxations)
    return concretize(bound.coefficients, mid, rad)[0] + bound.offset_lower


def optimise_slopes(network: Network, bounds: Bounds, spec: torch.Tensor, mid: torch.Tensor, rad: torch.Tensor,
                    *, steps: int, lr: float) -> dict[int, Relaxation]:
    """The relaxations with optimised lower slopes (the best found per point and spec row).

    The optimisation runs on detached bounds; the returned relaxations use the caller's
    ``bounds`` and detached slopes, so they stay differentiable w.r.t. the model.
    """
    rows = spec.shape[1]
    fixed = {p: (lower.detach(), upper.detach()) for p, (lower, upper) in bounds.items()}
    best = {p: relax(lower, upper, lower_slope="crown").lower_slope.expand(-1, rows, *lower.shape[1:]).clone()
            for p, (lower, upper) in fixed.items()}
    with torch.enable_grad():
        slopes = {p: slope.clone().requires_grad_(True) for p, slope in best.items()}
        optimiser = torch.optim.Adam(list(slopes.values()), lr=lr)
        best_value = None
        for step in range(steps + 1):
            value = _final_bound(network, fixed, slopes, spec.detach(), mid.detach(), rad.detach())
            current = value.detach()
            if best_value is None:
                best_value = current
            else:
                improved = current > best_value
                best_value = torch.where(improved, current, best_value)
                for p, slope in slopes.items():
                    mask = improved.reshape(*improved.shape, *([1] * (slope.dim() - 2)))
                    best[p] = torch.where(mask, slope.detach(), best[p])
            if step == steps:
                break
            grads = torch.autograd.grad(-value.sum(), list(slopes.values()))
            optimiser.zero_grad()
            for slope, grad in zip(slopes.values(), grads):
                slope.grad = grad
            optimiser.step()
            with torch.no_grad():
                for slope in slopes.values():
                    slope.clamp_(0.0, 1.0)
    return {p: relax(lower, upper, lower_slope=best[p]) for p, (lower, upper) in bounds.items()}
