"""The automatic search: the largest pruning whose validation accuracy stays within a tolerance.

Greedy, layer by layer, in network order. For conv layer ``l`` (earlier layers fixed at
their chosen pruning), bisection over ``k``, the number of its lowest-L1 filters removed,
in ``[0, C_out - 1]``: a candidate is accepted when

    acc_val(pruned) >= acc_val(original) - max_drop

and the largest accepted ``k`` is kept. Bisection assumes the accuracy falls as ``k``
grows; where it does not, the result is still sound (every kept plan was evaluated and
met the tolerance) but possibly not the largest. Only the validation split is used: the
search is given that split and nothing else. Cost: about ``sum_l log2(C_l)`` evaluations.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from shallowcert.data import Split
from shallowcert.device import model_device
from shallowcert.errors import UserError
from shallowcert.prune.plan import PrunePlan
from shallowcert.prune.ranking import conv_indices, weakest_filters
from shallowcert.prune.surgery import remove_filters
from shallowcert.training import accuracy

log = logging.getLogger(__name__)

ROUNDING = 1e-12  # accuracies are fractions k / n; this absorbs float rounding in the comparison


@dataclass(frozen=True)
class SearchResult:
    """The chosen plan, the validation accuracies before and after it, and the evaluations spent."""

    plan: PrunePlan
    val_accuracy_before: float
    val_accuracy_after: float
    evaluations: int


def search_pruning(model: nn.Sequential, val: Split, *, input_shape: Sequence[int], max_drop: float = 0.0,
                   batch_size: int = 512, device: torch.device | None = None) -> SearchResult:
    """Greedy per-layer bisection (module docstring) for the largest plan within ``max_drop``.

    Every candidate is evaluated on ``device`` (default: the model's device; the model is
    moved there in place).
    """
    if not 0.0 <= max_drop <= 1.0:
        raise UserError(f"the accuracy drop tolerance must be in [0, 1], got {max_drop}")
    model.to(model_device(model) if device is None else device)
    baseline = accuracy(model, val, batch_size=batch_size)
    floor = baseline - max_drop - ROUNDING
    plan: PrunePlan = {}
    current, evaluations = baseline, 0
    for index in conv_indices(model):
        conv = model[index]
        assert isinstance(conv, nn.Conv2d)  # conv_indices: the Conv2d layers
        low, high = 0, conv.out_channels - 1
        while low < high:
            middle = (low + high + 1) // 2
            candidate = {**plan, index: weakest_filters(conv, middle)}
            score = accuracy(remove_filters(model, candidate, input_shape=input_shape), val, batch_size=batch_size)
            evaluations += 1
            if score >= floor:
                low, current = middle, score
            else:
                high = middle - 1
        if low:
            plan[index] = weakest_filters(conv, low)
        log.info("layer %d: remove %d of %d filters (validation accuracy %.4f)", index, low, conv.out_channels,
                 current)
    return SearchResult(plan, baseline, current, evaluations)
