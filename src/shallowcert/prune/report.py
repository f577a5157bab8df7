"""What a pruning did: sizes, MACs, accuracies and filters kept, as a JSON-ready dict."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from shallowcert.data import Dataset
from shallowcert.models import count_macs, count_params
from shallowcert.prune.ranking import conv_indices
from shallowcert.training import accuracy


def layer_summary(original: nn.Sequential, plan: Mapping[int, tuple[int, ...]]) -> list[dict[str, Any]]:
    """Per conv layer: filters before, filters kept, and the indices removed."""
    rows = []
    for index in conv_indices(original):
        removed = list(plan.get(index, ()))
        conv = original[index]
        assert isinstance(conv, nn.Conv2d)  # conv_indices: the Conv2d layers
        filters = conv.out_channels
        rows.append({"layer": index, "filters_before": filters, "filters_kept": filters - len(removed),
                     "removed": removed})
    return rows


def pruning_report(original: nn.Sequential, pruned: nn.Sequential, plan: Mapping[int, tuple[int, ...]],
                   dataset: Dataset) -> dict[str, Any]:
    """Params, MACs (``flops_*``, multiply-accumulates per input), val/test accuracy before and after.

    Test accuracy is measured here only to report the plan already chosen (on validation).
    """
    shape = dataset.input_shape
    params_before, params_after = count_params(original), count_params(pruned)
    macs_before, macs_after = count_macs(original, shape), count_macs(pruned, shape)
    return {
        "params_before": params_before,
        "params_after": params_after,
        "params_removed_fraction": 1.0 - params_after / params_before,
        "flops_before": macs_before,
        "flops_after": macs_after,
        "flops_removed_fraction": 1.0 - macs_after / macs_before,
        "val_accuracy_before": accuracy(original, dataset.val),
        "val_accuracy_after": accuracy(pruned, dataset.val),
        "test_accuracy_before": accuracy(original, dataset.test),
        "test_accuracy_after": accuracy(pruned, dataset.test),
        "layers": layer_summary(original, plan),
    }
