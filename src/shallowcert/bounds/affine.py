"""The affine maps the engine propagates: each knows its linear part, bias and transpose.

An affine map is ``y = A x + b`` with ``A`` linear. Besides applying ``A`` (and ``|A|``
for interval arithmetic) every map applies ``A^T`` to a batch of coefficient tensors
(back-substitution). Spatial maps also apply ``A^T`` to *patches*: a coefficient tensor
over a ``Ph x Pw`` window of the output maps to one over a window of the input of size
``((Ph - 1) * stride + kernel)``; :attr:`window` gives ``(kernel, stride, padding)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F

Pair = tuple[int, int]


class AffineMap(ABC):
    """``y = A x + b`` between activations of shape :attr:`in_shape` and :attr:`out_shape`."""

    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    bias: torch.Tensor | None  # full map of shape out_shape, or None
    window: tuple[Pair, Pair, Pair] | None = None  # (kernel, stride, padding); None: not spatial

    @abstractmethod
    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """``A x`` for ``x`` of shape ``(B, *in_shape)``."""

    @abstractmethod
    def apply_abs(self, x: torch.Tensor) -> torch.Tensor:
        """``|A| x`` (elementwise absolute value of the matrix of ``A``)."""

    @abstractmethod
    def transpose(self, lam: torch.Tensor) -> torch.Tensor:
        """``A^T lam`` for ``lam`` of shape ``(B, *out_shape)``; returns ``(B, *in_shape)``."""

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

    def transpose(self, lam: torch.Tensor) -> torch.Tensor:
        lead = lam.shape[:-3]
        out = F.conv_transpose2d(lam.reshape(-1, *self.out_shape), self.weight, stride=self.stride,
                                 padding=self.padding, output_padding=self.output_padding, groups=self.groups)
        return out.reshape(*lead, *self.in_shape)

    def transpose_patch(self, lam: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose2d(lam, self.weight, stride=self.stride, groups=self.groups)


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
