"""Batched bracketing search for the largest radius at which a certificate holds.

Each point carries a bracket ``[lo, hi]``: ``lo`` is the largest radius at which the bound
engine was *run* and the certificate *held* (every margin lower bound > 0), ``hi`` the
smallest radius at which it was run and failed (``inf`` until one fails). The result is
``lo``: never a midpoint, extrapolation or interpolation that was not itself evaluated.

All unfinished points are evaluated together, one radius per point. The next radius of a
point is chosen from its last evaluation:

* **shortcut after a failure at ``e``** — with the intermediate bounds of radius ``e`` fixed,
  each margin bound is an affine (with domain clipping piecewise-affine) decreasing
  function of the radius ``e' <= e``, and its zero ``s < e`` proves every ``e' < s`` (the
  relaxation computed for the larger ball is valid for every smaller ball). The search
  re-evaluates at ``s * (1 - rtol / 4)``, slightly inside, where a fresh evaluation with
  tighter intermediate bounds almost always holds;
* **extrapolation after a success at ``e``** — the same affine form's zero ``r > e`` is an
  optimistic guess of the radius (valid bounds for ``e' > e`` are looser); evaluated next,
  its failure hands a new shortcut back;
* **growth / bisection** — without a proposal, or when a proposal falls outside the inner
  part of the bracket, the radius grows geometrically (``hi = inf``) or the bracket is
  halved; after two probes in a row that did not halve a bracket the search bisects, so the
  bracket at least halves every three evaluations.

A point stops when ``hi - lo <= atol + rtol * lo``, when it holds at ``max_radius``, when it
fails at radius 0 (no certificate at all: radius 0), or after ``max_rounds`` evaluations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from shallowcert.attacks.checks import non_negative_float, positive_float, positive_int
from shallowcert.errors import UserError


@dataclass(frozen=True)
class Probe:
    """One evaluation of the certificate for a group of points at radii ``eps``.

    ``held``: bool ``(m,)``, all margin lower bounds > 0; ``zero``: ``(m,)`` zero of the
    affine form of the smallest margin bound (``inf`` if it never reaches 0), or ``None``
    for bound methods without an affine form (interval arithmetic).
    """

    held: torch.Tensor
    zero: torch.Tensor | None


ProbeFn = Callable[[torch.Tensor, torch.Tensor], Probe]  # (point indices, radii) -> Probe


@dataclass(frozen=True)
class SearchSettings:
    """Tolerances and limits of the radius search (radii in input units)."""

    rtol: float = 0.01        # stop when hi - lo <= atol + rtol * lo
    atol: float = 1e-5
    start: float = 1e-3       # first radius > 0 when no affine form proposes one
    growth: float = 2.0       # geometric growth while no failure bounds the radius
    max_radius: float = 1.0   # the width of the [0, 1] domain: a ball of radius 1 covers it
    max_rounds: int = 40

    def __post_init__(self) -> None:
        positive_float("rtol", self.rtol)
        non_negative_float("atol", self.atol)
        positive_float("start", self.start)
        positive_float("max_radius", self.max_radius)
        positive_int("max_rounds", self.max_rounds)
        if not self.growth > 1:
            raise UserError(f"growth must be > 1, got {self.growth}")


@dataclass(frozen=True)
class SearchOutcome:
    radius: torch.Tensor       # (N,) largest radius evaluated and held (0 when none held)
    held_somewhere: torch.Tensor  # bool (N,): the certificate held at least at radius 0
    evaluations: torch.Tensor  # (N,) int: bound evaluations spent on each point
    rounds: int                # batched evaluations


def bracket_search(probe: ProbeFn, n: int, *, dtype: torch.dtype, settings: SearchSettings) -> SearchOutcome:
    """Run the bracketing search (module docstring) for ``n`` points with ``probe``."""
    lo = torch.full((n,), -1.0, dtype=dtype)              # -1: nothing held yet
    hi = torch.full((n,), math.inf, dtype=dtype)
    eps = torch.zeros(n, dtype=dtype)                       # the first probe certifies at radius 0
    stalls = torch.zeros(n, dtype=torch.long)
    evaluations = torch.zeros(n, dtype=torch.long)
    active = torch.ones(n, dtype=torch.bool)
    rounds = 0
    while bool(active.any()) and rounds < settings.max_rounds:
        index = torch.nonzero(active).squeeze(1)
        e = eps[index]
        result = probe(index, e)
        rounds += 1
        evaluations[index] += 1
        width_before = hi[index] - lo[index]
        new_lo = torch.where(result.held, e, lo[index])
        new_hi = torch.where(result.held, hi[index], e)
        width = new_hi - new_lo
        halved = width <= 0.5 * width_before
        stalls[index] = torch.where(halved | torch.isinf(width_before), 0, stalls[index] + 1)
        lo[index], hi[index] = new_lo, new_hi
        finished = ((~result.held) & (new_lo < 0)) \
            | (result.held & (e >= settings.max_radius)) \
            | (width <= settings.atol + settings.rtol * new_lo)
        nxt = _next_radius(e, result, new_lo, new_hi, stalls[index], settings)
        eps[index] = nxt
        active[index] = ~finished
    return SearchOutcome(radius=lo.clamp(min=0), held_somewhere=lo >= 0, evaluations=evaluations, rounds=rounds)


def _next_radius(e: torch.Tensor, result: Probe, lo: torch.Tensor, hi: torch.Tensor, stalls: torch.Tensor,
                 settings: SearchSettings) -> torch.Tensor:
    """The next radius to evaluate for each point (see the module docstring)."""
    held = result.held
    if result.zero is None:
        proposal = torch.full_like(e, math.nan)
    else:
        zero = result.zero.to(e.dtype)
        proposal = torch.where(held, zero, zero * (1 - settings.rtol / 4))
    # growing: no failure yet (hi = inf), so the last probe held
    growth = torch.where(e > 0, e * settings.growth, torch.full_like(e, settings.start))
    grow = torch.where(proposal > e, proposal, growth).clamp(max=settings.max_radius)
    # bracketed: take the proposal inside the inner part of [lo, hi], else the midpoint
    width = hi - lo
    inner = (proposal > lo + width / 16) & (proposal < hi - width / 16) & (stalls < 2)
    bracketed = torch.where(inner, proposal, (lo + hi) / 2)
    return torch.where(torch.isinf(hi), grow, bracketed)
