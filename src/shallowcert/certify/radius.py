"""Per-point certified radius of the predicted class: bracketing search or Newton.

``certified_radius`` returns, for each input, the largest L-infinity radius (input units,
inputs in [0, 1]) at which the bound engine was run and proved that the predicted class
wins everywhere in the ball (every margin lower bound above twice the rounding margin of
:func:`shallowcert.certify.precision.rounding_margin`, so that it re-certifies). The default search
(``search="bisect"``, :mod:`shallowcert.certify.search`) brackets that radius with batched
evaluations and the sound affine shortcut; ``search="newton"``
(:mod:`shallowcert.certify.newton`) runs the thesis' Newton iteration and re-verifies it.

With ``alpha-crown``, every evaluation of a point after its first (the bracketing search's
first is at radius 0) starts from the final slopes its previous evaluation returned and takes
``settings.warm_alpha_steps`` Adam steps instead of the engine's 20, so the optimisation goes
on across the search's radii instead of restarting from CROWN's slopes at each. Any slopes
in [0, 1] give a sound bound: the start changes only how tight it is and how fast it gets there.
And the bracketing search with ``alpha-crown`` runs CROWN's search first and starts alpha-CROWN
from its radius (``settings.crown_seed``; :func:`shallowcert.certify.search.bracket_search`'s
``seed``): alpha-CROWN keeps CROWN's bound as a candidate, so CROWN's radius holds for it, and
its first evaluation is at the radius where CROWN failed. Most points then take one to three
alpha-CROWN evaluations instead of a whole search from radius 0.

Why every reported radius is certified: the search only ever reports a radius at which a
full evaluation (intermediate bounds computed for that very ball; CROWN's, for an alpha-CROWN
radius that alpha-CROWN did not raise) returned positive bounds; the shortcut's zero only
chooses *where* to evaluate next. Below a failed radius the evaluation starts from the ReLU
states that the failed (larger) ball proved (``known_states``): sound, and it skips most of
the work; such a bound can differ from a fresh one at that radius in rare cases, so
``benchmarks/certify.py`` re-evaluates every radius freshly and with convex_adversarial and
counts failures. The radius is that of
the predicted class; a point whose predicted class is wrong has radius 0 for its true
label (see :mod:`shallowcert.certify.area`).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass

import torch
from torch import nn

from shallowcert.checks import inputs, inputs_and_labels, labels_within, positive_int
from shallowcert.bounds import ALPHA_STEPS, InputSet, linear_certificate, margin_spec
from shallowcert.certify.newton import NewtonOutcome, newton_search
from shallowcert.certify.precision import dtype_name, rounding_margin
from shallowcert.certify.search import Probe, SearchOutcome, SearchSettings, bracket_search
from shallowcert.certify.shortcut import affine_zero
from shallowcert.certify.verdict import Domain, check_method, margin_lower_bounds
from shallowcert.device import model_device
from shallowcert.errors import UserError
from shallowcert.model_state import model_in_dtype

SEARCHES = ("bisect", "newton")


@dataclass(frozen=True)
class RadiusResult:
    """Certified radii of the predicted classes and how the search went."""

    radius: torch.Tensor       # (N,) in ``dtype``: largest radius evaluated and certified (0: none)
    predicted: torch.Tensor    # (N,) int64
    correct: torch.Tensor | None  # bool (N,): predicted == label, when labels were given
    evaluations: torch.Tensor  # (N,) bound evaluations spent per point
    rounds: int                # batched evaluations
    search: str
    method: str
    domain: Domain
    dtype: str
    seconds: float
    newton_failures: int | None = None          # Newton values that did not re-verify (search="newton")
    newton_returned: torch.Tensor | None = None  # (N,) the values Newton returned, before re-verification

    def summary(self) -> dict[str, object]:
        stats: dict[str, object] = {
            "search": self.search, "method": self.method, "dtype": self.dtype,
            "domain": list(self.domain) if self.domain is not None else None,
            "n": int(self.radius.numel()), "mean_radius": float(self.radius.double().mean()),
            "rounds": self.rounds, "evaluations_per_point": float(self.evaluations.double().mean()),
            "max_evaluations": int(self.evaluations.max()), "seconds": self.seconds,
        }
        if self.newton_failures is not None:
            stats["newton_failures"] = self.newton_failures
        return stats


KNOWN_STATES_BYTES = 1 << 30  # the most memory the search keeps ReLU states in (one byte per neuron and point)


class _PerPoint:
    """Tensors kept per point (one row each), allocated at the first ``store`` and only while
    all points' rows fit :data:`KNOWN_STATES_BYTES`; past that nothing is kept (``enabled`` False)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.tensors: list[torch.Tensor] | None = None
        self.enabled = True

    def store(self, rows: torch.Tensor, values: tuple[torch.Tensor, ...], picked: torch.Tensor | slice = slice(None),
              ) -> bool:
        """Write ``values[k][picked]`` into rows ``rows``; False when nothing is (or can be) kept."""
        if not values or not self.enabled:
            return False
        if self.tensors is None:
            if self.n * sum(v[0].numel() * v.element_size() for v in values) > KNOWN_STATES_BYTES:
                self.enabled = False
                return False
            self.tensors = [v.new_zeros(self.n, *v.shape[1:]) for v in values]
        for stored, new in zip(self.tensors, values):
            stored[rows] = new[picked]
        return True


class _KnownStates:
    """ReLU states proved by each point's smallest *failed* evaluation, and its radius.

    A failed radius bounds the search from above: every later evaluation of that point is
    at a smaller radius, inside the ball those states were proved on, so they are passed
    as ``known_states`` (:func:`shallowcert.bounds.linear_certificate`) and the neurons
    they prove stable are not bounded again. (Held evaluations lie below the radius and
    prove nothing for the larger balls the search goes on to.)
    """

    def __init__(self, n: int, device: torch.device) -> None:
        self.radius = torch.full((n,), math.inf, dtype=torch.float64, device=device)
        self.states = _PerPoint(n)

    def valid_for(self, part: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, ...] | None:
        if self.states.tensors is None:
            return None
        inside = eps.double() <= self.radius[part]
        return tuple(s[part] * inside.view(-1, *[1] * (s.dim() - 1)) for s in self.states.tensors)

    def record(self, part: torch.Tensor, eps: torch.Tensor, states: tuple[torch.Tensor, ...],
               held: torch.Tensor) -> None:
        update = ~held & (eps.double() < self.radius[part])
        if self.states.store(part[update], states, update):
            self.radius[part[update]] = eps.double()[update]


class _WarmSlopes:
    """alpha-CROWN's final slopes of each point's latest evaluation (none until it has one);
    every point's rows are its margin rows. ``steps``: Adam steps of a warm-started evaluation
    (``None``: every evaluation is cold, with the engine's :data:`ALPHA_STEPS`); ``first_steps``:
    those of an evaluation with no slopes yet (from CROWN's)."""

    def __init__(self, n: int, steps: int | None, first_steps: int = ALPHA_STEPS) -> None:
        self.steps, self.first_steps = steps, first_steps
        self.slopes = _PerPoint(n)
        self.slopes.enabled = steps is not None
        self.seen = torch.zeros(n, dtype=torch.bool)

    def start_for(self, part: torch.Tensor) -> tuple[torch.Tensor, ...] | None:
        """The slopes to start ``part`` from, when every point of it has some."""
        if self.slopes.tensors is None or not bool(self.seen[part.cpu()].all()):
            return None
        return tuple(s[part] for s in self.slopes.tensors)

    def steps_for(self, start: tuple[torch.Tensor, ...] | None) -> int:
        """Adam steps of an evaluation that starts from ``start`` (``None``: CROWN's slopes)."""
        if self.steps is None:
            return ALPHA_STEPS
        return self.first_steps if start is None else self.steps

    def record(self, part: torch.Tensor, slopes: tuple[torch.Tensor, ...]) -> None:
        if self.slopes.store(part, slopes):
            self.seen[part.cpu()] = True


def _pieces(index: torch.Tensor, size: int) -> list[tuple[torch.Tensor, slice]]:
    """``index`` in pieces of at most ``size``: (point indices, their positions in ``index``)."""
    return [(index[i:i + size], slice(i, i + size)) for i in range(0, len(index), size)]


def certified_radius(model: nn.Module, x: torch.Tensor, *, labels: torch.Tensor | None = None,
                     method: str = "dual", domain: Domain = None,
                     dtype: torch.dtype = torch.float32, search: str = "bisect",
                     settings: SearchSettings = SearchSettings(), batch_size: int = 512,
                     device: torch.device | None = None) -> RadiusResult:
    """Certified radius of the predicted class for every point of ``x`` (N, C, H, W in [0, 1]).

    ``labels`` (optional, (N,)) only fill ``correct``; the radius is always that of the
    predicted class.

    ``method``: bound method of the engine; ``domain``: ``(lo, hi)`` to intersect the balls
    with, or None; ``dtype``: float32 or float64 (a cast copy of the model is used);
    ``search``: ``"bisect"`` (bracketing with the affine shortcut) or ``"newton"``;
    ``device``: where the points, the search state and the bounds live (default: the model's
    device; the model is moved there in place). The result's tensors are on the CPU.
    """
    check_method(method)
    if search not in SEARCHES:
        raise UserError(f"unknown radius search '{search}' (choose from {', '.join(SEARCHES)})")
    positive_int("batch_size", batch_size)
    if len(x) == 0:
        raise UserError("no points to certify")
    if labels is None:
        inputs(x)
    else:
        inputs_and_labels(x, labels)
    start = time.perf_counter()
    device = model_device(model) if device is None else device
    bounder = _Bounder(model_in_dtype(model.to(device), dtype), x.to(device=device, dtype=dtype), method, domain,
                       batch_size, settings.warm_alpha_steps)
    if labels is not None:
        labels_within(labels, bounder.classes)
    n = len(x)
    failures, returned = None, None
    outcome: SearchOutcome | NewtonOutcome
    if search == "bisect" and method == "alpha-crown" and settings.crown_seed:
        outcome = _crown_seeded_search(bounder, dtype, settings, device)
    elif search == "bisect":
        outcome = bracket_search(bounder.probe, n, dtype=dtype, settings=settings, device=device)
    else:
        newton = newton_search(bounder.margins, n, dtype=dtype, settings=settings, device=device)
        outcome, failures, returned = newton, newton.failures, newton.returned.cpu()
    predicted = bounder.predicted.cpu()
    correct = None if labels is None else predicted == labels.cpu()
    return RadiusResult(outcome.radius.cpu(), predicted, correct, outcome.evaluations.cpu(), outcome.rounds,
                        search, method, domain, dtype_name(dtype), time.perf_counter() - start, failures, returned)


def _crown_seeded_search(bounder: _Bounder, dtype: torch.dtype, settings: SearchSettings,
                         device: torch.device) -> SearchOutcome:
    """The alpha-CROWN search started from CROWN's: CROWN's search first (cheap), then alpha-CROWN
    from CROWN's radius, first at CROWN's failed radius (:func:`bracket_search`'s ``seed``), that
    first evaluation with the warm start's steps from CROWN's slopes (20 cold steps there cost
    as much as three warm evaluations).
    alpha-CROWN keeps CROWN's bound as a candidate, so CROWN's radius holds for it too, and most
    points need one to three alpha-CROWN evaluations instead of a whole search. Both searches
    share the ReLU states their failures proved. Evaluations and rounds are summed."""
    n, steps = len(bounder.points), settings.warm_alpha_steps
    crown = bracket_search(bounder.with_method("crown", _WarmSlopes(n, None)).probe, n, dtype=dtype,
                           settings=settings, device=device)
    # CROWN's slopes are near the radius already: the first evaluation takes a warm start's steps too
    seeded = bounder.with_method("alpha-crown", _WarmSlopes(n, steps, ALPHA_STEPS if steps is None else steps))
    alpha = bracket_search(seeded.probe, n, dtype=dtype, settings=settings, device=device, seed=crown)
    return SearchOutcome(alpha.radius, crown.evaluations + alpha.evaluations, crown.rounds + alpha.rounds,
                         alpha.value, alpha.failed)


class _Bounder:
    """The bound evaluations of one radius search: the cast model ``net``, the ``points`` (on
    its device and dtype), their predicted classes and, per point, the guard a margin bound
    must exceed: two rounding margins, so that the radius re-certifies in ``certify_points``
    (one margin) whatever the order of summation (:func:`shallowcert.certify.precision.rounding_margin`)."""

    def __init__(self, net: nn.Module, points: torch.Tensor, method: str, domain: Domain, batch_size: int,
                 warm_alpha_steps: int | None) -> None:
        self.net, self.points, self.method, self.domain, self.batch_size = net, points, method, domain, batch_size
        with torch.no_grad():
            logits = torch.cat([net(points[i:i + batch_size]) for i in range(0, len(points), batch_size)])
        self.predicted, self.classes = logits.argmax(dim=1), logits.shape[1]
        self.guard = 2 * rounding_margin(logits)
        self.known = _KnownStates(len(points), points.device)
        self.warm = _WarmSlopes(len(points), warm_alpha_steps if method == "alpha-crown" else None)

    def with_method(self, method: str, warm: _WarmSlopes) -> _Bounder:
        """The same points, predictions, guards and known states (shared), bounded with ``method``
        and slopes from ``warm``."""
        other = copy.copy(self)
        other.method, other.warm = method, warm
        return other

    def margins(self, index: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """The smallest margin lower bound minus the guard, per point of ``index`` at its ``eps``."""
        bounds = [margin_lower_bounds(self.net, self.points[part], self.predicted[part], eps[pos], method=self.method,
                                      domain=self.domain, classes=self.classes).min(dim=1).values - self.guard[part]
                  for part, pos in _pieces(index, self.batch_size)]
        return torch.cat(bounds)

    def probe(self, index: torch.Tensor, eps: torch.Tensor) -> Probe:
        """:meth:`margins` from one linear certificate per point, which also gives the affine
        shortcut's zero and the ReLU states later (smaller) evaluations reuse."""
        values, zeros = [], []
        with torch.no_grad():
            for part, pos in _pieces(index, self.batch_size):
                input_set = InputSet(self.points[part], eps[pos], domain=self.domain)
                spec = margin_spec(self.predicted[part], self.classes).to(self.points.dtype)
                start = self.warm.start_for(part)
                steps = self.warm.steps_for(start)
                certificate = linear_certificate(self.net, input_set, spec, method=self.method,
                                                 known_states=self.known.valid_for(part, eps[pos]),
                                                 alpha_start=start, alpha_steps=steps)
                self.warm.record(part, certificate.slopes)
                lam, offset = certificate.coefficients, certificate.offset - self.guard[part].unsqueeze(1)
                mid, rad = (t.flatten(1).unsqueeze(1) for t in input_set.mid_radius())
                bounds = offset + (lam * mid).sum(-1) - (lam.abs() * rad).sum(-1)  # = lower_bounds(...)
                values.append(bounds.min(dim=1).values)
                zeros.append(affine_zero(offset, lam, self.points[part], self.domain))
                self.known.record(part, eps[pos], certificate.states, held=values[-1] > 0)
        value = torch.cat(values)
        # interval arithmetic has a constant form (lam = 0): no zero to extrapolate from
        return Probe(value > 0, value, None if self.method == "ibp" else torch.cat(zeros))
