"""Pre-activation bounds of every ReLU, layer by layer, and the lines of every max pool.

For each ReLU, interval arithmetic from the previous layer's bounds first proves most
neurons stable; only the remaining *candidates* get a back-substitution bound (patches
for convolutional layers, dense rows otherwise), computed with the relaxations of all
earlier ReLUs. Stable neurons keep their interval bounds: only their sign matters later.
A candidate's bounds are the intersection of both, ``[max(l_bs, l_ibp), min(u_bs, u_ibp)]``:
each is sound on the input set, so the intersection is, and no end is ever looser than
either (the interval bound is tighter for many neurons of IBP-trained networks).

``tighten_active=True`` also back-substitutes the neurons interval arithmetic proves *active*
(every layer whose interval bounds are not already exact). Their bounds leave their own
layer's relaxation as it is (the identity), but the interval arithmetic after them (the next
layer's interval bounds, and the final comparison with the interval bound,
:func:`shallowcert.bounds.engine.lower_bounds`) then starts from tighter boxes. auto_LiRPA does
this by accident for some points: it back-substitutes a neuron for every point of a batch when it
is unstable for one of them. On the CROWN-IBP-trained wong-small at eps 0.1 (1,000 points,
batches of 250) that made auto_LiRPA's CROWN tighter than ours on 3,388 of 9,000 margins (robust
error bound 0.384 against 0.386); with ``tighten_active`` ours is higher on 3,082 and lower on
none (0.382), at 2.1-2.4x the time (`benchmarks/lirpa.py`, 2 threads).

``interval=False`` reproduces the published methods instead (convex_adversarial's dual
network, auto_LiRPA's CROWN without sparse intermediate bounds): every neuron of a layer
after the first is a candidate, bounded by back-substitution alone.

A max pool's input bounds come from interval arithmetic from the layer before; right after a
ReLU (or pool) they are that layer's bounds, clamped (as tight as they are: a ReLU feeding a
pool back-substitutes every neuron that is not dead, since the pool's lines use the bounds'
values, not only their signs; interval arithmetic alone left them loose); after a map that
mixes coordinates its inputs are back-substituted like a ReLU's candidates. Its lines
(:mod:`shallowcert.bounds.maxpool`) join the ReLU relaxations, keyed by its step index; it has
no states and is never split.

Known states (``known``, :func:`states_of`) are ReLU states proved on a *superset* of the
input set, e.g. by an evaluation at a larger radius around the same point: a neuron active
(``z >= 0``) or inactive (``z <= 0``) on the superset is so on the set too, so it is no
candidate and its bounds are clipped at 0 on the proved side. This is sound; it can differ
from a fresh evaluation (usually tighter, never looser in its states).

Known states may equally be *split constraints* (branch and bound): ``ACTIVE`` restricts the
set to ``{x : z(x) >= 0}``, ``INACTIVE`` to ``{x : z(x) <= 0}``. On that subdomain the ReLU is
exactly the identity (or zero), so every later bound computed with it is valid there;
bounds are still concretised over the whole box, a superset of the subdomain. A clipped
neuron whose bounds cross (``l > u``) shows the subdomain is empty.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from shallowcert.bounds.backward import back_substitute, concretize
from shallowcert.bounds.interval import affine_interval
from shallowcert.bounds.maxpool import MaxPoolStep, PoolRelaxation, as_relu_relaxation
from shallowcert.bounds.network import Network, ReLUStep, Step, as_affine, as_pool
from shallowcert.bounds.patches import patch_back_substitute, relu_windows
from shallowcert.bounds.plan import layer_plan, mixing_maps
from shallowcert.bounds.relaxation import Relaxation, relax, unstable_mask, with_lower_slopes
from shallowcert.bounds.screen import Box, activation_box, packed, screened_bounds

Bounds = dict[int, tuple[torch.Tensor, torch.Tensor]]
Relaxations = dict[int, Relaxation | PoolRelaxation]


def interval_bounds(network: Network, lower: torch.Tensor, upper: torch.Tensor,
                    pools: Bounds | None = None) -> Bounds:
    """IBP bounds of every ReLU's input, keyed by the ReLU's step index; ``pools`` (optional)
    is filled with those of every max pool's input."""
    bounds: Bounds = {}
    start = 0
    for position in network.nonlinear_positions:
        lower, upper = affine_interval(network.steps[start:position], lower, upper)
        if isinstance(network.steps[position], ReLUStep):
            bounds[position] = (lower, upper)
        elif pools is not None:
            pools[position] = (lower, upper)
        start = position
    return bounds


def interval_candidates(network: Network, lower: torch.Tensor, upper: torch.Tensor, *,
                        tighten_active: bool = False) -> dict[int, int]:
    """The most neurons any point of the box ``(lower, upper)`` can have :func:`linear_bounds`
    back-substitute at each ReLU position (with ``interval=True``): those that interval arithmetic
    from the input box leaves unstable, or not dead before a max pool (or with
    ``tighten_active``, every one not dead). Each layer's candidates
    come from interval arithmetic on bounds at least as tight as these (intersections), so they
    are a subset; alpha-CROWN's rows, the neurons its first bounds leave unstable, are too."""
    pools = set(network.pool_positions)
    counts = {}
    for position, (low, high) in interval_bounds(network, lower, upper).items():
        bounded = high > 0 if position + 1 in pools or tighten_active else unstable_mask(low, high)
        counts[position] = int(bounded.flatten(1).sum(1).max()) if len(low) else 0
    return counts


def interval_relaxations(network: Network, lower: torch.Tensor, upper: torch.Tensor, *, lower_slope: str,
                         ) -> tuple[Bounds, Relaxations]:
    """IBP bounds of every ReLU's input and the relaxations of every ReLU and max pool they give."""
    pools: Bounds = {}
    bounds = interval_bounds(network, lower, upper, pools)
    relaxations: Relaxations = {p: relax(lo, up, lower_slope=lower_slope) for p, (lo, up) in bounds.items()}
    relaxations.update({p: as_pool(network.steps[p]).relax(lo, up) for p, (lo, up) in pools.items()})
    return bounds, relaxations


def pool_relaxations(network: Network, bounds: Bounds, box: tuple[torch.Tensor, torch.Tensor],
                     ) -> dict[int, PoolRelaxation]:
    """CROWN's lines of every max pool, its input bounds by interval arithmetic from the last
    ReLU's input bounds in ``bounds`` (or the input ``box``). Sound for any sound ``bounds``; the
    same lines as :func:`linear_bounds` when each pool directly follows a ReLU or a pool."""
    pools: dict[int, PoolRelaxation] = {}
    start, previous = 0, box
    for position in network.nonlinear_positions:
        lower, upper = affine_interval(network.steps[start:position], *previous)
        step = network.steps[position]
        if isinstance(step, MaxPoolStep):
            pools[position] = step.relax(lower, upper)
            start, previous = position, (lower, upper)
        else:
            start, previous = position, bounds[position]
    return pools


ACTIVE, INACTIVE, UNKNOWN = 1, -1, 0


def states_of(bounds: Bounds) -> dict[int, torch.Tensor]:
    """ReLU states proved by ``bounds``: int8 ``ACTIVE`` (``l >= 0``), ``INACTIVE``
    (``u <= 0 < -l``) or ``UNKNOWN``, per ReLU position, shaped like the bounds."""
    return {p: torch.where(lower >= 0, ACTIVE, torch.where(upper <= 0, INACTIVE, UNKNOWN)).to(torch.int8)
            for p, (lower, upper) in bounds.items()}


def _apply_known(lower: torch.Tensor, upper: torch.Tensor, known: torch.Tensor | None,
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    if known is None:
        return lower, upper
    return (torch.where(known == ACTIVE, lower.clamp(min=0), lower),
            torch.where(known == INACTIVE, upper.clamp(max=0), upper))


def _not_fixed(lower: torch.Tensor, known: torch.Tensor | None) -> torch.Tensor:
    """Every neuron whose state ``known`` does not fix (all of them without ``known``)."""
    return torch.ones_like(lower, dtype=torch.bool) if known is None else known == UNKNOWN


@dataclass(frozen=True)
class RowSlopes:
    """alpha-CROWN's free lower slopes for the intermediate bounds of :func:`linear_bounds`.

    ``neurons[s]``: the bool mask ``(N, *shape)`` of the neurons bounded at the ReLU at step
    ``s`` (fixed, so that every row keeps its slopes). Each such neuron is two rows, its lower
    and its negated upper bound, and ``slopes[s][p]`` holds every row's lower slopes at an
    earlier ReLU ``p``: dense rows ``(N, 2R, *shape_p)`` (lower rows first, then upper rows; ``R``
    the most neurons of a point, padded, as :func:`shallowcert.bounds.screen.packed` orders
    them), patches ``(2M, C, Ph, Pw)`` on the windows (``M`` neurons in ``nonzero`` order).
    ``reference``: sound bounds of every ReLU's input on the same set; new bounds are
    intersected with them (elementwise, keeping the new value where it is at least as tight).
    """

    neurons: dict[int, torch.Tensor]
    slopes: dict[int, dict[int, torch.Tensor]]
    reference: Bounds


def initial_row_slopes(network: Network, bounds: Bounds, relaxations: Relaxations) -> RowSlopes:
    """Row slopes starting at the ``relaxations``' lower slopes (CROWN's), for the neurons that
    ``bounds`` leave unstable at every ReLU after the first; ``reference``: ``bounds``, detached."""
    neurons, slopes = {}, {}
    for position in network.relu_positions[1:]:
        unstable = unstable_mask(*bounds[position]).detach()
        if not bool(unstable.any()):
            continue
        steps = network.steps[:position]
        maps = {p: r.lower_slope.detach() for p, r in relaxations.items() if p < position and isinstance(r, Relaxation)}
        if layer_plan(steps, tuple(unstable.shape[1:])).patches:
            maps = {p: slope.squeeze(1) for p, slope in maps.items()}
            slopes[position] = relu_windows(steps, unstable.nonzero(), tuple(unstable.shape[1:]), maps, repeat=2)
        else:
            rows = 2 * packed(unstable.flatten(1))[0].shape[1]
            slopes[position] = {p: slope.expand(-1, rows, *slope.shape[2:]).clone() for p, slope in maps.items()}
        neurons[position] = unstable
    reference = {p: (lower.detach(), upper.detach()) for p, (lower, upper) in bounds.items()}
    return RowSlopes(neurons, slopes, reference)


def _tighter(bounds: tuple[torch.Tensor, torch.Tensor], reference: tuple[torch.Tensor, torch.Tensor],
             straight_through: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The intersection of two boxes, each end taken from ``bounds`` where it is at least as tight
    (ties too: so gradients flow through ``bounds``).

    ``straight_through``: the same values, but the gradient of every end is that of ``bounds``,
    also where ``reference`` wins (``t + (b - b.detach())``, ``t`` the intersection: exactly ``t``,
    where ``b + (t - b).detach()`` could round past it): alpha-CROWN's
    search direction. With the exact gradient a row whose bound the reference beats gets none, so
    its slopes never move and its bound never gets past the reference; its later bound is looser
    than without the intersection.
    """
    (lower, upper), (reference_lower, reference_upper) = bounds, reference
    tight_lower = torch.where(lower >= reference_lower, lower, reference_lower)
    tight_upper = torch.where(upper <= reference_upper, upper, reference_upper)
    if not straight_through:
        return tight_lower, tight_upper
    return tight_lower.detach() + (lower - lower.detach()), tight_upper.detach() + (upper - upper.detach())


def linear_bounds(network: Network, box: tuple[torch.Tensor, torch.Tensor], *, lower_slope: str,
                  known: dict[int, torch.Tensor] | None = None, rows: RowSlopes | None = None,
                  interval: bool = True, tighten_active: bool = False,
                  straight_through: bool = False) -> tuple[Bounds, Relaxations]:
    """Back-substitution bounds of every ReLU's input with ``lower_slope`` (``dual``/``crown``).

    ``box`` is the input box ``(lower, upper)``; ``known``: states proved on a superset of
    it, per ReLU position (module docstring). ``rows`` (alpha-CROWN, with ``crown``): bound
    exactly ``rows.neurons`` with the rows' own lower slopes at the earlier ReLUs, every
    other neuron by interval arithmetic, and intersect every layer with ``rows.reference``.
    ``interval``: fix the neurons interval arithmetic proves stable and intersect every
    bound with its interval bound (default); ``False``: back-substitution for every neuron
    (module docstring; not with ``rows``). ``tighten_active`` (with ``interval``): back-substitute
    the interval-proved active neurons too (module docstring). ``straight_through``: both intersections pass the
    gradient of the back-substitution bound, also where the other bound wins (same values;
    :func:`_tighter`), for alpha-CROWN's optimisation steps.
    Returns the bounds and the relaxations (CROWN's lower slopes for alpha-CROWN too).
    """
    lower_in, upper_in = box
    mid, rad = (upper_in + lower_in) / 2, (upper_in - lower_in) / 2
    symmetric = lower_slope == "dual" and not network.pool_positions
    bounds: Bounds = {}
    relaxations: Relaxations = {}
    screens: dict[int, Box] = {}  # dual only: boxes of the relaxed activations (shallowcert.bounds.screen)
    start, previous, activation, after = 0, (lower_in, upper_in), (mid, rad), 0  # after: first step past the last ReLU
    pools = set(network.pool_positions)
    for position in network.nonlinear_positions:
        steps = network.steps[:position]
        lower, upper = affine_interval(network.steps[start:position], *previous)
        pool = network.steps[position]
        if isinstance(pool, MaxPoolStep):
            lower, upper = _pool_inputs(network, start, position, (lower, upper), relaxations, mid, rad)
            relaxations[position] = pool.relax(lower, upper)
            start, previous = position, (lower, upper)
            continue
        states = None if known is None else known.get(position)
        lower, upper = _apply_known(lower, upper, states)
        candidates: torch.Tensor | None
        if rows is None:
            candidates = unstable_mask(lower, upper) if interval else _not_fixed(lower, states)
            if interval and tighten_active:
                candidates = candidates | ((lower >= 0) & _not_fixed(lower, states))
            if position + 1 in pools:  # a max pool's lines use the values of these bounds, not only their signs
                candidates = candidates | (upper > 0)
            bound = bool(candidates.any()) and (start > 0 or mixing_maps(steps) > 1)
            slopes = None
        else:
            candidates, slopes = rows.neurons.get(position), rows.slopes.get(position)
            bound = candidates is not None
        computed = None
        if bound and candidates is not None:
            computed = candidates
            tight_lower, tight_upper = _tight_bounds(steps, candidates, relaxations, mid, rad, symmetric, screens,
                                                     slopes)
            if interval:
                tight_lower, tight_upper = _tighter((tight_lower, tight_upper), (lower[candidates], upper[candidates]),
                                                    straight_through)
            lower = lower.masked_scatter(candidates, tight_lower)
            upper = upper.masked_scatter(candidates, tight_upper)
        if rows is not None:
            lower, upper = _tighter((lower, upper), rows.reference[position], straight_through)
        bounds[position] = (lower, upper)
        relaxations[position] = relaxation = relax(lower, upper, lower_slope=lower_slope)
        if symmetric:
            activation = screens[position] = activation_box([as_affine(s) for s in network.steps[after:position]],
                                                            activation,
                                                            relaxation, lower, upper, computed)
        start, previous, after = position, (lower, upper), position + 1
    return bounds, relaxations


def candidate_bounds(steps: list[Step], candidates: torch.Tensor, relaxations: Relaxations, mid: torch.Tensor,
                     rad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """CROWN bounds (lower, upper) of the ``candidates`` (bool ``(N, *shape)``) of the output of
    ``steps`` over the box ``|x - mid| <= rad`` (``(N, *input shape)``) with the ``relaxations`` of
    the earlier ReLUs and pools, in patches or dense rows (:func:`layer_plan`); one value per
    candidate, in ``nonzero`` order."""
    return _tight_bounds(steps, candidates, relaxations, mid, rad, False, {}, None)


def _tight_bounds(steps: list[Step], candidates: torch.Tensor, relaxations: Relaxations, mid: torch.Tensor,
                  rad: torch.Tensor, symmetric: bool, screens: dict[int, Box], slopes: dict[int, torch.Tensor] | None,
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Back-substitution bounds of the ``candidates`` of the output of ``steps``, in patches or dense rows."""
    if layer_plan(steps, tuple(candidates.shape[1:])).patches:
        return _patch_bounds(steps, candidates, relaxations, mid, rad, symmetric, slopes)
    return _dense_bounds(steps, candidates, relaxations, mid, rad, symmetric, screens, slopes)


def _pool_inputs(network: Network, start: int, position: int, box: tuple[torch.Tensor, torch.Tensor],
                 relaxations: Relaxations, mid: torch.Tensor, rad: torch.Tensor,
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds of a max pool's input: ``box`` (interval arithmetic from the last ReLU or pool), tightened
    by back-substitution when a map that mixes coordinates lies in between (a pool right after a
    ReLU keeps the ReLU's clamped bounds: they are as tight as that ReLU's)."""
    steps = network.steps[:position]
    lower, upper = box
    if mixing_maps(network.steps[start + 1:position]) == 0 if relaxations else mixing_maps(steps) <= 1:
        return lower, upper
    candidates = upper > lower
    if not bool(candidates.any()):
        return lower, upper
    tight_lower, tight_upper = _tight_bounds(steps, candidates, relaxations, mid, rad, False, {}, None)
    return (lower.masked_scatter(candidates, torch.maximum(lower[candidates], tight_lower)),
            upper.masked_scatter(candidates, torch.minimum(upper[candidates], tight_upper)))


def _patch_bounds(steps: list[Step], candidates: torch.Tensor, relaxations: Relaxations, mid: torch.Tensor,
                  rad: torch.Tensor, symmetric: bool, slopes: dict[int, torch.Tensor] | None,
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    neurons = candidates.nonzero()
    shape = tuple(candidates.shape[1:])
    if symmetric:
        lower, upper = patch_back_substitute(steps, neurons, shape, relaxations, mid, rad, signs=(1.0,))
        return lower[0], upper[0]
    lower, _ = patch_back_substitute(steps, neurons, shape, relaxations, mid, rad, signs=(1.0, -1.0), slopes=slopes)
    return lower[0], -lower[1]


def _dense_bounds(steps: list[Step], candidates: torch.Tensor, relaxations: Relaxations, mid: torch.Tensor,
                  rad: torch.Tensor, symmetric: bool, screens: dict[int, Box], slopes: dict[int, torch.Tensor] | None,
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds of the candidate neurons as rows of a dense coefficient tensor, padded per point.

    The affine maps after the last ReLU of ``steps`` are the same for every point: when the
    layer has no more neurons than the batch has rows, they are applied once to every
    neuron's one-hot row (a shared table) and each point takes its candidates' rows.
    Dual rows are screened at every earlier ReLU (:mod:`shallowcert.bounds.screen`);
    ``slopes`` (alpha-CROWN): the rows' own lower slopes per earlier ReLU (:class:`RowSlopes`).
    """
    flat = candidates.flatten(1)
    points, neurons = flat.shape
    order, valid = packed(flat)
    rows = order.shape[1]
    tail = max(relaxations, default=-1) + 1 if neurons <= points * rows else len(steps)
    if tail < len(steps):
        eye = torch.eye(neurons, dtype=mid.dtype, device=mid.device).reshape(1, neurons, *candidates.shape[1:])
        table = back_substitute(steps[tail:], eye, {})
        lam, offset = table.coefficients[0][order], table.offset_lower[0][order]
    else:
        lam = mid.new_zeros(points, rows, neurons)
        lam.scatter_(2, order.unsqueeze(-1), valid.unsqueeze(-1).to(mid.dtype))
        lam, offset = lam.reshape(points, rows, *candidates.shape[1:]), mid.new_zeros(points, rows)
    if symmetric:
        relus = {p: as_relu_relaxation(r) for p, r in relaxations.items()}  # symmetric: a network without pools
        low, high = screened_bounds(steps[:tail], lam, offset, valid, relus, screens, mid, rad)
        return low[valid], high[valid]
    if slopes is not None:
        relaxations = {p: with_lower_slopes(as_relu_relaxation(r), slopes[p]) if p in slopes else r
                       for p, r in relaxations.items()}
    bound = back_substitute(steps[:tail], torch.cat([lam, -lam], 1), relaxations)
    low, _ = concretize(bound.coefficients, mid, rad)
    low = low + bound.offset_lower + torch.cat([offset, -offset], 1)
    return low[:, :rows][valid], -low[:, rows:][valid]
