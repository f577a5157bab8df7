"""``shallowcert import``: a network made elsewhere -> a model directory.

Either a PyTorch state_dict (e.g. convex_adversarial's published models) whose keys match
the spec's ``nn.Sequential`` (``--spec --state-dict``; read with
``torch.load(weights_only=True)``, which refuses arbitrary objects), or an ONNX file
(``--onnx``, e.g. a VNN-COMP network), translated by :mod:`shallowcert.models.onnx_import`
and described in ``model.json`` by the generic layer grammar, so it reloads without pickle.
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import torch

from shallowcert.cli.common import positive_int, print_json
from shallowcert.errors import UserError
from shallowcert.models import build, count_params, describe, save_model
from shallowcert.models.checkpoint import load_state
from shallowcert.models.onnx_import import import_onnx


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("import", help="turn a PyTorch state_dict or an ONNX file into a model directory")
    p.add_argument("--onnx", metavar="NET.onnx", help="an ONNX network (a chain of Gemm/MatMul/Conv/ReLU/...)")
    p.add_argument("--spec", help="architecture spec whose nn.Sequential keys match --state-dict")
    p.add_argument("--state-dict", metavar="FILE.pth")
    p.add_argument("--out", required=True)
    p.add_argument("--input-shape", default="1,28,28", help="C,H,W of the inputs (default 1,28,28; not with --onnx)")
    p.add_argument("--classes", type=positive_int, default=10, help="outputs (default 10; not with --onnx)")
    p.set_defaults(handler=run)


def parse_shape(text: str) -> tuple[int, int, int]:
    parts = text.split(",")
    if len(parts) != 3 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise UserError(f"--input-shape must be three positive integers C,H,W, got '{text}'")
    c, h, w = (int(p) for p in parts)
    return c, h, w


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as exc:
        raise UserError(f"{path}: not a loadable state_dict ({str(exc).splitlines()[0]})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"{path}: expected a dict of tensors (a state_dict)")
    return state


def run(args: argparse.Namespace) -> int:
    if args.onnx is not None:
        if args.spec is not None or args.state_dict is not None:
            raise UserError("give either --onnx or --spec with --state-dict, not both")
        return run_onnx(args)
    if args.spec is None or args.state_dict is None:
        raise UserError("give --onnx NET.onnx, or --spec SPEC with --state-dict FILE.pth")
    shape = parse_shape(args.input_shape)
    model = build(args.spec, shape, args.classes)
    load_state(model, read_state_dict(Path(args.state_dict)), source=args.state_dict)
    save_model(args.out, model, spec=args.spec, input_shape=shape, classes=args.classes,
               metrics={"imported_from": str(args.state_dict)})
    print_json({"out": args.out, "params": count_params(model)})
    return 0


def run_onnx(args: argparse.Namespace) -> int:
    imported = import_onnx(args.onnx)
    architecture = describe(imported.model)
    layout = {"onnx_input_shape": list(imported.onnx_input_shape), "onnx_input_reordered": imported.reorders_input,
              "onnxruntime_max_abs_diff": imported.max_abs_diff}
    order = {"onnx_input_order": imported.input_order.tolist()} if imported.reorders_input else {}
    save_model(args.out, imported.model, spec=architecture, input_shape=imported.input_shape,
               classes=imported.outputs, metrics={"imported_from": str(args.onnx), **layout, **order})
    print_json({"out": args.out, "architecture": architecture, "input_shape": list(imported.input_shape),
                "outputs": imported.outputs, "params": count_params(imported.model), **layout})
    return 0
