"""Arguments shared by several sub-commands, and their conversion to library objects."""

from __future__ import annotations

import argparse
import json
import math
from typing import TYPE_CHECKING

import torch

from shallowcert.device import DEVICE_CHOICES, resolve_device
from shallowcert.errors import UserError
from shallowcert.models.checkpoint import ModelDir, load_model

if TYPE_CHECKING:
    from shallowcert.data import Dataset


def add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default="fashion-mnist", help="dataset name (see `shallowcert datasets`)")
    parser.add_argument("--data-dir", default=None, help="directory holding the dataset's files")
    parser.add_argument("--seed", type=int, default=0, help="seed for the validation split and training")


def dataset_from_args(args: argparse.Namespace) -> Dataset:
    from shallowcert.data import load_dataset  # the data readers are slow to import; verify needs none

    return load_dataset(args.dataset, data_dir=args.data_dir, seed=args.seed)


def add_model_argument(parser: argparse.ArgumentParser, *, repeat: bool = False) -> None:
    if repeat:
        parser.add_argument("--model", required=True, action="append", metavar="DIR",
                            help="model directory (repeat to compare several)")
    else:
        parser.add_argument("--model", required=True, metavar="DIR", help="model directory")


def model_from_args(args: argparse.Namespace, *, device: torch.device | None = None) -> ModelDir:
    """The model directory ``--model``, read on the CPU and moved to ``device``."""
    return load_model(args.model, device=device)


def check_compatible(model: ModelDir, dataset: Dataset) -> None:
    """A model must match the dataset's input shape and class count."""
    if tuple(model.input_shape) != dataset.input_shape or model.classes != dataset.classes:
        raise UserError(f"the model expects inputs {tuple(model.input_shape)} and {model.classes} classes, "
                        f"dataset '{dataset.name}' has {dataset.input_shape} and {dataset.classes}")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got '{text}'") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text}")
    return value


def positive_float(text: str) -> float:
    value = non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError("expected a number > 0, got 0")
    return value


def print_json(obj: object) -> None:
    """The command's summary on stdout (the files it wrote are the real output)."""
    print(json.dumps(obj, indent=2))


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", metavar=DEVICE_CHOICES,
                        help="where to compute: auto (CUDA when available, else the CPU), cpu, cuda or cuda:N")


def device_from_args(args: argparse.Namespace) -> torch.device:
    return resolve_device(args.device)
