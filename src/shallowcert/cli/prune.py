"""``shallowcert prune``: L1-norm filter pruning of a model directory.

Exactly one selection: ``--max-drop D`` (default, 0.0: the search of
:mod:`shallowcert.prune.search` on the validation split), or ``--count``, ``--ratio`` or
``--threshold`` with one value for every conv layer (``0.5``) or per layer as
``POSITION=VALUE`` pairs (``0=0.25,3=0.5``; positions in the nn.Sequential).
The output directory holds the pruned model, ``prune.json`` and one L1-norm histogram
per conv layer.
"""

from __future__ import annotations

import argparse

from shallowcert import atomic
from shallowcert.cli.common import (add_dataset_arguments, add_device_argument, add_model_argument, check_compatible,
                                    dataset_from_args, device_from_args, model_from_args, non_negative_float,
                                    print_json)
from shallowcert.models import describe, save_model
from shallowcert.prune import RULES, make_plan, plot_filter_norms, pruning_report, remove_filters, search_pruning

REPORT = "prune.json"


def layer_values(text: str) -> float | dict[int, float]:
    """``"0.5"`` -> 0.5 for every layer; ``"0=0.25,3=4"`` -> ``{0: 0.25, 3: 4.0}``."""
    try:
        if "=" not in text:
            return non_negative_float(text)
        values: dict[int, float] = {}
        for part in text.split(","):
            position, _, value = part.partition("=")
            values[int(position)] = non_negative_float(value)
        return values
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or POSITION=VALUE pairs, got '{text}'") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("prune", help="L1-norm filter pruning (Li et al. 2017) of a model directory")
    add_model_argument(p)
    add_dataset_arguments(p)
    rule = p.add_mutually_exclusive_group()
    rule.add_argument("--max-drop", type=non_negative_float, default=0.0,
                      help="search the largest pruning within this validation accuracy drop (default 0.0)")
    rule.add_argument("--count", type=layer_values, default=None, help="filters to remove per conv layer")
    rule.add_argument("--ratio", type=layer_values, default=None, help="fraction of filters to remove, in [0, 1)")
    rule.add_argument("--threshold", type=layer_values, default=None,
                      help="remove the filters whose L1 norm is below this value")
    p.add_argument("--out", required=True, help="directory to write the pruned model and its report to")
    add_device_argument(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    loaded = model_from_args(args, device=device_from_args(args))
    dataset = dataset_from_args(args)
    check_compatible(loaded, dataset)
    model, shape = loaded.model, dataset.input_shape
    rule = next((r for r in RULES if getattr(args, r) is not None), None)
    if rule is None:
        plan = search_pruning(model, dataset.val, input_shape=shape, max_drop=args.max_drop).plan
        selection = {"rule": "search", "max_drop": args.max_drop}
    else:
        plan = make_plan(model, rule, getattr(args, rule))
        selection = {"rule": rule, "values": getattr(args, rule)}
    pruned = remove_filters(model, plan, input_shape=shape)
    report = {"model": str(args.model), "dataset": dataset.name, "selection": selection,
              **pruning_report(model, pruned, plan, dataset)}
    metrics = {"dataset": dataset.name, "pruned_from": str(args.model), "val_accuracy": report["val_accuracy_after"],
               "test_accuracy": report["test_accuracy_after"]}
    with atomic.atomic_directory(args.out) as tmp:
        save_model(tmp, pruned, spec=describe(pruned), input_shape=shape, classes=dataset.classes, metrics=metrics)
        atomic.write_json(tmp / REPORT, report)
        plot_filter_norms(model, plan, tmp)
    print_json({k: report[k] for k in ("params_before", "params_after", "flops_before", "flops_after",
                                       "val_accuracy_before", "val_accuracy_after")})
    return 0
