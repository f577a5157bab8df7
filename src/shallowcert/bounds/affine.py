"""The affine maps the engine propagates: each knows its linear part, bias and transpose.

An affine map is ``y = A x + b`` with ``A`` linear. Besides applying ``A`` (and ``|A|``
for interval arithmetic) every map applies ``A^T`` to a batch of coefficient tensors
(back-substitution). Spatial maps also apply ``A^T`` to *patches*: a coefficient tensor
over a ``Ph x Pw`` window of the output maps to one over a window of the input of size
``((Ph - 1) * stride + kernel)``; :attr:`window` gives ``(kernel, stride, padding)``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F

Pair = tuple[int, int]

PATCH_MATRIX_ENTRIES = 2 ** 18  # largest dense window matrix (entries) used for patches
GEMM_CHANNELS = 4  # transposed convolutions into at most this many channels go by im2col and products
DENSE_MATRIX_ENTRIES = 2 ** 15  # convolutions with at most this many matrix entries transpose as a product


def row_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``(a * b).sum()`` over the trailing dims of ``a`` ``(N, K, *shape)``; ``b`` broadcasts
    as ``(N or 1, 1, *shape)`` or ``(*shape)``: a batched matrix-vector product, no temporary."""
    if b.dim() == a.dim() and b.shape[1] == 1:
        return torch.matmul(a.flatten(2), b.flatten(2).transpose(1, 2)).squeeze(-1)
    if b.dim() == a.dim() - 2:
        return torch.matmul(a.flatten(2), b.reshape(-1))
    return (a * b).flatten(2).sum(-1)


class AffineMap(ABC):
    """``y = A x + b`` between activations of shape :attr:`in_shape` and :attr:`out_shape`."""

    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    bias: torch.Tensor | None  # full map of shape out_shape, or None
    window: tuple[Pair, Pair, Pair] | None = None  # (kernel, stride, padding); None: not spatial

    def spatial_window(self) -> tuple[Pair, Pair, Pair]:
        """(kernel, stride, padding) of a spatial map; TypeError for any other map."""
        if self.window is None:
            raise TypeError(f"{type(self).__name__} is not a spatial map")
        return self.window

    @abstractmethod
    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """``A x`` for ``x`` of shape ``(B, *in_shape)``."""

    @abstractmethod
    def apply_abs(self, x: torch.Tensor) -> torch.Tensor:
        """``|A| x`` (elementwise absolute value of the matrix of ``A``)."""

    @abstractmethod
    def transpose(self, lam: torch.Tensor) -> torch.Tensor:
        """``A^T lam`` for ``lam`` of shape ``(B, *out_shape)``; returns ``(B, *in_shape)``."""

    def pull_back(self, lam: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(A^T lam, lam · b)`` for ``lam`` ``(N, K, *out_shape)``: the coefficients on the input
        and the bias term per row ``(N, K)`` (``None`` without a bias)."""
        return self.transpose(lam), None if self.bias is None else row_dot(lam, self.bias)

    def transpose_patch(self, lam: torch.Tensor) -> torch.Tensor:
        """``A^T`` on output windows ``(M, C_out, Ph, Pw)`` -> input windows (spatial maps only)."""
        raise NotImplementedError(f"{type(self).__name__} has no patch form")


class LinearMap(AffineMap):
    """A fully connected layer: ``y = W x + b``."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        self.weight, self.bias = weight, bias
        self.in_shape, self.out_shape = (weight.shape[1],), (weight.shape[0],)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight.T

    def apply_abs(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight.abs().T

    def transpose(self, lam: torch.Tensor) -> torch.Tensor:
        return lam @ self.weight


class ConvMap(AffineMap):
    """A 2-D convolution with zero padding (any stride/padding; ``groups`` for average pooling)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, *, in_shape: tuple[int, int, int],
                 stride: Pair, padding: Pair, groups: int = 1) -> None:
        self.weight, self.stride, self.padding, self.groups = weight, stride, padding, groups
        self.in_shape = in_shape
        kernel = (weight.shape[2], weight.shape[3])
        out_hw = tuple((in_shape[1 + d] + 2 * padding[d] - kernel[d]) // stride[d] + 1 for d in range(2))
        self.out_shape = (weight.shape[0], out_hw[0], out_hw[1])
        # rows/columns of the input that the forward convolution never reads
        self.output_padding = tuple(
            in_shape[1 + d] - ((out_hw[d] - 1) * stride[d] - 2 * padding[d] + kernel[d]) for d in range(2))
        self.window = (kernel, stride, padding)
        self.bias = None if bias is None else bias.reshape(-1, 1, 1).expand(self.out_shape)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, stride=self.stride, padding=self.padding, groups=self.groups)

    def apply_abs(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight.abs(), stride=self.stride, padding=self.padding, groups=self.groups)

    def pull_back(self, lam: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The bias term as ``sum_c b_c sum_hw lam[c, h, w]`` (one bias per channel), from the same
        reshaped ``lam`` as the transpose, and recorded before it: autograd then adds the gradient
        of the sums (a broadcast) in place to the transposed convolution's, which it runs first
        (a product with the full bias map wrote two more coefficient-sized tensors per step)."""
        lead, flat = lam.shape[:-3], lam.reshape(-1, *self.out_shape)
        term = None if self.bias is None else row_dot(flat.sum((-2, -1)).reshape(*lead, -1), self.bias[:, 0, 0])
        return self._transpose(flat).reshape(*lead, *self.in_shape), term

    def transpose(self, lam: torch.Tensor) -> torch.Tensor:
        return self._transpose(lam.reshape(-1, *self.out_shape)).reshape(*lam.shape[:-3], *self.in_shape)

    def dense_matrix(self) -> torch.Tensor:
        """The matrix of ``A`` ``(out, in)``: the convolution of every basis image."""
        size = math.prod(self.in_shape)
        basis = torch.eye(size, dtype=self.weight.dtype, device=self.weight.device).reshape(size, *self.in_shape)
        return self.apply(basis).reshape(size, -1).T

    def _transpose(self, flat: torch.Tensor) -> torch.Tensor:
        """The transposed convolution of ``(B, *out_shape)``; a small map (at most
        :data:`DENSE_MATRIX_ENTRIES` in its matrix) as one product with its matrix instead (the
        last convolution of cert-teacher, 32x3x3 -> 64x1x1: 0.9 ms against 2.5, and 5.7 ms against
        12 with the gradient, for 576 rows on one CPU thread); into an image of at most
        :data:`GEMM_CHANNELS` channels (the input layer) by ATen's ``slow_conv_transpose2d``
        (a matrix product per point, then col2im) instead of mkldnn's: on a CROWN-IBP step of
        wong-small and cert-teacher (576 rows of 16x14x14 into 1x28x28) it was 7-11% faster
        at 1 and 2 CPU threads than an ordinary convolution of the kernel's phases, which was
        3.6x faster than mkldnn's transposed convolution into one channel; mkldnn stays faster
        into many channels (slower by 11-30% on the whole step when used everywhere)."""
        if math.prod(self.in_shape) * math.prod(self.out_shape) <= DENSE_MATRIX_ENTRIES:
            return (flat.flatten(1) @ self.dense_matrix()).reshape(len(flat), *self.in_shape)
        if self.in_shape[0] <= GEMM_CHANNELS and self.groups == 1:
            kernel = (self.weight.shape[2], self.weight.shape[3])
            out: torch.Tensor = torch.ops.aten.slow_conv_transpose2d(flat, self.weight, kernel, None, self.stride,
                                                                     self.padding, self.output_padding)
            return out
        return F.conv_transpose2d(flat, self.weight, stride=self.stride, padding=self.padding,
                                  output_padding=self.output_padding, groups=self.groups)

    def transpose_patch(self, lam: torch.Tensor) -> torch.Tensor:
        """Small windows (at most :data:`PATCH_MATRIX_ENTRIES` in the window's dense matrix):
        one matrix product with that matrix, built by transposing the one-hot windows; it ran
        several times faster than the transposed convolution of many tiny windows (4x4 to
        10x10: 7.7x on 2 CPU threads). Larger windows: the transposed convolution."""
        rows = math.prod(lam.shape[1:])
        out_hw = tuple((lam.shape[2 + d] - 1) * self.stride[d] + self.weight.shape[2 + d] for d in range(2))
        if rows * self.in_shape[0] * out_hw[0] * out_hw[1] > PATCH_MATRIX_ENTRIES:
            return F.conv_transpose2d(lam, self.weight, stride=self.stride, groups=self.groups)
        one_hot = torch.eye(rows, dtype=lam.dtype, device=lam.device).reshape(rows, *lam.shape[1:])
        matrix = F.conv_transpose2d(one_hot, self.weight, stride=self.stride, groups=self.groups).reshape(rows, -1)
        return (lam.reshape(len(lam), rows) @ matrix).reshape(len(lam), self.in_shape[0], *out_hw)


class ScaleMap(AffineMap):
    """An elementwise affine map ``y = s * x + t`` (input normalisation, BatchNorm in eval mode).

    ``scale`` and ``shift`` broadcast against ``in_shape`` (per channel: ``(C, 1, 1)``).
    """

    def __init__(self, scale: torch.Tensor, shift: torch.Tensor, *, in_shape: tuple[int, ...]) -> None:
        self.scale = scale
        self.in_shape = self.out_shape = in_shape
        self.bias = shift.expand(in_shape)
        self.window = ((1, 1), (1, 1), (0, 0)) if len(in_shape) == 3 else None

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale

    def apply_abs(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale.abs()

    def transpose(self, lam: torch.Tensor) -> torch.Tensor:
        return lam * self.scale

    def transpose_patch(self, lam: torch.Tensor) -> torch.Tensor:
        return lam * self.scale


class ReshapeMap(AffineMap):
    """A reshape (``nn.Flatten``): the identity on the flattened values."""

    def __init__(self, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> None:
        self.in_shape, self.out_shape, self.bias = in_shape, out_shape, None

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.out_shape)

    def apply_abs(self, x: torch.Tensor) -> torch.Tensor:
        return self.apply(x)

    def transpose(self, lam: torch.Tensor) -> torch.Tensor:
        return lam.reshape(*lam.shape[:-len(self.out_shape)], *self.in_shape)
