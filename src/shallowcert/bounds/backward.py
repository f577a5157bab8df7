"""Back-substitution of linear functions through the network (dense coefficients).

A linear function ``lam · z_i`` of the output of step ``i`` is rewritten as a function of
the step's input: through an affine map ``z = A x + b``, ``lam · z = (A^T lam) · x + lam · b``;
through a ReLU with relaxation (slopes ``a`` lower, ``s`` upper, intercept ``t``),
``lam · relu(x) >= (lam+ a + lam- s) · x + lam- · t`` where ``lam+ = max(lam, 0)``,
``lam- = min(lam, 0)``. The lower bound on the relaxed upper side uses ``lam+ · t`` and is
valid only when ``a == s`` (the dual relaxation), for which ``lam`` is the same both ways.
Through a max pool, its lines (:mod:`shallowcert.bounds.maxpool`) for the lower bound; its
upper offset is the lower one's (the lines differ: there is no symmetric upper bound).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from shallowcert.bounds.affine import AffineMap
from shallowcert.bounds.maxpool import MaxPoolStep, PoolRelaxation
from shallowcert.bounds.network import Step
from shallowcert.bounds.relaxation import Relaxation


@dataclass(frozen=True)
class LinearBound:
    """``lam · x + offset_lower <= f`` over the set; with symmetric slopes also
    ``f <= lam · x + offset_upper``. ``lam`` is ``(N, K, *shape)``, offsets ``(N, K)``."""

    coefficients: torch.Tensor
    offset_lower: torch.Tensor
    offset_upper: torch.Tensor


def row_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``(a * b).sum()`` over the trailing dims of ``a`` ``(N, K, *shape)``; ``b`` broadcasts
    as ``(N or 1, 1, *shape)`` or ``(*shape)``: a batched matrix-vector product, no temporary."""
    if b.dim() == a.dim() and b.shape[1] == 1:
        return torch.matmul(a.flatten(2), b.flatten(2).transpose(1, 2)).squeeze(-1)
    return (a * b).flatten(2).sum(-1)


def back_substitute(steps: list[Step], lam: torch.Tensor, relaxations: dict[int, Relaxation | PoolRelaxation], *,
                    begin: int = 0, extra: dict[int, torch.Tensor] | None = None,
                    record: dict[int, torch.Tensor] | None = None) -> LinearBound:
    """Push ``lam`` (``(N, K, *out_shape of steps[-1]``) back to the input of ``steps[begin]``.

    ``relaxations[i]`` relaxes the ReLU or max pool at ``steps[i]``. ``extra[i]`` (optional, shaped like
    the coefficients there): a linear term ``extra[i] · z`` in the *input* ``z`` of ReLU ``i``
    added to the function (e.g. beta-CROWN's split multipliers). ``record`` (optional): filled
    with the coefficients of each ReLU's *output* as they were reached.
    """
    lower = lam.new_zeros(lam.shape[:2])
    upper = lam.new_zeros(lam.shape[:2])
    for index in range(len(steps) - 1, begin - 1, -1):
        step = steps[index]
        if isinstance(step, AffineMap):
            if step.bias is not None:
                term = row_dot(lam, step.bias)
                lower, upper = lower + term, upper + term
            lam = step.transpose(lam)
        elif isinstance(step, MaxPoolStep):
            lam, term = step.transpose(lam, relaxations[index])
            lower, upper = lower + term, upper + term
        else:
            if record is not None:
                record[index] = lam
            relaxation = relaxations[index]
            negative = lam.clamp(max=0)  # intercepts are >= 0: the sign of lam splits the terms
            below, total = row_dot(negative, relaxation.upper_intercept), row_dot(lam, relaxation.upper_intercept)
            lower, upper = lower + below, upper + (total - below)
            if relaxation.lower_slope is relaxation.upper_slope:
                lam = lam * relaxation.upper_slope
            else:
                lam = (lam - negative) * relaxation.lower_slope + negative * relaxation.upper_slope
            if extra is not None and index in extra:
                lam = lam + extra[index]
    return LinearBound(lam, lower, upper)


def concretize(lam: torch.Tensor, mid: torch.Tensor, rad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``min`` and ``max`` of ``lam · x`` over the box ``|x - mid| <= rad`` (``mid``: ``(N, *shape)``):
    ``lam · mid ∓ |lam| · rad``, each ``(N, K)``."""
    centre = row_dot(lam, mid.unsqueeze(1))
    spread = row_dot(lam.abs(), rad.unsqueeze(1))
    return centre - spread, centre + spread
