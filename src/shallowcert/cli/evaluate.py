"""``shallowcert evaluate``: accuracy and per-class accuracy of a model directory, as JSON."""

from __future__ import annotations

import argparse

from shallowcert import atomic
from shallowcert.cli.common import (add_dataset_arguments, add_device_argument, add_model_argument, check_compatible,
                                    dataset_from_args, device_from_args, model_from_args, print_json)
from shallowcert.training import accuracy, per_class_accuracy


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("evaluate", help="accuracy and per-class accuracy of a model")
    add_model_argument(p)
    add_dataset_arguments(p)
    p.add_argument("--split", choices=("train", "val", "test"), default="test")
    p.add_argument("--out", default=None, help="also write the JSON to this file")
    add_device_argument(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    loaded = model_from_args(args, device=device_from_args(args))
    dataset = dataset_from_args(args)
    check_compatible(loaded, dataset)
    split = getattr(dataset, args.split)
    result = {
        "model": str(args.model),
        "dataset": dataset.name,
        "split": args.split,
        "n": len(split),
        "accuracy": accuracy(loaded.model, split),
        "per_class_accuracy": per_class_accuracy(loaded.model, split, dataset.classes),
    }
    if args.out:
        atomic.write_json(args.out, result)
    print_json(result)
    return 0
