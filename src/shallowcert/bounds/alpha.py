"""alpha-CROWN (Xu et al. 2021): optimise the lower ReLU slopes, per bounded row, by projected Adam.

Every lower slope ``a`` in [0, 1] gives a sound bound (``relu(z) >= a z`` for all ``z``), so
each unstable neuron's lower slope is a free parameter, and it may differ for every row that
is back-substituted through it. A *start* is a layer whose bounds are back-substituted: the
final specification (rows ``K``) and, with ``intermediate``, every ReLU layer after the first
(rows: its neurons that CROWN leaves unstable, lower and upper bound each; see
:class:`shallowcert.bounds.intermediate.RowSlopes`). Each start has its own slopes at every
earlier ReLU: ``(N, K, *shape)`` for the final rows, ``(N, 2R, *shape)`` for dense rows,
window-shaped ``(2M, C, Ph, Pw)`` for rows bounded in patches. A max pool's lines have free
values too (:mod:`shallowcert.bounds.maxpool`: the lower line's simplex weights and the upper
line's mix ``t``, all in [0, 1]); they are optimised for the final rows only (intermediate
rows keep CROWN's pool lines).

All slopes start at CROWN's, or the final rows' at a given ``start`` (a warm start: the
slopes an earlier optimisation of the same points and rows returned, e.g. at a nearby radius;
any values in [0, 1] give a sound bound, so a start changes only how tight it is), and take
``steps`` Adam steps (learning rate ``lr``), each followed by clipping to [0, 1], maximising
the sum of the final bounds. Each step recomputes
every intermediate bound with its rows' slopes and intersects it with the tightest bound
seen so far (every step's bounds are sound, so their intersection is), which enters the
next layer's relaxation and so the final bound. The step's gradient w.r.t. a row's slopes is
taken as if its back-substitution bound had been kept, also where the running or the interval
bound beats it (straight-through; the values are the intersection's): with the exact gradient
such a row gets none and its slopes never move, and the final bound ends looser than without
any intersection. The final bound kept per point and row is
the best one seen (its linear function with it), never below CROWN's (step 0 is CROWN; with
a ``start``, CROWN's final bound is evaluated first, one back-substitution of the final rows).
The best final slopes are returned, to warm-start the next optimisation.

Gradients w.r.t. the model: the last evaluation, with the best final slopes and the last
intermediate ones (all detached), runs in the caller's autograd mode; where an earlier
step's intermediate or final bound is tighter, that one is used as a constant.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from shallowcert.bounds.adam import ProjectedAdam
from shallowcert.bounds.backward import LinearBound, back_substitute, concretize
from shallowcert.bounds.intermediate import Bounds, RowSlopes, initial_row_slopes, linear_bounds
from shallowcert.bounds.network import Network
from shallowcert.bounds.maxpool import PoolRelaxation, detached, free_parameters, with_free_parameters
from shallowcert.bounds.relaxation import Relaxation

_Evaluation = tuple[LinearBound, torch.Tensor, Bounds]
Slopes = dict[int, torch.Tensor]  # free values of the final rows per nonlinear position, (N, K, ...)


class AlphaBound(NamedTuple):
    """alpha-CROWN's final linear bound, the intermediate bounds and the best final slopes."""

    bound: LinearBound
    bounds: Bounds
    slopes: Slopes


def _row_mask(improved: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return improved.reshape(*improved.shape, *([1] * (like.dim() - improved.dim())))


def _evaluate(network: Network, box: tuple[torch.Tensor, torch.Tensor], spec: torch.Tensor,
              final_slopes: dict[int, torch.Tensor], rows: RowSlopes | None,
              fixed: tuple[Bounds, dict[int, Relaxation | PoolRelaxation]], known: dict[int, torch.Tensor] | None,
              straight_through: bool = False) -> _Evaluation:
    """The final linear bound, its value ``(N, K)`` on the box, and the intermediate bounds:
    recomputed with ``rows`` when given (``straight_through``: see :func:`linear_bounds`), else ``fixed``."""
    bounds, relaxations = fixed if rows is None else linear_bounds(network, box, lower_slope="crown", known=known,
                                                                   rows=rows, straight_through=straight_through)
    relaxations = {p: with_free_parameters(r, final_slopes[p]) for p, r in relaxations.items()}
    bound = back_substitute(network.steps, spec, relaxations)
    lower, upper = box
    value = concretize(bound.coefficients, (upper + lower) / 2, (upper - lower) / 2)[0] + bound.offset_lower
    return bound, value, bounds


def optimise_bounds(network: Network, box: tuple[torch.Tensor, torch.Tensor], spec: torch.Tensor,
                    crown: tuple[Bounds, dict[int, Relaxation | PoolRelaxation]], *, steps: int, lr: float, intermediate: bool,
                    known: dict[int, torch.Tensor] | None = None, start: Slopes | None = None) -> AlphaBound:
    """alpha-CROWN's final linear bound (the best per point and row), intermediate bounds and
    the final slopes that gave it.

    ``box``: the input box ``(lower, upper)``; ``crown``: CROWN's bounds and relaxations on it
    (from :func:`linear_bounds` with the same ``known`` states); ``intermediate``: optimise
    the intermediate bounds' slopes too (else they stay CROWN's); ``start``: the final rows'
    first slopes, shaped like the returned ``slopes`` (module docstring). Only
    ``offset_lower`` of the bound is meaningful (the lower and upper slopes differ).
    """
    fixed = ({p: (lower.detach(), upper.detach()) for p, (lower, upper) in crown[0].items()},
             {p: detached(r) for p, r in crown[1].items()})
    rows = initial_row_slopes(network, *fixed) if intermediate else None
    best_final = {p: free_parameters(r).expand(-1, spec.shape[1], *free_parameters(r).shape[2:]).clone()
                  for p, r in fixed[1].items()}
    inner = [] if rows is None else [slope for by_relu in rows.slopes.values() for slope in by_relu.values()]
    best_bound, best_value = None, None
    first = best_final
    if start is not None:
        first = {p: start[p].detach().to(slope).clamp(0.0, 1.0) for p, slope in best_final.items()}
        best_bound, best_value = _bound_and_value(network, box, spec, best_final, fixed, known)
    with torch.enable_grad():
        final = {p: slope.clone().requires_grad_(True) for p, slope in first.items()}
        parameters = [*final.values(), *(slope.requires_grad_(True) for slope in inner)]
        optimiser = ProjectedAdam(parameters, lr=lr, low=0.0, high=1.0)
        for _ in range(steps if parameters else 0):
            bound, value, bounds = _evaluate(network, (box[0].detach(), box[1].detach()), spec.detach(), final, rows,
                                             fixed, known, straight_through=True)
            if best_bound is None or best_value is None:
                best_bound, best_value = _detached(bound), value.detach()
            else:
                improved = value.detach() > best_value
                best_bound, best_value = _select(improved, _detached(bound), best_bound), torch.maximum(value.detach(),
                                                                                                      best_value)
                for p, slope in final.items():
                    best_final[p] = torch.where(_row_mask(improved, slope), slope.detach(), best_final[p])
            if rows is not None:  # the running intersection: every later step starts from it
                reference = {p: (lo.detach(), up.detach()) for p, (lo, up) in bounds.items()}
                rows = RowSlopes(rows.neurons, rows.slopes, reference)
            optimiser.step(list(torch.autograd.grad(-value.sum(), parameters, allow_unused=True)))
    if rows is not None:
        rows = RowSlopes(rows.neurons, {s: {p: slope.detach() for p, slope in by_relu.items()}
                                        for s, by_relu in rows.slopes.items()}, rows.reference)
    bound, value, bounds = _evaluate(network, box, spec, best_final, rows, crown, known)
    if best_bound is not None and best_value is not None:
        bound = _select(value.detach() >= best_value, bound, best_bound)
    return AlphaBound(bound, bounds, best_final)


def _bound_and_value(network: Network, box: tuple[torch.Tensor, torch.Tensor], spec: torch.Tensor, slopes: Slopes,
                     fixed: tuple[Bounds, dict[int, Relaxation | PoolRelaxation]],
                     known: dict[int, torch.Tensor] | None) -> tuple[LinearBound, torch.Tensor]:
    """The final bound with ``slopes`` and the ``fixed`` intermediate bounds, detached, and its value."""
    with torch.no_grad():
        bound, value, _ = _evaluate(network, (box[0].detach(), box[1].detach()), spec.detach(), slopes, None, fixed,
                                    known)
    return _detached(bound), value


def _detached(bound: LinearBound) -> LinearBound:
    return LinearBound(bound.coefficients.detach(), bound.offset_lower.detach(), bound.offset_upper.detach())


def _select(choose: torch.Tensor, first: LinearBound, second: LinearBound) -> LinearBound:
    """Per point and row (``choose`` ``(N, K)``): ``first`` where ``choose``, else ``second``."""
    return LinearBound(torch.where(_row_mask(choose, first.coefficients), first.coefficients, second.coefficients),
                       torch.where(choose, first.offset_lower, second.offset_lower),
                       torch.where(choose, first.offset_upper, second.offset_upper))
