"""``shallowcert export-onnx``: a model directory -> an ONNX file (batch dimension dynamic)."""

from __future__ import annotations

import argparse
import warnings

import torch

from shallowcert.atomic import atomic_path
from shallowcert.cli.common import add_model_argument, model_from_args, print_json


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("export-onnx", help="export a model directory to ONNX")
    add_model_argument(p)
    p.add_argument("--out", required=True, metavar="FILE.onnx")
    p.add_argument("--opset", type=int, default=17)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    loaded = model_from_args(args)
    example = torch.zeros(1, *loaded.input_shape)
    # The TorchScript exporter needs no extra packages; its deprecation notice is not the user's concern.
    with atomic_path(args.out) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(loaded.model, (example,), str(tmp), input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                          opset_version=args.opset, dynamo=False)
    print_json({"out": args.out, "input_shape": list(loaded.input_shape), "classes": loaded.classes})
    return 0
