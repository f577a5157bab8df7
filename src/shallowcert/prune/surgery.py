"""Structural filter removal: the pruned model is a smaller ``nn.Sequential`` for real.

Removing filter ``j`` of a Conv2d removes its output channel ``j`` (row ``j`` of the weight
and bias ``b_j``), channel ``j`` of a BatchNorm2d that follows, input channel ``j`` of the
next Conv2d, or, after Flatten, the block of ``H * W`` columns ``j*H*W .. (j+1)*H*W - 1``
of the first Linear (ReLU and pooling in between act per channel and pass it through).

The dependency tracking is done by ``torch-pruning`` (Fang et al. 2023,
``DependencyGraph``), which traces the model on an example input of ``input_shape``.
The network computes the same function after removal when every removed channel is zero
wherever the next Conv2d or Linear reads it (e.g. a filter with zero weights and a bias
<= 0 followed by ReLU); otherwise removal changes the function.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import torch
import torch_pruning
from torch import nn

from shallowcert.errors import UserError
from shallowcert.prune.plan import check_plan


def remove_filters(model: nn.Sequential, plan: Mapping[int, tuple[int, ...]], *,
                   input_shape: Sequence[int]) -> nn.Sequential:
    """A pruned copy of ``model`` without the filters of ``plan`` (``model`` is not changed),
    on ``model``'s device."""
    if not isinstance(model, nn.Sequential):
        raise UserError(f"pruning needs an nn.Sequential model, got {type(model).__name__}")
    check_plan(model, plan)
    pruned = copy.deepcopy(model)
    was_training = pruned.training
    pruned.eval()
    first = next(pruned.parameters())
    example = torch.zeros(1, *input_shape, dtype=first.dtype, device=first.device)
    with torch.enable_grad():
        graph = torch_pruning.DependencyGraph().build_dependency(pruned, example_inputs=example)
        for index, removed in sorted(plan.items()):
            if removed:
                group = graph.get_pruning_group(pruned[index], torch_pruning.prune_conv_out_channels,
                                                idxs=list(removed))
                group.prune()
    for index, removed in plan.items():
        before, after = model[index], pruned[index]
        assert isinstance(before, nn.Conv2d) and isinstance(after, nn.Conv2d)  # the plan names Conv2d layers
        expected = before.out_channels - len(removed)
        if after.out_channels != expected:  # pragma: no cover - a torch-pruning regression
            raise RuntimeError(f"layer {index}: expected {expected} filters after pruning, "
                               f"found {pruned[index].out_channels}")
    pruned.train(was_training)
    return pruned
