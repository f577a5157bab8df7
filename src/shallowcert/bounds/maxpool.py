"""Max pooling in the bounds engine: ``y_o = max_{i in W_o} x_i`` over every window ``W_o``.

For one window with input bounds ``l_i <= x_i <= u_i`` let

    j = argmax_i l_i            (the input with the largest lower bound; padding never counts)
    m = l_j,   M = max_i u_i,   U = max_{i != j} u_i    (U = -inf for a one-input window)
    c = max(0, U - m)

IBP: ``m <= y <= M`` (exact over a box: ``y >= x_j >= m`` and ``y <= max u``).

Lower lines: ``y >= sum_i a_i x_i`` for every ``a`` in the simplex (``a_i >= 0``, ``sum a_i = 1``).
Proof: ``y >= x_i`` for every ``i``, so ``y`` is at least any convex combination of them.
CROWN takes ``a = e_j``; alpha-CROWN optimises ``a`` per bounded row (free values ``v`` in
[0, 1] on the window's real inputs, ``a = v / sum v``; ``e_j`` where ``sum v = 0``).

Upper lines: ``y <= t (x_j + c) + (1 - t) M`` for every ``t`` in [0, 1].
Proof: ``y <= M`` always. And ``y <= x_j + c``: if the max is ``x_j`` this is ``c >= 0``; else
it is some ``x_i``, ``i != j``, and ``y - x_j <= u_i - l_j <= U - m <= c``. A convex
combination of two upper bounds is one. CROWN takes ``t = 1`` where the linear line is lower
at the box centre (``(m + u_j) / 2 + c <= M``), else ``t = 0``; alpha-CROWN optimises ``t``.

Stable windows (``m >= U``: one input is surely the largest): ``c = 0`` and ``M = u_j``, the
centre rule picks ``t = 1``, and with ``a = e_j`` both lines are ``y = x_j``: exact.

Back-substitution of ``lam · y`` for a lower bound uses the lower line where ``lam > 0`` and
the upper line where ``lam < 0``; the coefficients of ``x`` are gathered back with ``fold``
(the transpose of ``unfold``). Padded inputs are ``-inf`` for the max and carry weight 0.
Only ``ceil_mode=False`` and ``dilation=1`` are accepted (:mod:`shallowcert.bounds.network`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
import torch.nn.functional as F

from shallowcert.bounds.relaxation import Relaxation, with_lower_slopes

Pair = tuple[int, int]


@dataclass(frozen=True)
class PoolRelaxation:
    """The lines of every window (module docstring), shaped per point ``(N, 1 or K, C, ...)``.

    ``parameters`` ``(N, 1 or K, C, k + 1, OH, OW)``: the free values ``v`` (first ``k``, one per
    window input, ``k = kh * kw``) and ``t`` (last); ``argmax``: the one-hot ``e_j``
    ``(N, 1, C, k, OH, OW)``; ``gap`` ``c`` and ``ceiling`` ``M``: ``(N, 1, C, OH, OW)``.
    """

    parameters: torch.Tensor
    argmax: torch.Tensor
    gap: torch.Tensor
    ceiling: torch.Tensor

    def select(self, index: torch.Tensor) -> PoolRelaxation:
        """The lines of the points ``index`` only."""
        return PoolRelaxation(self.parameters[index], self.argmax[index], self.gap[index], self.ceiling[index])


class MaxPoolStep:
    """``nn.MaxPool2d(kernel, stride, padding)`` on activations of shape ``in_shape`` ``(C, H, W)``."""

    def __init__(self, in_shape: tuple[int, int, int], kernel: Pair, stride: Pair, padding: Pair) -> None:
        self.in_shape, self.kernel, self.stride, self.padding = in_shape, kernel, stride, padding
        out_hw = tuple((in_shape[1 + d] + 2 * padding[d] - kernel[d]) // stride[d] + 1 for d in range(2))
        self.out_shape = (in_shape[0], out_hw[0], out_hw[1])
        self.window: tuple[Pair, Pair, Pair] = (kernel, stride, padding)
        self.size = kernel[0] * kernel[1]

    def spatial_window(self) -> tuple[Pair, Pair, Pair]:
        """(kernel, stride, padding), as for a spatial affine map."""
        return self.window

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """The max pool of ``x`` ``(B, C, H, W)``."""
        return F.max_pool2d(x, self.kernel, self.stride, self.padding)

    def unfold(self, x: torch.Tensor, fill: float) -> torch.Tensor:
        """Every window's inputs: ``(B, C, k, OH, OW)``, padding filled with ``fill``."""
        (ph, pw), (rows, cols) = self.padding, self.out_shape[1:]
        padded = F.pad(x, (pw, pw, ph, ph), value=fill)
        return F.unfold(padded, self.kernel, stride=self.stride).reshape(len(x), x.shape[1], self.size, rows, cols)

    def inside(self, like: torch.Tensor) -> torch.Tensor:
        """1 for a window's real inputs, 0 for padding: ``(1, 1, 1, k, OH, OW)``."""
        ones = torch.ones((1, 1, *self.in_shape[1:]), dtype=like.dtype, device=like.device)
        return self.unfold(ones, 0.0).unsqueeze(0)

    def relax(self, lower: torch.Tensor, upper: torch.Tensor) -> PoolRelaxation:
        """CROWN's lines for input bounds ``(N, C, H, W)`` (module docstring)."""
        low, high = self.unfold(lower, float("-inf")), self.unfold(upper, float("-inf"))
        best, index = low.max(2)
        argmax = F.one_hot(index, self.size).movedim(-1, 2).to(lower.dtype)
        others = high.masked_fill(argmax.bool(), float("-inf")).amax(2)
        gap = (others - best).clamp(min=0)
        ceiling = high.amax(2)
        chosen_upper = (high.masked_fill(~argmax.bool(), 0.0)).sum(2)
        linear = ((best + chosen_upper) / 2 + gap <= ceiling).to(lower.dtype)
        parameters = torch.cat([argmax, linear.unsqueeze(2)], 2).detach()
        return PoolRelaxation(parameters.unsqueeze(1), argmax.unsqueeze(1).detach(), gap.unsqueeze(1),
                              ceiling.unsqueeze(1))

    def lines(self, relaxation: PoolRelaxation) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(a, b, d)``: lower weights ``a`` and upper weights ``b`` ``(N, 1 or K, C, k, OH, OW)``,
        upper offsets ``d`` ``(N, 1 or K, C, OH, OW)``: ``a · x_W <= y <= b · x_W + d``."""
        free, t = relaxation.parameters[:, :, :, :self.size], relaxation.parameters[:, :, :, self.size]
        free = free * self.inside(free)
        total = free.sum(3, keepdim=True)
        lower = torch.where(total > 0, free / torch.where(total > 0, total, torch.ones_like(total)),
                            relaxation.argmax)
        upper = t.unsqueeze(3) * relaxation.argmax
        offset = t * relaxation.gap + (1 - t) * relaxation.ceiling
        return lower, upper, offset

    def fold(self, columns: torch.Tensor) -> torch.Tensor:
        """The transpose of :meth:`unfold`: ``(B, C, k, OH, OW)`` -> ``(B, C, H, W)`` (sums)."""
        return F.fold(columns.reshape(len(columns), -1, self.out_shape[1] * self.out_shape[2]), self.in_shape[1:],
                      self.kernel, stride=self.stride, padding=self.padding)

    def transpose(self, lam: torch.Tensor, relaxation: PoolRelaxation) -> tuple[torch.Tensor, torch.Tensor]:
        """``lam · y >= lam' · x + o`` for ``lam`` ``(N, K, C, OH, OW)``: ``(lam' (N, K, C, H, W), o (N, K))``."""
        lower, upper, offset = self.lines(relaxation)
        positive = lam.clamp(min=0)
        negative = lam - positive
        columns = positive.unsqueeze(3) * lower + negative.unsqueeze(3) * upper
        back = self.fold(columns.flatten(0, 1)).reshape(*lam.shape[:2], *self.in_shape)
        return back, (negative * offset).flatten(2).sum(-1)

    def transpose_patch(self, lam: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor,
                        offset: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`transpose` on windows: ``lam`` ``(M, C, Ph, Pw)`` with the lines cut into the same
        windows (``lower``/``upper`` ``(M, C, k, Ph, Pw)``, ``offset`` ``(M, C, Ph, Pw)``); returns
        the input windows ``(M, C, (Ph - 1) s + kh, (Pw - 1) s + kw)`` and the offsets ``(M,)``."""
        positive = lam.clamp(min=0)
        negative = lam - positive
        columns = positive.unsqueeze(2) * lower + negative.unsqueeze(2) * upper
        size = tuple((lam.shape[2 + d] - 1) * self.stride[d] + self.kernel[d] for d in range(2))
        back = F.fold(columns.reshape(len(lam), -1, lam.shape[2] * lam.shape[3]), size, self.kernel,
                      stride=self.stride)
        return back, (negative * offset).sum((1, 2, 3))


def as_pool_relaxation(relaxation: Relaxation | PoolRelaxation) -> PoolRelaxation:
    """``relaxation``, which the caller knows belongs to a max pool."""
    if not isinstance(relaxation, PoolRelaxation):
        raise TypeError(f"expected a max-pool relaxation, got {type(relaxation).__name__}")
    return relaxation


def as_relu_relaxation(relaxation: Relaxation | PoolRelaxation) -> Relaxation:
    """``relaxation``, which the caller knows belongs to a ReLU."""
    if not isinstance(relaxation, Relaxation):
        raise TypeError(f"expected a ReLU relaxation, got {type(relaxation).__name__}")
    return relaxation


def free_parameters(relaxation: Relaxation | PoolRelaxation) -> torch.Tensor:
    """What alpha-CROWN optimises (in [0, 1]): a ReLU's lower slopes, a pool's ``v`` and ``t``."""
    return relaxation.parameters if isinstance(relaxation, PoolRelaxation) else relaxation.lower_slope


def with_free_parameters(relaxation: Relaxation | PoolRelaxation,
                         parameters: torch.Tensor) -> Relaxation | PoolRelaxation:
    """``relaxation`` with the free values ``parameters`` (one set per bounded row)."""
    if isinstance(relaxation, PoolRelaxation):
        return replace(relaxation, parameters=parameters)
    return with_lower_slopes(relaxation, parameters)


def detached(relaxation: Relaxation | PoolRelaxation) -> Relaxation | PoolRelaxation:
    """``relaxation`` with every tensor detached."""
    return type(relaxation)(*(getattr(relaxation, f.name).detach() for f in fields(relaxation)))
