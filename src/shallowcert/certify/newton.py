"""The thesis' Newton iteration on the radius, kept for comparison, with re-verification.

With ``g(e) = min_j J_j(e)`` the smallest margin lower bound of the predicted class at
radius ``e`` (input units), the iteration starts at ``e_0 = 0`` and repeats

    e_{t+1} = clip(e_t - g(e_t) / g'(e_t), 0, max_radius)

(``g'`` by automatic differentiation through the bound engine) until the step is within
``atol + rtol * e_t``. ``g`` is typically concave and decreasing in ``e``, so the tangent
lies above it and the iterates approach the zero *from above*: the value Newton returns is
often *not* certified. It is therefore re-evaluated: where the certificate holds there it
is the radius; elsewhere the point is counted as a *Newton failure* and gets the largest
iterate at which ``g > 0`` was computed (0 if none; the iteration always evaluates 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from shallowcert.certify.search import SearchSettings

# (point indices, radii) -> smallest margin lower bound (m,), differentiable w.r.t. the radii
MarginFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class NewtonOutcome:
    radius: torch.Tensor          # (N,) re-verified radius (see the module docstring)
    held_somewhere: torch.Tensor  # bool (N,): g(0) > 0
    returned: torch.Tensor        # (N,) the value the Newton iteration returned
    verified: torch.Tensor        # bool (N,): the certificate holds at ``returned``
    evaluations: torch.Tensor     # (N,) bound evaluations (with derivative) per point
    rounds: int

    @property
    def failures(self) -> int:
        """Points certified at 0 whose Newton value does not re-verify."""
        return int((self.held_somewhere & ~self.verified).sum())


def _value_and_slope(margin: MarginFn, index: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.enable_grad():
        radius = eps.detach().clone().requires_grad_(True)
        value = margin(index, radius)
        (slope,) = torch.autograd.grad(value.sum(), radius, allow_unused=True)
    if slope is None:
        slope = torch.zeros_like(radius)
    return value.detach(), slope.detach()


def newton_search(margin: MarginFn, n: int, *, dtype: torch.dtype, settings: SearchSettings,
                  device: torch.device | str = "cpu") -> NewtonOutcome:
    """Run the Newton iteration (module docstring) for ``n`` points, then re-verify.

    The state, the arguments of ``margin`` and the outcome live on ``device`` (where
    ``margin`` must return its values).
    """
    eps = torch.zeros(n, dtype=dtype, device=device)
    best = torch.full((n,), -1.0, dtype=dtype, device=device)   # largest radius evaluated with g > 0
    held_at_zero = torch.zeros(n, dtype=torch.bool, device=device)
    evaluations = torch.zeros(n, dtype=torch.long, device=device)
    active = torch.ones(n, dtype=torch.bool, device=device)
    rounds = 0
    while bool(active.any()) and rounds < settings.max_rounds:
        index = torch.nonzero(active).squeeze(1)
        e = eps[index]
        value, slope = _value_and_slope(margin, index, e)
        rounds += 1
        evaluations[index] += 1
        held = value > 0
        best[index] = torch.where(held, torch.maximum(best[index], e), best[index])
        if rounds == 1:
            held_at_zero[index] = held
        usable = (slope < 0) & torch.isfinite(slope)
        step = torch.where(usable, value / slope, torch.zeros_like(value))
        new = (e - step).clamp(min=0, max=settings.max_radius)
        converged = (new - e).abs() <= settings.atol + settings.rtol * e
        eps[index] = torch.where(held_at_zero[index], new, e)
        active[index] = held_at_zero[index] & usable & ~converged
    returned = torch.where(held_at_zero, eps, torch.zeros_like(eps))
    verify_index = torch.nonzero(held_at_zero).squeeze(1)
    verified = torch.zeros(n, dtype=torch.bool, device=device)
    if verify_index.numel():
        with torch.no_grad():
            verified[verify_index] = margin(verify_index, returned[verify_index]) > 0
        evaluations[verify_index] += 1
    radius = torch.where(verified, returned, best.clamp(min=0))
    return NewtonOutcome(radius, held_at_zero, returned, verified, evaluations, rounds)
