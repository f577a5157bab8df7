"""Batched bracketing search for the largest radius at which a certificate holds.

Each point carries a bracket ``[lo, hi]``: ``lo`` is the largest radius at which the bound
engine was *run* and the certificate *held* (every margin lower bound > 0), ``hi`` the
smallest radius at which it was run and failed (``inf`` until one fails). The result is
``lo``: never a midpoint, extrapolation or interpolation that was not itself evaluated.

All unfinished points are evaluated together, one radius per point. With ``g(e)`` the
smallest margin lower bound at radius ``e`` (typically concave and decreasing), each
evaluation also returns the zero of the affine form of the bound with the intermediate
bounds of radius ``e`` fixed (:mod:`shallowcert.certify.shortcut`). The next radius is:

* **growing** (``hi = inf``): from radius 0, ``first_step`` times the affine form's zero
  (the tangent's zero overshoots since ``g`` bends down: on a Fashion-MNIST network the
  radius was a median 0.53 of it); later, the secant through the last two successes,
  capped by the affine form's zero (that zero alone after a seed's radius, whose value is
  another method's); ``growth * e`` where neither exists;
* **bracketed**: the Illinois variant of regula falsi on ``(lo, g(lo))``, ``(hi, g(hi))``
  (the chord's zero; when the same end moved twice in a row, the other end's ``g`` is
  halved, so that the bracket closes from both sides); after a failure at ``hi`` at least
  the *shortcut* radius ``s * (1 - rtol / 4)``, where ``s`` is the zero of ``hi``'s affine
  form: the relaxation computed for the larger ball is valid for every smaller one, so
  that form proves every ``e < s`` and a fresh evaluation there almost always holds.
  The radius is kept at least ``min((atol + rtol * hi) / 2, width / 4)`` inside the
  bracket, and after two evaluations in a row that did not halve the bracket the search
  bisects: the bracket at least halves every three evaluations.

Why the shortcut radius is re-evaluated rather than reported: it *is* certified (by the
form computed for the larger ball), but a fresh evaluation at a smaller radius is not
always tighter (the dual relaxation's lower slopes ``u / (u - l)`` change with the
intermediate bounds; seen on a one-hidden-layer network), and a reported radius should be
one at which the engine was run and held.

A point stops when ``hi - lo <= tol = atol + rtol * lo``, when it holds at ``max_radius``,
when it fails at radius 0 (no certificate at all: radius 0), or after ``max_rounds``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from shallowcert.checks import non_negative_float, positive_float, positive_int
from shallowcert.errors import UserError


@dataclass(frozen=True)
class Probe:
    """One evaluation of the certificate for a group of ``m`` points at radii ``eps``.

    ``held``: bool ``(m,)``, all margin lower bounds > 0; ``value``: ``(m,)`` the smallest
    margin lower bound ``g(e)``; ``zero``: ``(m,)`` the radius below which the affine forms
    of all rows stay positive (``inf`` if they never reach 0), ``None`` for bound methods
    without an affine form (interval arithmetic).
    """

    held: torch.Tensor
    value: torch.Tensor
    zero: torch.Tensor | None


ProbeFn = Callable[[torch.Tensor, torch.Tensor], Probe]  # (point indices, radii) -> Probe


@dataclass(frozen=True)
class SearchSettings:
    """Tolerances and limits of the radius search (radii in input units)."""

    rtol: float = 0.01        # stop when hi - lo <= atol + rtol * lo
    atol: float = 1e-5
    start: float = 1e-3       # first radius > 0 when no affine form proposes one
    growth: float = 2.0       # geometric growth while no failure bounds the radius
    first_step: float = 0.5   # from radius 0: this fraction of the affine form's zero
    max_radius: float = 1.0   # the width of the [0, 1] domain: a ball of radius 1 covers it
    max_rounds: int = 40
    warm_alpha_steps: int | None = 5  # alpha-crown: Adam steps of an evaluation started from the point's
    #                                   last slopes (its first evaluation takes the engine's 20); None: all cold
    crown_seed: bool = True  # alpha-crown (bracketing): search with CROWN first, then alpha-CROWN from its radius

    def __post_init__(self) -> None:
        if self.warm_alpha_steps is not None:
            positive_int("warm_alpha_steps", self.warm_alpha_steps)
        positive_float("rtol", self.rtol)
        non_negative_float("atol", self.atol)
        positive_float("start", self.start)
        positive_float("max_radius", self.max_radius)
        positive_int("max_rounds", self.max_rounds)
        if not self.growth > 1:
            raise UserError(f"growth must be > 1, got {self.growth}")
        if not 0 < self.first_step <= 1:
            raise UserError(f"first_step must be in (0, 1], got {self.first_step}")


@dataclass(frozen=True)
class SearchOutcome:
    radius: torch.Tensor       # (N,) largest radius evaluated and held (0 when none held)
    evaluations: torch.Tensor  # (N,) int: bound evaluations spent on each point
    rounds: int                # batched evaluations
    value: torch.Tensor        # (N,) the smallest margin lower bound at ``radius`` (0 when none held)
    failed: torch.Tensor       # (N,) smallest radius evaluated that failed (inf when none failed)


def bracket_search(probe: ProbeFn, n: int, *, dtype: torch.dtype, settings: SearchSettings,
                   device: torch.device | str = "cpu", seed: SearchOutcome | None = None) -> SearchOutcome:
    """Run the bracketing search (module docstring) for ``n`` points with ``probe``.

    The search state, the indices and radii passed to ``probe`` and the outcome live on
    ``device``, which must be where ``probe`` returns its tensors.

    ``seed``: the outcome of a search with a method whose bound is never above ``probe``'s
    (CROWN under alpha-CROWN, which keeps CROWN's bound as a candidate). Its radius held, so
    it holds for ``probe`` too and starts as ``lo``; the first evaluation is at its failed
    radius. Where ``probe`` fails there too, the bracket is already within the tolerance and
    the point costs one evaluation; a point the seed could not certify at radius 0 (a margin
    that fails at the point itself, which no relaxation changes) or that held at
    ``max_radius`` is not evaluated again. Only the seed's ``radius``, ``value`` and ``failed``
    are read; the outcome counts only this search's evaluations.
    """
    lo = torch.full((n,), -1.0, dtype=dtype, device=device)              # -1: nothing held yet
    hi = torch.full((n,), math.inf, dtype=dtype, device=device)
    g_lo = torch.zeros(n, dtype=dtype, device=device)
    g_hi = torch.zeros(n, dtype=dtype, device=device)
    prev = torch.full((n,), math.nan, dtype=dtype, device=device)        # the success before lo, and its g
    g_prev = torch.full((n,), math.nan, dtype=dtype, device=device)
    last_held = torch.zeros(n, dtype=torch.bool, device=device)
    eps = torch.zeros(n, dtype=dtype, device=device)                       # the first evaluation is at radius 0
    stalls = torch.zeros(n, dtype=torch.long, device=device)
    evaluations = torch.zeros(n, dtype=torch.long, device=device)
    active = torch.ones(n, dtype=torch.bool, device=device)
    seeded = torch.zeros(n, dtype=torch.bool, device=device)  # lo is the seed's: its g is another method's
    if seed is not None:
        seeded = (seed.radius > 0) | (seed.failed > 0)  # held at radius 0 at least
        lo = torch.where(seeded, seed.radius.to(device=device, dtype=dtype), lo)
        g_lo = torch.where(seeded, seed.value.to(device=device, dtype=dtype), g_lo)
        last_held = seeded.clone()
        eps = seed.failed.to(device=device, dtype=dtype).clone()
        active = seeded & torch.isfinite(eps)
    rounds = 0
    while bool(active.any()) and rounds < settings.max_rounds:
        index = torch.nonzero(active).squeeze(1)
        e = eps[index]
        result = probe(index, e)
        rounds += 1
        evaluations[index] += 1
        held, value = result.held, result.value.to(dtype)
        bracketed = torch.isfinite(hi[index])
        width_before = hi[index] - lo[index]
        had_lo = held & (lo[index] >= 0) & ~seeded[index]  # no secant through the seed's value
        seeded[index] = False
        prev[index] = torch.where(had_lo, lo[index], prev[index])
        g_prev[index] = torch.where(had_lo, g_lo[index], g_prev[index])
        # Illinois: the same end moving twice in a row halves the other end's value
        repeat = bracketed & (held == last_held[index])
        g_hi[index] = torch.where(repeat & held, g_hi[index] / 2, g_hi[index])
        g_lo[index] = torch.where(repeat & ~held, g_lo[index] / 2, g_lo[index])
        lo[index] = torch.where(held, e, lo[index])
        hi[index] = torch.where(held, hi[index], e)
        g_lo[index] = torch.where(held, value, g_lo[index])
        g_hi[index] = torch.where(held, g_hi[index], value)
        last_held[index] = held
        width = hi[index] - lo[index]
        halved = (width <= 0.5 * width_before) | ~bracketed
        stalls[index] = torch.where(halved, 0, stalls[index] + 1)
        tol = settings.atol + settings.rtol * lo[index]
        finished = ((~held) & (lo[index] < 0)) | (held & (e >= settings.max_radius)) | (width <= tol)
        zero = None if result.zero is None else result.zero.to(dtype)
        eps[index] = _next_radius(e, held, zero, lo[index], hi[index], g_lo[index], g_hi[index], prev[index],
                                  g_prev[index], stalls[index], settings)
        active[index] = ~finished
    return SearchOutcome(radius=lo.clamp(min=0), evaluations=evaluations, rounds=rounds,
                         value=torch.where(lo >= 0, g_lo, torch.zeros_like(g_lo)), failed=hi)


def _chord_zero(a: torch.Tensor, g_a: torch.Tensor, b: torch.Tensor, g_b: torch.Tensor) -> torch.Tensor:
    """Zero of the line through ``(a, g_a)`` and ``(b, g_b)`` (NaN where it is flat)."""
    return a + (b - a) * g_a / (g_a - g_b)


def _next_radius(e: torch.Tensor, held: torch.Tensor, zero: torch.Tensor | None, lo: torch.Tensor,
                 hi: torch.Tensor, g_lo: torch.Tensor, g_hi: torch.Tensor, prev: torch.Tensor,
                 g_prev: torch.Tensor, stalls: torch.Tensor, settings: SearchSettings) -> torch.Tensor:
    """The next radius to evaluate for each point (see the module docstring)."""
    affine = zero if zero is not None else torch.full_like(e, math.nan)
    # growing: no failure yet, so the last evaluation (at e = lo) held
    chord = _chord_zero(prev, g_prev, lo, g_lo)
    secant = torch.where(torch.isnan(chord), affine, torch.minimum(chord, affine))  # no secant yet: the affine zero
    guess = torch.where(e > 0, secant, settings.first_step * affine)
    growth = torch.where(e > 0, e * settings.growth, torch.full_like(e, settings.start))
    grow = torch.where(guess > e, guess, growth).clamp(max=settings.max_radius)
    # bracketed: Illinois' chord, at least the shortcut after a failure
    guess = _chord_zero(lo, g_lo, hi, g_hi)
    guess = torch.where(held | torch.isnan(affine), guess, torch.maximum(guess, affine * (1 - settings.rtol / 4)))
    width = hi - lo
    margin = torch.minimum((settings.atol + settings.rtol * hi) / 2, width / 4)
    bracketed = torch.minimum(torch.maximum(guess, lo + margin), hi - margin)
    bracketed = torch.where((stalls >= 2) | torch.isnan(bracketed), (lo + hi) / 2, bracketed)
    return torch.where(torch.isinf(hi), grow, bracketed)
