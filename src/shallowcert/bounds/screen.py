"""Screening dense rows on the way back: stop a neuron as soon as its sign is proved (dual only).

With the dual relaxation every ReLU is the same line on both sides, ``a = d z + δ`` with
``0 <= δ <= t``: the *relaxed network* is affine in the input and the δs, and the dual
bounds of a neuron are exactly its range over the input box and the δ boxes.

Suppose that for the ReLU at position ``p`` a box holds every relaxed activation,
``|a_p - ac| <= ar`` coordinatewise. A row that back-substitution has brought down to ``a_p``,
``lam · a_p`` plus offsets ``o_l <= o_u`` from the layers above, then satisfies

    o_l + lam · ac - |lam| · ar  <=  dual lower bound,    dual upper bound  <=  o_u + lam · ac + |lam| · ar

(each ``a_p`` coordinate stays in its box, independently of the δs above ``p``). When the
left side is ``>= 0`` or the right side ``<= 0`` the neuron is stable under the dual bound
too, so its sign (all that is used of a stable neuron) is known and the expensive rest of
its back-substitution is skipped; its bounds are the screening ones, sound and looser.
Rows that stay undecided get exactly the dual bound, so the relaxations, hence every final
bound, are the same as without screening.

The boxes: the first ReLU's input is exact (affine maps of the input box); an affine map
takes centre and radius ``(c, r)`` to ``(A c + b, |A| r)``; a relaxed ReLU to
``(d c + t / 2, d r + t / 2)``; and a neuron whose dual bounds ``[l, u]`` were computed has
exactly ``c = (l + u) / 2``, ``r = (u - l) / 2`` (valid for screened neurons too).
"""

from __future__ import annotations

import torch

from shallowcert.bounds.affine import AffineMap, row_dot
from shallowcert.bounds.backward import back_substitute, concretize
from shallowcert.bounds.network import Step
from shallowcert.bounds.relaxation import Relaxation

Box = tuple[torch.Tensor, torch.Tensor]  # (centre, radius), (N, *shape)


def _affine_box(steps: list[AffineMap], centre: torch.Tensor, radius: torch.Tensor) -> Box:
    """``(c, r)`` through affine ``steps`` (no ReLU among them): ``(A c + b, |A| r)``."""
    for step in steps:
        centre = step.apply(centre) if step.bias is None else step.apply(centre) + step.bias
        radius = step.apply_abs(radius)
    return centre, radius


def activation_box(steps: list[AffineMap], previous: Box, relaxation: Relaxation, lower: torch.Tensor,
                   upper: torch.Tensor, computed: torch.Tensor | None) -> Box:
    """The box of a ReLU's relaxed activations ``a = d z + δ``: ``(d c + t / 2, d r + t / 2)``.

    ``(c, r)`` is ``previous`` (the last ReLU's activation box, or the input box) through the
    affine ``steps``, replaced by ``((l + u) / 2, (u - l) / 2)`` where ``computed`` marks the
    neurons whose dual bounds ``[l, u]`` were computed.
    """
    centre, radius = _affine_box(steps, *previous)
    if computed is not None:
        centre = torch.where(computed, (lower + upper) / 2, centre)
        radius = torch.where(computed, (upper - lower) / 2, radius)
    slope, half = relaxation.upper_slope.squeeze(1), relaxation.upper_intercept.squeeze(1) / 2
    return slope * centre + half, slope * radius + half


def packed(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For a bool ``mask`` ``(N, M)``: ``order`` ``(N, R)``, the columns of each row's True
    entries first (in order), ``R`` the most True entries of any row; and ``valid`` ``(N, R)``,
    which of them are True entries (the rest is padding)."""
    counts = mask.sum(1)
    width = int(counts.max())
    order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)[:, :width]
    return order, torch.arange(width, device=mask.device).unsqueeze(0) < counts.unsqueeze(1)


def _select(rows: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """``rows[n, order[n, j]]`` for ``rows`` ``(N, R, ...)`` and ``order`` ``(N, R')``."""
    return rows[torch.arange(len(order), device=order.device).unsqueeze(1), order]


def screened_bounds(steps: list[Step], lam: torch.Tensor, offset: torch.Tensor, valid: torch.Tensor,
                    relaxations: dict[int, Relaxation], screens: dict[int, Box], mid: torch.Tensor,
                    rad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Dual ``(lower, upper)`` ``(N, R)`` of the rows ``lam`` ``(N, R, *out)`` (+ ``offset``) of
    ``steps``' output, screened at every ReLU in ``screens`` (position -> relaxed activation
    box); ``valid`` ``(N, R)`` marks real rows (others are padding, left at 0)."""
    points, rows = valid.shape
    lower, upper = offset.new_zeros(points, rows), offset.new_zeros(points, rows)
    point = torch.arange(points, device=valid.device).unsqueeze(1).expand(points, rows)
    slot = torch.arange(rows, device=valid.device).expand(points, rows)  # each current row's original row
    offset_lower = offset_upper = offset
    end = len(steps)
    for position in sorted(screens, reverse=True):
        part = back_substitute(steps[:end], lam, relaxations, begin=position + 1)
        lam, end = part.coefficients, position + 1
        offset_lower, offset_upper = offset_lower + part.offset_lower, offset_upper + part.offset_upper
        centre, radius = screens[position]
        middle, spread = row_dot(lam, centre.unsqueeze(1)), row_dot(lam.abs(), radius.unsqueeze(1))
        low, high = offset_lower + middle - spread, offset_upper + middle + spread
        decided = valid & ((low >= 0) | (high <= 0))
        lower = lower.index_put((point[decided], slot[decided]), low[decided])
        upper = upper.index_put((point[decided], slot[decided]), high[decided])
        keep = valid & ~decided
        if not bool(keep.any()):
            return lower, upper
        order, valid = packed(keep)
        lam, offset_lower, offset_upper = _select(lam, order), _select(offset_lower, order), _select(offset_upper, order)
        slot, point = _select(slot, order), point[:, :order.shape[1]]
    bound = back_substitute(steps[:end], lam, relaxations)
    low, high = concretize(bound.coefficients, mid, rad)
    low, high = low + bound.offset_lower + offset_lower, high + bound.offset_upper + offset_upper
    lower = lower.index_put((point[valid], slot[valid]), low[valid])
    upper = upper.index_put((point[valid], slot[valid]), high[valid])
    return lower, upper
