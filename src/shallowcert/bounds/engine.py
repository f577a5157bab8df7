"""The public entry points: lower bounds of ``spec · f(x)`` over an input set.

Methods (see :mod:`shallowcert.bounds.relaxation` for the ReLU lines):

* ``ibp``: interval arithmetic through every layer; the final affine layers are combined
  with the spec before concretising (``C W`` over the last ReLU's box).
* ``dual``: Wong & Kolter's dual network (= Fast-Lin) with interval-proved stable neurons
  fixed: a neuron that interval arithmetic proves stable keeps its sign (convex_adversarial
  relaxes it whenever the dual's own bound leaves it unstable), and every intermediate bound
  is intersected with its interval bound. Sound, and each neuron's bounds and relaxation are
  at least as tight as the dual's from the same earlier bounds; the final bound is *not*
  always higher than convex_adversarial's (the fixed dual slope ``u / (u - l)`` makes it
  non-monotone in the intermediate bounds), it is on most margins of IBP-trained networks.
* ``dual-exact``: Wong & Kolter's dual network exactly as convex_adversarial 0.4.4 computes
  it (``DualNetwork``; ``bounded_input=True`` when ``domain=(0, 1)``): every neuron after
  the first layer bounded by the dual itself, no interval arithmetic. Use it to compare
  with convex_adversarial.
* ``crown``: adaptive lower slope (1 if ``u >= -l`` else 0) everywhere; :func:`lower_bounds`
  returns the larger of its final bound and the interval bound from its own (tightened) last
  pre-activation bounds (so does ``alpha-crown``; auto_LiRPA's ``compare_crown_with_ibp``).
* ``alpha-crown``: lower slopes optimised per bounded row, for the final rows and (by
  default) every intermediate bound's rows (:mod:`shallowcert.bounds.alpha`).
* ``crown-ibp``: IBP intermediate bounds, CROWN back-substitution for the final layer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from shallowcert.bounds.alpha import Slopes, optimise_bounds
from shallowcert.bounds.backward import LinearBound, back_substitute, concretize
from shallowcert.bounds.chunks import Outputs, in_chunks, points_per_chunk
from shallowcert.bounds.input_set import InputSet
from shallowcert.bounds.intermediate import Bounds, interval_candidates, interval_relaxations, linear_bounds, states_of
from shallowcert.bounds.interval import affine_interval
from shallowcert.bounds.network import Network, as_relu, read_network
from shallowcert.bounds.spec import checked_spec
from shallowcert.errors import UserError

ALPHA_STEPS = 20  # alpha-CROWN's projected Adam steps per evaluation (cold start)
METHODS = ("ibp", "dual", "dual-exact", "crown", "alpha-crown", "crown-ibp")
DUAL_METHODS = ("dual", "dual-exact")  # the symmetric relaxation: one sign per bounded row
INTERVAL_COMPARED = ("crown", "alpha-crown")  # final bounds: the larger of theirs and the interval bound


def _prepare(model: nn.Module, input_set: InputSet, spec: torch.Tensor | None,
             known_states: tuple[torch.Tensor, ...] | None = None,
             ) -> tuple[Network, torch.Tensor, torch.Tensor, torch.Tensor]:
    center = input_set.center
    network = read_network(model, tuple(center.shape[1:]), center.dtype, device=center.device)
    if len(network.output_shape) != 1:
        raise UserError(f"the model must output a vector of logits, its output shape is {network.output_shape}")
    if known_states is not None:
        shapes = [(len(center), *as_relu(network.steps[p]).shape) for p in network.relu_positions]
        if [tuple(t.shape) for t in known_states] != shapes:
            raise UserError(f"known_states must hold one state tensor per ReLU layer, shaped {shapes}")
    spec = checked_spec(spec, points=center.shape[0], outputs=network.output_shape[0], dtype=center.dtype,
                        device=center.device)
    lower, upper = input_set.box()
    return network, spec, lower, upper


@dataclass(frozen=True)
class BoundOptions:
    """How to bound: the method and alpha-CROWN's settings (:mod:`shallowcert.bounds.alpha`);
    ``interval``: fix interval-proved stable neurons and intersect every intermediate bound with
    its interval bound (:mod:`shallowcert.bounds.intermediate`; ``dual-exact`` never does);
    ``tighten_active``: back-substitute the interval-proved active neurons too, for tighter
    interval arithmetic after them (``crown``, ``alpha-crown`` and ``dual``;
    :mod:`shallowcert.bounds.intermediate`)."""

    method: str
    alpha_steps: int = ALPHA_STEPS
    alpha_lr: float = 0.1
    alpha_intermediate: bool = True
    interval: bool = True
    tighten_active: bool = False

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise UserError(f"unknown bounds method '{self.method}' (choose from {', '.join(METHODS)})")
        if self.alpha_steps < 0 or not self.alpha_lr > 0:
            raise UserError(f"alpha_steps must be >= 0 and alpha_lr > 0, got {self.alpha_steps} and {self.alpha_lr}")


def relaxed_bound(network: Network, spec: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor, options: BoundOptions,
                  known: dict[int, torch.Tensor] | None = None) -> tuple[LinearBound, Bounds]:
    """``spec · f(x) >= coefficients · x + offset_lower`` for every ``x`` in the input box,
    and the pre-activation bounds it used (per ReLU position).

    The unchunked core of :func:`linear_certificate` on a read network (``options.method``
    not ``ibp``); ``known``: ReLU states per position that hold on the box (see there).
    """
    bound, bounds, _ = _relaxed_bound_and_slopes(network, spec, lower, upper, options, known, None)
    return bound, bounds


def _relaxed_bound_and_slopes(network: Network, spec: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor,
                              options: BoundOptions, known: dict[int, torch.Tensor] | None,
                              start: Slopes | None) -> tuple[LinearBound, Bounds, Slopes]:
    """:func:`relaxed_bound`, and alpha-CROWN's final slopes (empty for the other methods),
    warm-started at ``start`` (:func:`shallowcert.bounds.alpha.optimise_bounds`)."""
    method = options.method
    if method == "crown-ibp":
        bounds, relaxations = interval_relaxations(network, lower, upper, lower_slope="crown")
    else:
        bounds, relaxations = linear_bounds(network, (lower, upper),
                                            lower_slope="dual" if method in DUAL_METHODS else "crown",
                                            known=known, interval=options.interval and method != "dual-exact",
                                            tighten_active=options.tighten_active)
    if method == "alpha-crown" and options.alpha_steps > 0:
        return optimise_bounds(network, (lower, upper), spec, (bounds, relaxations), steps=options.alpha_steps,
                               lr=options.alpha_lr, intermediate=options.alpha_intermediate, known=known, start=start)
    return back_substitute(network.steps, spec, relaxations), bounds, {}


def _interval_bound(network: Network, spec: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor,
                    bounds: Bounds | None = None) -> torch.Tensor:
    """IBP: boxes up to the last ReLU or max pool, then ``spec`` through the remaining affine maps.

    ``bounds``: sound pre-activation bounds on the box per ReLU position (as
    :func:`relaxed_bound` returns them); interval arithmetic then starts from the last of them
    instead of the input box, which is never looser (it is monotone, and those bounds lie
    inside their interval bounds) and is what auto_LiRPA's ``compare_crown_with_ibp`` compares
    with.
    """
    positions = network.nonlinear_positions
    begin = 0
    if positions:
        begin, start = positions[-1] + 1, 0
        if bounds:
            start = max(bounds)
            lower, upper = bounds[start]
        lower, upper = affine_interval(network.steps[start:begin], lower, upper)
    bound = back_substitute(network.steps, spec, {}, begin=begin)
    return concretize(bound.coefficients, (upper + lower) / 2, (upper - lower) / 2)[0] + bound.offset_lower


def _records_gradients(model: nn.Module, input_set: InputSet, spec: torch.Tensor | None) -> bool:
    tensors = [*model.parameters(), input_set.center, input_set.eps] + ([] if spec is None else [spec])
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def _chunked(model: nn.Module, input_set: InputSet, spec: torch.Tensor | None, options: BoundOptions,
             compute: Callable[..., Outputs], budget: int | None,
             known_states: tuple[torch.Tensor, ...] | None = None,
             alpha_start: tuple[torch.Tensor, ...] | None = None) -> tuple[Network, Outputs]:
    """The read network and ``compute(network, spec, lower, upper, *known_states, *alpha_start)``
    over chunks of points that fit ``budget`` bytes (the known states and slopes, checked, are
    split alike)."""
    network, spec, lower, upper = _prepare(model, input_set, spec, known_states)
    if alpha_start is not None:
        _check_start(network, alpha_start, spec)
    autograd = _records_gradients(model, input_set, spec)
    if options.method == "ibp":
        size = lower.shape[0]
    else:
        slopes = options.method == "alpha-crown" and options.alpha_steps > 0
        counted = not (autograd or slopes) and options.interval and options.method not in ("crown-ibp", "dual-exact")
        size = points_per_chunk(network, spec.shape[1], lower.dtype, signs=1 if options.method in DUAL_METHODS else 2,
                                autograd=autograd or slopes, budget=budget,
                                slopes="intermediate" if slopes and options.alpha_intermediate else
                                "final" if slopes else None, intermediate=options.method != "crown-ibp",
                                candidates=interval_candidates(network, lower, upper,
                                                               tighten_active=options.tighten_active)
                                if counted else None)
    return network, in_chunks(lambda *chunk: compute(network, *chunk),
                              (spec, lower, upper, *(known_states or ()), *(alpha_start or ())), size,
                              autograd=autograd)


def _check_start(network: Network, start: tuple[torch.Tensor, ...], spec: torch.Tensor) -> None:
    """``alpha_start`` must hold one tensor per nonlinear layer, ``(N, K, ...)`` like the slopes returned."""
    points, rows = spec.shape[:2]
    if len(start) != len(network.nonlinear_positions) or any(t.shape[:2] != (points, rows) for t in start):
        raise UserError(f"alpha_start must hold one slope tensor per ReLU or max-pool layer "
                        f"({len(network.nonlinear_positions)}), each (points, rows, ...) = ({points}, {rows}, ...), "
                        f"as a certificate's 'slopes'")


def lower_bounds(model: nn.Module, input_set: InputSet, spec: torch.Tensor | None = None, *, method: str = "dual",
                 alpha_steps: int = ALPHA_STEPS, alpha_lr: float = 0.1, alpha_intermediate: bool = True,
                 tighten_active: bool | Literal["undecided"] = False,
                 memory_budget: int | None = None) -> torch.Tensor:
    """Lower bounds ``(N, K)`` of ``spec[n] @ model(x)`` over every ``x`` in ``input_set``.

    ``spec`` is ``(N, K, classes)`` (``None``: the identity, i.e. bounds on each logit).
    The input set is the box ``[max(lo, c - eps), min(hi, c + eps)]`` (no clipping when
    ``input_set.domain`` is None); every linear function ``lam · x`` is concretised over it
    as ``lam · mid - |lam| · rad`` with the box's centre and radius. The model's parameters
    are cast internally to ``input_set.center.dtype`` (no copy needed; use float64 for
    certification) and the result is differentiable w.r.t. them.

    ``alpha-crown`` options (:mod:`shallowcert.bounds.alpha`): ``alpha_steps`` projected Adam
    steps with learning rate ``alpha_lr`` on the lower slopes of the final rows and, with
    ``alpha_intermediate``, of every intermediate bound's rows (each step then costs about
    one CROWN evaluation; without it, one final back-substitution).

    ``crown`` and ``alpha-crown`` return the larger of their bound and the interval bound of
    the same rows, by interval arithmetic from the method's own last pre-activation bounds
    (both are sound; auto_LiRPA's ``compare_crown_with_ibp`` does the same): on
    networks trained with interval bounds the interval bound is often the tighter one (a
    CROWN-IBP-trained wong-small at eps 0.1: higher on a third of the margins, by up to 3.9).
    :func:`linear_certificate` keeps the linear bound alone. ``tighten_active`` (not ``ibp`` or
    ``crown-ibp``): ``True`` also bounds the neurons interval arithmetic proves active, so that the
    interval arithmetic after them starts from tighter boxes (never looser; 2.1-2.4x the time of
    ``crown`` on a CROWN-IBP-trained wong-small; :mod:`shallowcert.bounds.intermediate`);
    ``"undecided"`` does so only for the points it could certify: every row positive at the
    centre, some row's bound not (the larger of both bounds, each sound, is returned).

    Points are processed in chunks that fit ``memory_budget`` bytes (``None``:
    :data:`shallowcert.bounds.chunks.MEMORY_BUDGET`, 1 GiB); the bounds do not depend on it.
    """
    if tighten_active not in (False, True, "undecided"):
        raise UserError(f"tighten_active must be False, True or 'undecided', got {tighten_active!r}")
    options = BoundOptions(method, alpha_steps, alpha_lr, alpha_intermediate, tighten_active=tighten_active is True)

    def compute(network: Network, spec: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor) -> Outputs:
        if method == "ibp":
            return (_interval_bound(network, spec, lower, upper),)
        bound, bounds = relaxed_bound(network, spec, lower, upper, options)
        value = concretize(bound.coefficients, (upper + lower) / 2, (upper - lower) / 2)[0] + bound.offset_lower
        if method in INTERVAL_COMPARED:
            value = torch.maximum(value, _interval_bound(network, spec, lower, upper, bounds))
        return (value,)

    network, (value,) = _chunked(model, input_set, spec, options, compute, memory_budget)
    if tighten_active != "undecided" or method in ("ibp", "crown-ibp"):
        return value
    return _tightened_where_undecided(model, network, input_set, spec, value, options, memory_budget)


def _tightened_where_undecided(model: nn.Module, network: Network, input_set: InputSet, spec: torch.Tensor | None,
                               value: torch.Tensor, options: BoundOptions, budget: int | None) -> torch.Tensor:
    """``value`` with the points that tightening could certify (every row positive at the centre,
    some bound not) bounded again with ``tighten_active`` and raised to the larger bound;
    ``network``: ``model`` as the first evaluation read it."""
    center = input_set.center
    checked = checked_spec(spec, points=len(center), outputs=network.output_shape[0], dtype=center.dtype,
                           device=center.device)
    with torch.no_grad():
        centre = _interval_bound(network, checked, center, center)
    undecided = ((value <= 0).any(dim=1) & (centre > 0).all(dim=1)).nonzero().squeeze(1)
    if len(undecided) == 0:
        return value
    subset = InputSet(input_set.center[undecided], input_set.eps[undecided], domain=input_set.domain)
    again = lower_bounds(model, subset, checked[undecided], method=options.method, alpha_steps=options.alpha_steps,
                         alpha_lr=options.alpha_lr, alpha_intermediate=options.alpha_intermediate,
                         tighten_active=True, memory_budget=budget)
    return value.index_put((undecided,), torch.maximum(value[undecided], again))


@dataclass(frozen=True)
class LinearCertificate:
    """``spec · f(x) >= offset + coefficients · x`` on the input set, and the ReLU states it proved.

    ``coefficients`` ``(N, K, d)``, ``offset`` ``(N, K)``; ``states[r]``: int8 ``(N, *shape)`` of
    the r-th ReLU, ``1`` active (``z >= 0`` on the set), ``-1`` inactive, ``0`` unstable
    (empty for ``ibp``). Pass ``states`` as ``known_states`` to an evaluation on any subset.
    """

    coefficients: torch.Tensor
    offset: torch.Tensor
    states: tuple[torch.Tensor, ...]
    slopes: tuple[torch.Tensor, ...] = ()


def linear_certificate(model: nn.Module, input_set: InputSet, spec: torch.Tensor | None = None, *,
                       method: str = "dual", alpha_steps: int = ALPHA_STEPS, alpha_lr: float = 0.1,
                       alpha_intermediate: bool = True, known_states: tuple[torch.Tensor, ...] | None = None,
                       alpha_start: tuple[torch.Tensor, ...] | None = None,
                       memory_budget: int | None = None) -> LinearCertificate:
    """A linear lower bound ``spec · f(x) >= offset + lam · x`` on ``input_set`` (flattened ``x``).

    It holds for every ``x`` in the set, hence in any subset, e.g. a ball of radius
    ``eps' <= eps``: minimising over that ball gives ``offset + lam · center - eps' * ||lam||_1``,
    a sound lower bound for every smaller radius (with domain clipping, minimise over the
    clipped box instead).

    Proof: the intermediate bounds are valid over the set, so each ReLU lies between its
    relaxation lines there; each back-substitution step replaces ``lam · z`` by a smaller
    or equal expression (bias terms exact, ReLU terms by the line on the side of
    ``sign(lam)``), ending in an affine function of ``x``. For ``ibp`` the function is
    constant: ``lam = 0`` and ``offset`` is the interval bound.

    ``known_states``: the ``states`` of a certificate computed on a *superset* of this input
    set (same points, in order), e.g. a larger radius. Neurons they prove stable are not
    bounded again (:mod:`shallowcert.bounds.intermediate`); sound, and much cheaper when
    searching downwards in radius. ``ibp`` ignores them. ``alpha_*`` options and
    ``memory_budget`` as in :func:`lower_bounds`.

    ``slopes`` (``alpha-crown`` with steps only, else empty): the final rows' optimised free
    values per ReLU / max-pool layer, ``(N, K, ...)``; pass them as ``alpha_start`` to
    warm-start an evaluation of the same points and rows on another set, e.g. a nearby
    radius. Any start gives a sound certificate, never looser than CROWN's.
    """
    options = BoundOptions(method, alpha_steps, alpha_lr, alpha_intermediate)
    known = None if known_states is None or method == "ibp" else tuple(known_states)
    start = tuple(alpha_start) if alpha_start is not None and method == "alpha-crown" and alpha_steps > 0 else None
    count = len(known or ())

    def compute(network: Network, spec: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor,
                *extra: torch.Tensor) -> Outputs:
        points, rows = spec.shape[:2]
        if method == "ibp":
            offset = _interval_bound(network, spec, lower, upper)
            return offset.new_zeros(points, rows, lower[0].numel()), offset
        positions, nonlinear = network.relu_positions, network.nonlinear_positions
        states_in, slopes_in = extra[:count], extra[count:]
        bound, bounds, slopes = _relaxed_bound_and_slopes(
            network, spec, lower, upper, options, dict(zip(positions, states_in)) if states_in else None,
            dict(zip(nonlinear, slopes_in)) if slopes_in else None)
        states = states_of(bounds)
        return (bound.coefficients.reshape(points, rows, -1), bound.offset_lower, *(states[p] for p in positions),
                *(slopes[p] for p in nonlinear if slopes))

    network, (lam, offset, *rest) = _chunked(model, input_set, spec, options, compute, memory_budget, known, start)
    relus = 0 if method == "ibp" else len(network.relu_positions)
    return LinearCertificate(lam, offset, tuple(rest[:relus]), tuple(rest[relus:]))


def linear_lower_bound(model: nn.Module, input_set: InputSet, spec: torch.Tensor | None = None, *,
                       method: str = "dual", alpha_steps: int = ALPHA_STEPS, alpha_lr: float = 0.1,
                       alpha_intermediate: bool = True, memory_budget: int | None = None,
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lam (N, K, d), offset (N, K))`` of :func:`linear_certificate` (see there):
    ``spec · f(x) >= offset + lam · x`` for every ``x`` in ``input_set`` and in its subsets."""
    certificate = linear_certificate(model, input_set, spec, method=method, alpha_steps=alpha_steps,
                                     alpha_lr=alpha_lr, alpha_intermediate=alpha_intermediate,
                                     memory_budget=memory_budget)
    return certificate.coefficients, certificate.offset
