"""Back-substitution of linear functions through the network (dense coefficients).

A linear function ``lam · z_i`` of the output of step ``i`` is rewritten as a function of
the step's input: through an affine map ``z = A x + b``, ``lam · z = (A^T lam) · x + lam · b``;
through a ReLU with relaxation (slopes ``a`` lower, ``s`` upper, intercept ``t``),
``lam · relu(x) >= (lam+ a + lam- s) · x + lam- · t`` where ``lam+ = max(lam, 0)``,
``lam- = min(lam, 0)``. The lower bound on the relaxed upper side uses ``lam+ · t`` and is
valid only when ``a == s`` (the dual relaxation), for which ``lam`` is the same both ways.
Through a max pool, its lines (:mod:`shallowcert.bounds.maxpool`) for the lower bound; its
upper offset is the lower one's (the lines differ: there is no symmetric upper bound).

With ``a != s`` a ReLU step is one autograd function with a hand-written gradient
(:func:`relu_step`). For ``lam`` ``(N, K, *shape)`` and ``a, s, t`` ``(N, 1 or K, *shape)``:

    lam' = a * max(lam, 0) + s * min(lam, 0),   b = sum(min(lam, 0) * t)   (per row),

and (sums over the axes that broadcast):

    d lam = [lam >= 0] a grad_lam' + [lam < 0] (s grad_lam' + t grad_b)
    d a = sum grad_lam' max(lam, 0),   d s = sum grad_lam' min(lam, 0),   d t = sum grad_b min(lam, 0).

Autograd through the elementwise formula records five full-size tensors per step and replays
a full-size backward for each; this writes two in each pass. It is the costliest elementwise part
of a CROWN-IBP step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, cast

import torch
from torch.autograd.function import once_differentiable

from shallowcert.bounds.affine import AffineMap, row_dot
from shallowcert.bounds.maxpool import MaxPoolStep, PoolRelaxation, as_pool_relaxation, as_relu_relaxation
from shallowcert.bounds.network import Step
from shallowcert.bounds.relaxation import Relaxation


@dataclass(frozen=True)
class LinearBound:
    """``lam · x + offset_lower <= f`` over the set; with symmetric slopes also
    ``f <= lam · x + offset_upper`` (otherwise ``offset_upper`` holds only the affine maps'
    terms and means nothing). ``lam`` is ``(N, K, *shape)``, offsets ``(N, K)``."""

    coefficients: torch.Tensor
    offset_lower: torch.Tensor
    offset_upper: torch.Tensor


def _sum_to(gradient: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """``gradient`` summed over the axes where ``shape`` is 1 (the broadcast ones)."""
    axes = tuple(i for i, size in enumerate(shape) if size == 1 and gradient.shape[i] != 1)
    return gradient.sum(axes, keepdim=True) if axes else gradient


class _ReluStep(torch.autograd.Function):
    """Few full-size tensors: every fresh one costs more in page faults than in arithmetic on
    this CPU (a ``(64, 9, 16, 14, 14)`` float32 tensor: about 0.7 ms to write, 6 ms to fault in),
    so each pass writes two: forward ``min(lam, 0)`` (through ``max(lam, 0)``, in place) and
    ``lam'``, backward a work tensor and the gradient. It saves ``lam`` and ``min(lam, 0)``;
    ``max(lam, 0) = lam - min(lam, 0)`` exactly. No boolean masks (``torch.where`` on one ran
    10x slower than a multiplication here): ``[lam >= 0]`` in the gradient is
    ``max(sign(lam), 0)``, 0 where ``lam == 0`` (any value in [0, 1] is a valid gradient there:
    both sides give ``lam' = 0``)."""

    @staticmethod
    def forward(ctx: Any, lam: torch.Tensor, lower_slope: torch.Tensor, upper_slope: torch.Tensor,
                intercept: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        negative = lam.clamp(min=0)  # max(lam, 0) until the line below the product
        out = torch.mul(negative, lower_slope)
        negative.sub_(lam).neg_()  # lam - max(lam, 0), exactly
        ctx.save_for_backward(lam, negative, lower_slope, upper_slope, intercept)
        return out.addcmul_(negative, upper_slope), row_dot(negative, intercept)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_lam: torch.Tensor, grad_offset: torch.Tensor,
                 ) -> tuple[torch.Tensor | None, ...]:
        lam, negative, lower_slope, upper_slope, intercept = ctx.saved_tensors
        grad_offset = grad_offset.reshape(*grad_offset.shape, *([1] * (lam.dim() - 2)))
        grads: list[torch.Tensor | None] = [None, None, None, None]
        work = torch.empty_like(lam)

        def summed(product: torch.Tensor, shape: torch.Size) -> torch.Tensor:
            """``product`` (written in ``work``) summed to ``shape``; a copy when that sums nothing."""
            return product.clone() if shape == lam.shape else _sum_to(product, shape)

        if ctx.needs_input_grad[1]:
            grads[1] = summed(torch.sub(lam, negative, out=work).mul_(grad_lam), lower_slope.shape)
        if ctx.needs_input_grad[2]:
            grads[2] = summed(torch.mul(grad_lam, negative, out=work), upper_slope.shape)
        if ctx.needs_input_grad[3]:
            if intercept.shape[1] == 1:  # sum over the rows as a batched product (N, 1, K) @ (N, K, S)
                grads[3] = torch.matmul(grad_offset.flatten(1).unsqueeze(1), negative.flatten(2)).reshape(intercept.shape)
            else:
                grads[3] = summed(torch.mul(grad_offset, negative, out=work), intercept.shape)
        if ctx.needs_input_grad[0]:  # on_upper + [lam >= 0] (on_lower - on_upper)
            grad = torch.mul(grad_lam, lower_slope - upper_slope).addcmul_(intercept, grad_offset, value=-1)
            grad.mul_(torch.sign(lam, out=work).clamp_(min=0))
            grads[0] = grad.addcmul_(grad_lam, upper_slope).addcmul_(intercept, grad_offset)
        return tuple(grads)


def relu_step(lam: torch.Tensor, lower_slope: torch.Tensor, upper_slope: torch.Tensor,
              intercept: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lam', b)`` of the module docstring: the coefficients on the ReLU's input and the
    offset ``(N, K)`` the lower bound adds, differentiable w.r.t. all four inputs."""
    apply = cast(Callable[..., tuple[torch.Tensor, torch.Tensor]], _ReluStep.apply)
    return apply(lam, lower_slope, upper_slope, intercept)


def back_substitute(steps: list[Step], lam: torch.Tensor, relaxations: Mapping[int, Relaxation | PoolRelaxation], *,
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
            lam, term = step.pull_back(lam)
            if term is not None:
                lower, upper = lower + term, upper + term
        elif isinstance(step, MaxPoolStep):
            lam, term = step.transpose(lam, as_pool_relaxation(relaxations[index]))
            lower, upper = lower + term, upper + term
        else:
            if record is not None:
                record[index] = lam
            relaxation = as_relu_relaxation(relaxations[index])
            if relaxation.lower_slope is relaxation.upper_slope:
                negative = lam.clamp(max=0)  # intercepts are >= 0: the sign of lam splits the terms
                below, total = row_dot(negative, relaxation.upper_intercept), row_dot(lam, relaxation.upper_intercept)
                lower, upper = lower + below, upper + (total - below)
                lam = lam * relaxation.upper_slope
            else:  # offset_upper is meaningless here: not computed
                lam, below = relu_step(lam, relaxation.lower_slope, relaxation.upper_slope, relaxation.upper_intercept)
                lower = lower + below
            if extra is not None and index in extra:
                lam = lam + extra[index]
    return LinearBound(lam, lower, upper)


def concretize(lam: torch.Tensor, mid: torch.Tensor, rad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``min`` and ``max`` of ``lam · x`` over the box ``|x - mid| <= rad`` (``mid``: ``(N, *shape)``):
    ``lam · mid ∓ |lam| · rad``, each ``(N, K)``."""
    centre = row_dot(lam, mid.unsqueeze(1))
    spread = row_dot(lam.abs(), rad.unsqueeze(1))
    return centre - spread, centre + spread
