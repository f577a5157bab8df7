"""Filter ranking by L1 norm (Li et al. 2017, "Pruning Filters for Efficient ConvNets").

The score of filter ``j`` of a Conv2d with weight ``W`` (``C_out x C_in x k_h x k_w``) is
``s_j = sum_{c, u, v} |W[j, c, u, v]|`` (the bias is not part of the score). Filters with
the smallest scores are removed first.
"""

from __future__ import annotations

import torch
from torch import nn

from shallowcert.errors import UserError


def conv_indices(model: nn.Sequential) -> list[int]:
    """Positions of the Conv2d layers in ``model`` (the layers whose filters can be pruned)."""
    return [i for i, layer in enumerate(model) if isinstance(layer, nn.Conv2d)]


def conv_at(model: nn.Sequential, index: int) -> nn.Conv2d:
    """The Conv2d at position ``index`` of ``model`` (UserError if there is none)."""
    if not 0 <= index < len(model):
        raise UserError(f"layer {index} does not exist (the model has layers 0..{len(model) - 1})")
    layer = model[index]
    if not isinstance(layer, nn.Conv2d):
        raise UserError(f"layer {index} is {type(layer).__name__}, not a Conv2d "
                        f"(convolutions are at {conv_indices(model)})")
    return layer


@torch.no_grad()
def filter_l1_norms(conv: nn.Conv2d) -> torch.Tensor:
    """``s_j = sum |W[j]|`` for every filter ``j`` (float32 vector of length ``C_out``)."""
    return conv.weight.detach().abs().flatten(1).sum(dim=1).to(torch.float32)


def weakest_filters(conv: nn.Conv2d, count: int) -> tuple[int, ...]:
    """The ``count`` filters with the smallest L1 norms (ties: lower index first), sorted."""
    order = torch.sort(filter_l1_norms(conv), stable=True).indices
    return tuple(sorted(int(j) for j in order[:count]))
