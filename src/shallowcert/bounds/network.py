"""Read an ``nn.Sequential`` into the engine's form: a list of affine maps and ReLUs.

Accepted layers: ``Linear``; ``Conv2d`` (any stride and zero padding, ``groups=1``,
``dilation=1``); ``ReLU``; ``Flatten``; the affine layers ``Normalize``, ``BatchNorm1d/2d``
in eval mode and ``AvgPool2d`` (as a per-channel convolution); ``Dropout`` in eval mode and
``Identity`` (skipped: they are the identity). Everything else raises
:class:`UnsupportedLayerError` naming the layer, never skipped silently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from shallowcert.bounds.affine import (
    AffineMap,
    ConvMap,
    LinearMap,
    ReshapeMap,
    ScaleMap,
)
from shallowcert.device import model_device
from shallowcert.errors import UnsupportedLayerError, UserError
from shallowcert.models.layers import Normalize


@dataclass(frozen=True)
class ReLUStep:
    """A ReLU acting on activations of shape ``shape``."""

    shape: tuple[int, ...]


Step = AffineMap | ReLUStep


def as_relu(step: Step) -> ReLUStep:
    """``step``, which the caller knows is a ReLU (e.g. at one of the ``relu_positions``)."""
    if not isinstance(step, ReLUStep):
        raise TypeError(f"expected a ReLU step, got {type(step).__name__}")
    return step


def as_affine(step: Step) -> AffineMap:
    """``step``, which the caller knows is an affine map."""
    if not isinstance(step, AffineMap):
        raise TypeError(f"expected an affine step, got {type(step).__name__}")
    return step


@dataclass(frozen=True)
class Network:
    """The model as steps; ``relu_positions[r]`` is the index in ``steps`` of the r-th ReLU."""

    steps: list[Step]
    input_shape: tuple[int, ...]

    @property
    def relu_positions(self) -> list[int]:
        return [i for i, s in enumerate(self.steps) if isinstance(s, ReLUStep)]

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.steps[-1].out_shape if isinstance(self.steps[-1], AffineMap) else self.steps[-1].shape


def _flat_layers(model: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    layers: list[tuple[str, nn.Module]] = []
    for name, child in model.named_children():
        qualified = f"{prefix}{name}"
        layers += _flat_layers(child, qualified + ".") if isinstance(child, nn.Sequential) else [(qualified, child)]
    return layers


def _refuse(name: str, layer: nn.Module, why: str) -> UnsupportedLayerError:
    return UnsupportedLayerError(f"layer {name} ({type(layer).__name__}) is not supported by the bounds engine: {why}")


def _chw(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """A 3-D activation shape (the caller has checked its length)."""
    channels, height, width = shape
    return channels, height, width


def _pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def read_network(model: nn.Module, input_shape: tuple[int, ...], dtype: torch.dtype, *,
                 device: torch.device | None = None) -> Network:
    """Convert ``model`` (an ``nn.Sequential``) for inputs of shape ``input_shape``.

    Parameters are cast to ``dtype`` (and moved to ``device``, default: the model's device)
    with differentiable ``.to`` calls, so gradients reach the model's own parameters. Raises
    :class:`UserError` for NaN/inf parameters or shape mismatches and
    :class:`UnsupportedLayerError` for layers it cannot bound soundly.
    """
    if not isinstance(model, nn.Sequential):
        raise UserError(f"the bounds engine needs an nn.Sequential model, got {type(model).__name__}")
    for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise UserError(f"model tensor '{name}' contains NaN or infinite values")
    device = model_device(model) if device is None else device
    steps: list[Step] = []
    shape = tuple(input_shape)
    for name, layer in _flat_layers(model):
        step = _read_layer(name, layer, shape, dtype, device)
        if step is not None:
            steps.append(step)
            shape = step.out_shape if isinstance(step, AffineMap) else step.shape
    if not steps:
        raise UserError("the model has no layers")
    return Network(steps, tuple(input_shape))


def _read_layer(name: str, layer: nn.Module, shape: tuple[int, ...], dtype: torch.dtype,
                device: torch.device) -> Step | None:
    def cast(t: torch.Tensor) -> torch.Tensor:
        return t.to(dtype=dtype, device=device)

    def cast_bias(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else cast(t)

    def need(dims: int) -> None:
        if len(shape) != dims:
            raise UserError(f"layer {name} ({type(layer).__name__}) expects a {dims}-D activation, gets shape {shape}")

    if isinstance(layer, nn.ReLU):
        return ReLUStep(shape)
    if isinstance(layer, (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d)):
        if layer.training and not isinstance(layer, nn.Identity):
            raise _refuse(name, layer, "dropout in training mode is random; call model.eval()")
        return None
    if isinstance(layer, nn.Linear):
        need(1)
        if shape[0] != layer.in_features:
            raise UserError(f"layer {name} (Linear) expects {layer.in_features} features, gets {shape[0]}")
        return LinearMap(cast(layer.weight), cast_bias(layer.bias))
    if isinstance(layer, nn.Conv2d):
        need(3)
        if layer.groups != 1 or _pair(layer.dilation) != (1, 1):
            raise _refuse(name, layer, "only groups=1 and dilation=1 convolutions")
        if isinstance(layer.padding, str) or layer.padding_mode != "zeros":
            raise _refuse(name, layer, "only numeric zero padding")
        if shape[0] != layer.in_channels:
            raise UserError(f"layer {name} (Conv2d) expects {layer.in_channels} channels, gets {shape[0]}")
        return ConvMap(cast(layer.weight), cast_bias(layer.bias), in_shape=_chw(shape), stride=_pair(layer.stride),
                       padding=_pair(layer.padding))
    if isinstance(layer, nn.Flatten):
        if layer.start_dim != 1 or layer.end_dim != -1:
            raise _refuse(name, layer, "only Flatten(start_dim=1, end_dim=-1)")
        return ReshapeMap(shape, (int(torch.Size(shape).numel()),))
    if isinstance(layer, Normalize):
        need(3)
        std, mean = cast(layer.std), cast(layer.mean)
        return ScaleMap(1.0 / std, -mean / std, in_shape=shape)
    if isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return _read_batchnorm(name, layer, shape, cast)
    if isinstance(layer, nn.AvgPool2d):
        need(3)
        return _read_avgpool(name, layer, shape, dtype, device)
    raise _refuse(name, layer, "supported are Linear, Conv2d, ReLU, Flatten, Normalize, BatchNorm (eval), "
                               "AvgPool2d, Dropout (eval), Identity")


def _read_batchnorm(name: str, layer: nn.BatchNorm1d | nn.BatchNorm2d, shape: tuple[int, ...],
                    cast: Callable[[torch.Tensor], torch.Tensor]) -> ScaleMap:
    """Eval-mode BatchNorm ``y = (x - mean) / sqrt(var + eps) * w + b`` as ``s * x + t``."""
    dims = 3 if isinstance(layer, nn.BatchNorm2d) else 1
    if layer.training or layer.running_mean is None or layer.running_var is None:
        raise _refuse(name, layer, "BatchNorm must be in eval mode with running statistics; call model.eval()")
    if len(shape) != dims or shape[0] != layer.num_features:
        raise UserError(f"layer {name} ({type(layer).__name__}) does not fit activation shape {shape}")
    scale = torch.rsqrt(cast(layer.running_var) + layer.eps)
    if layer.weight is not None:
        scale = scale * cast(layer.weight)
    shift = -cast(layer.running_mean) * scale
    if layer.bias is not None:
        shift = shift + cast(layer.bias)
    view = (-1, 1, 1) if dims == 3 else (-1,)
    return ScaleMap(scale.reshape(view), shift.reshape(view), in_shape=shape)


def _read_avgpool(name: str, layer: nn.AvgPool2d, shape: tuple[int, ...], dtype: torch.dtype,
                  device: torch.device) -> ConvMap:
    """``AvgPool2d`` as a per-channel convolution with weights ``1 / (kh * kw)``."""
    kernel = _pair(layer.kernel_size)
    stride = _pair(layer.stride if layer.stride is not None else layer.kernel_size)
    padding = _pair(layer.padding)
    if layer.ceil_mode or layer.divisor_override is not None or (padding != (0, 0) and not layer.count_include_pad):
        raise _refuse(name, layer, "only ceil_mode=False, no divisor_override, and count_include_pad with padding")
    channels = shape[0]
    weight = torch.full((channels, 1, *kernel), 1.0 / (kernel[0] * kernel[1]), dtype=dtype, device=device)
    return ConvMap(weight, None, in_shape=_chw(shape), stride=stride, padding=padding, groups=channels)
