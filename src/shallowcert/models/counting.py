"""Parameter and FLOP counts, per layer and in total.

FLOPs are counted as multiply-accumulates (MACs) of the Conv2d and Linear layers for
one input, the convention of Li et al. (2017) and most pruning papers:

* Conv2d: ``C_out * H_out * W_out * (C_in / groups) * k_h * k_w``
* Linear: ``in_features * out_features``

Activations, pooling, batch norm and normalisation are counted as 0 MACs (their
parameters are counted).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn


@dataclass(frozen=True)
class LayerCost:
    index: int
    layer: str
    output_shape: tuple[int, ...]
    params: int
    macs: int


def layer_costs(model: nn.Sequential, input_shape: Sequence[int]) -> list[LayerCost]:
    """Per-layer parameter and MAC counts of ``model`` for one input of ``input_shape``."""
    costs: list[LayerCost] = []
    was_training = model.training
    model.eval()
    first = next(model.parameters())
    x = torch.zeros(1, *input_shape, dtype=first.dtype, device=first.device)
    with torch.no_grad():
        for i, layer in enumerate(model):
            y = layer(x)
            params = sum(p.numel() for p in layer.parameters())
            if isinstance(layer, nn.Conv2d):
                kh, kw = layer.kernel_size
                macs = y[0].numel() * (layer.in_channels // layer.groups) * kh * kw
            elif isinstance(layer, nn.Linear):
                macs = layer.in_features * layer.out_features
            else:
                macs = 0
            costs.append(LayerCost(i, type(layer).__name__, tuple(y.shape[1:]), params, macs))
            x = y
    model.train(was_training)
    return costs


def count_params(model: nn.Module) -> int:
    """All parameters of ``model`` (trainable or not)."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Sequential, input_shape: Sequence[int]) -> int:
    """Multiply-accumulates of ``model`` for one input of ``input_shape``."""
    return sum(c.macs for c in layer_costs(model, input_shape))
