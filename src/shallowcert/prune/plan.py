"""Which filters to remove: a plan, and the rules that make one from the L1 scores.

A plan maps the position of a Conv2d in the ``nn.Sequential`` to the (sorted) indices of
the filters to remove; layers not in the plan keep every filter. The rules apply one
value to every convolution, or per layer through a ``{position: value}`` mapping:

* ``count`` ``k``: remove the ``k`` filters with the smallest L1 norm;
* ``ratio`` ``r`` in ``[0, 1)``: remove ``floor(r * C_out)`` of them;
* ``threshold`` ``t >= 0``: remove every filter whose L1 norm is ``< t``.

Scores are always those of the unpruned model (Li et al.'s "independent" strategy: a
layer's filter norms still include the input channels that pruning an earlier layer
removes). A layer always keeps at least one filter (removing all of them is refused).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from torch import nn

from shallowcert.errors import UserError
from shallowcert.prune.ranking import conv_at, conv_indices, filter_l1_norms, weakest_filters

PrunePlan = dict[int, tuple[int, ...]]
RULES = ("count", "ratio", "threshold")


def _removal_count(conv: nn.Conv2d, rule: str, value: float, index: int) -> int:
    if not math.isfinite(value) or value < 0:
        raise UserError(f"layer {index}: the {rule} must be a finite number >= 0, got {value}")
    filters = conv.out_channels
    if rule == "count":
        if value != int(value):
            raise UserError(f"layer {index}: the filter count must be a whole number, got {value}")
        count = int(value)
    elif rule == "ratio":
        if value >= 1:
            raise UserError(f"layer {index}: the pruning ratio must be in [0, 1), got {value}")
        count = math.floor(value * filters)
    elif rule == "threshold":
        count = int((filter_l1_norms(conv) < value).sum())
    else:
        raise UserError(f"unknown pruning rule '{rule}' (choose from {', '.join(RULES)})")
    if count >= filters:
        raise UserError(f"layer {index}: removing {count} of its {filters} filters would leave none")
    return count


def make_plan(model: nn.Sequential, rule: str, values: float | Mapping[int, float]) -> PrunePlan:
    """The plan given by ``rule`` with one value for every conv, or ``{position: value}``."""
    per_layer = values if isinstance(values, Mapping) else {i: values for i in conv_indices(model)}
    plan: PrunePlan = {}
    for index, value in sorted(per_layer.items()):
        conv = conv_at(model, index)
        count = _removal_count(conv, rule, float(value), index)
        if count:
            plan[index] = weakest_filters(conv, count)
    return plan


def check_plan(model: nn.Sequential, plan: Mapping[int, tuple[int, ...]]) -> None:
    """Every entry names a conv layer and distinct existing filters, leaving at least one."""
    for index, removed in plan.items():
        conv = conv_at(model, index)
        if len(set(removed)) != len(removed) or any(not 0 <= j < conv.out_channels for j in removed):
            raise UserError(f"layer {index}: filters to remove must be distinct indices in "
                            f"0..{conv.out_channels - 1}, got {list(removed)}")
        if len(removed) >= conv.out_channels:
            raise UserError(f"layer {index}: removing all {conv.out_channels} filters is not possible")
