"""torch layers for ONNX convolutions, pools and elementwise affine maps, built exactly.

* A convolution with asymmetric zero padding ``(top, left, bottom, right)`` (tf2onnx emits
  them for Keras ``padding="same"`` with stride 2) is the symmetric convolution with
  padding ``P = (max(top, bottom), max(left, right))`` whose kernel gets ``P - top`` zero rows
  in front and ``P - bottom`` behind (columns likewise): output ``i`` then reads input rows
  ``s i - top + r`` for the original kernel rows ``r``, and the output size
  ``floor((n + top + bottom - k) / s) + 1`` is unchanged.
* A per-channel affine map ``s * x + t`` that cannot fold into a neighbour becomes
  ``Normalize(mean = -t / s, std = 1 / s)`` when every ``s > 0``, otherwise an eval-mode
  ``BatchNorm`` with ``running_mean = 0``, ``running_var = 1 - eps`` (its default ``eps``, so
  that a model directory, which rebuilds BatchNorm with that default, reloads it unchanged),
  ``weight = s`` and ``bias = t``: ``s * x + t`` up to float32 rounding of ``1 - eps``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from shallowcert.models.layers import Normalize


def tensor(array: np.ndarray) -> torch.Tensor:
    """A float32 torch copy of ``array``."""
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def conv2d(weight: np.ndarray, bias: np.ndarray, stride: tuple[int, int],
           pads: tuple[int, int, int, int]) -> nn.Conv2d:
    """``nn.Conv2d`` with ``weight (out, in, kh, kw)`` and zero ``pads (top, left, bottom, right)``."""
    top, left, bottom, right = pads
    padding = (max(top, bottom), max(left, right))
    weight = np.pad(weight, ((0, 0), (0, 0), (padding[0] - top, padding[0] - bottom),
                             (padding[1] - left, padding[1] - right)))
    layer = nn.Conv2d(weight.shape[1], weight.shape[0], (weight.shape[2], weight.shape[3]), stride=stride,
                      padding=padding)
    assert layer.bias is not None
    with torch.no_grad():
        layer.weight.copy_(tensor(weight))
        layer.bias.copy_(tensor(bias.reshape(-1)))
    return layer


def pooled_size(size: int, kernel: int, stride: int, before: int, after: int) -> int:
    """Output length ``floor((size + before + after - kernel) / stride) + 1`` of a conv or pool."""
    return (size + before + after - kernel) // stride + 1


def channel_affine(scale: np.ndarray, shift: np.ndarray) -> nn.Module:
    """``scale * x + shift`` per channel of an image ``(C, H, W)`` (``scale``, ``shift`` of
    shape ``(C,)``): ``Normalize`` or an eval-mode ``BatchNorm2d`` (module docstring)."""
    if bool((scale > 0).all()):
        return Normalize(tensor(-shift / scale), tensor(1.0 / scale))
    return _batchnorm(nn.BatchNorm2d(len(scale)), scale, shift)


def feature_affine(scale: np.ndarray, shift: np.ndarray) -> nn.Module:
    """``scale * x + shift`` per feature of a vector ``(F,)``: an eval-mode ``BatchNorm1d``."""
    return _batchnorm(nn.BatchNorm1d(len(scale)), scale, shift)


def _batchnorm(layer: nn.modules.batchnorm._BatchNorm, scale: np.ndarray, shift: np.ndarray) -> nn.Module:
    assert layer.running_mean is not None and layer.running_var is not None
    with torch.no_grad():
        layer.weight.copy_(tensor(scale))
        layer.bias.copy_(tensor(shift))
        layer.running_mean.zero_()
        layer.running_var.fill_(1.0 - layer.eps)
    return layer.eval()


def fold_into(layer: nn.Linear | nn.Conv2d, scale: np.ndarray, shift: np.ndarray) -> bool:
    """Replace ``layer``'s weights so that it computes ``scale * layer(x) + shift``; ``scale``
    and ``shift`` have the layer's output shape. ``False`` (nothing changed) for a convolution
    whose map is not constant over each output channel."""
    scale, shift = (np.ascontiguousarray(a, dtype=np.float64) for a in (scale, shift))
    if isinstance(layer, nn.Conv2d):
        uniform = all(bool(np.all(a == a[:, :1, :1])) for a in (scale, shift))
        if not uniform:
            return False
        scale, shift = scale[:, 0, 0], shift[:, 0, 0]
        view: tuple[int, ...] = (-1, 1, 1, 1)
    else:
        view = (-1, 1)
    assert layer.bias is not None
    with torch.no_grad():
        layer.weight.copy_(layer.weight.double() * torch.from_numpy(scale).reshape(view))
        layer.bias.copy_(layer.bias.double() * torch.from_numpy(scale) + torch.from_numpy(shift))
    return True
