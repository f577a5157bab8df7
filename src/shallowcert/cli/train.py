"""``shallowcert train``: cross-entropy training with early stopping, saved as a model directory."""

from __future__ import annotations

import argparse
from typing import Any

from torch import nn

from shallowcert.cli.common import (add_dataset_arguments, add_device_argument, dataset_from_args, device_from_args,
                                    positive_float, positive_int, print_json)
from shallowcert.models import save_model
from shallowcert.models.spec import expand
from shallowcert.data import Dataset
from shallowcert.training import OPTIMIZERS, FitConfig, FitResult, accuracy, train_classifier


def add_fit_arguments(parser: argparse.ArgumentParser, *, epochs: int = 10, lr: float = 1e-3) -> None:
    parser.add_argument("--epochs", type=positive_int, default=epochs)
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default="adam")
    parser.add_argument("--lr", type=positive_float, default=lr)
    parser.add_argument("--batch-size", type=positive_int, default=128)
    parser.add_argument("--patience", type=positive_int, default=5, help="epochs without validation gain before stopping")


def fit_config_from_args(args: argparse.Namespace) -> FitConfig:
    return FitConfig(epochs=args.epochs, optimizer=args.optimizer, lr=args.lr, batch_size=args.batch_size,
                     seed=args.seed, patience=args.patience)


def save_trained(out: str, model: nn.Sequential, *, spec: str, dataset: Dataset, result: FitResult,
                 config: FitConfig, **details: Any) -> dict[str, Any]:
    """Save a freshly trained model with its fit record (``details`` first: how it was trained)."""
    metrics = {
        "dataset": dataset.name,
        **details,
        "best_epoch": result.best_epoch,
        "val_accuracy": accuracy(model, dataset.val),
        "test_accuracy": accuracy(model, dataset.test),
        "train_seconds": round(result.seconds, 2),
        "config": vars(config),
        "history": result.history,
    }
    save_model(out, model, spec=spec, input_shape=dataset.input_shape, classes=dataset.classes, metrics=metrics)
    return metrics


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train a model with cross-entropy (early stopping on validation)")
    add_dataset_arguments(p)
    p.add_argument("--model", required=True, metavar="SPEC", help="architecture spec, e.g. scnn2:16-32 or wong-small")
    p.add_argument("--out", required=True, help="model directory to write")
    add_fit_arguments(p)
    add_device_argument(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    device = device_from_args(args)
    expand(args.model)  # reject a bad spec before loading data
    config = fit_config_from_args(args)
    dataset = dataset_from_args(args)
    model, result = train_classifier(args.model, dataset, config, device=device)
    metrics = save_trained(args.out, model, spec=args.model, dataset=dataset, result=result, config=config,
                           trainer="cross-entropy")
    print_json({k: metrics[k] for k in ("val_accuracy", "test_accuracy", "best_epoch", "train_seconds")})
    return 0
