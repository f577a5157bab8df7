"""``shallowcert verify``: decide a VNN-LIB property on an ONNX network or a model directory.

Prints the answer (``unsat``: the property holds; ``sat``: a counterexample exists;
``unknown``; ``timeout``) as the first line of stdout, then a JSON summary. With ``--out DIR``
it writes ``DIR/result.json`` and, for ``sat``, ``DIR/counterexample.txt`` in the VNN-COMP
format. A counterexample is re-checked by running the network in its own dtype (float32 for
ONNX) and, for ``--onnx``, by onnxruntime on the original file; one that fails either
re-check is not reported: the answer becomes ``unknown``.

VNN-LIB's ``X_i`` follow the ONNX input's layout (NHWC for a Keras/tf2onnx network); the box
is moved to the imported model's layout before verifying, and the counterexample back to
the ONNX layout before it is written. A model directory that ``shallowcert import --onnx``
wrote from such a network keeps that layout (``onnx_input_order`` in its metrics), so the
same VNN-LIB files apply to it.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import torch

from shallowcert import atomic
from shallowcert.cli.common import add_device_argument, device_from_args, positive_float, print_json
from shallowcert.errors import UserError
from shallowcert.models.checkpoint import load_model
from shallowcert.models.onnx_import import ImportedModel, import_onnx
from shallowcert.verify.complete import VERIFY_METHODS, verify
from shallowcert.verify.property import Property
from shallowcert.verify.result import VerificationResult
from shallowcert.verify.vnnlib import read_vnnlib
from shallowcert.verify.witness import format_counterexample, recheck

log = logging.getLogger(__name__)

RESULT = "result.json"
COUNTEREXAMPLE = "counterexample.txt"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("verify", help="decide a VNN-LIB property (unsat/sat/unknown/timeout)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--onnx", metavar="NET.onnx", help="the network as ONNX")
    source.add_argument("--model", metavar="DIR", help="the network as a model directory")
    p.add_argument("--vnnlib", required=True, metavar="PROP.vnnlib", help="the property (input box, unsafe outputs)")
    p.add_argument("--timeout", type=positive_float, default=60.0, help="seconds (default 60)")
    p.add_argument("--method", choices=VERIFY_METHODS, default="alpha-crown",
                   help="whole-box bound whose intermediate bounds branch and bound keeps (default alpha-crown)")
    p.add_argument("--seed", type=int, default=0, help="seed of the attack steps (default 0)")
    p.add_argument("--out", metavar="DIR", help="write result.json (and counterexample.txt) here")
    p.add_argument("--no-onnxruntime-check", dest="onnxruntime_check", action="store_false",
                   help="do not compare the imported network with onnxruntime, nor re-check the counterexample "
                        "with it (default: both, required)")
    add_device_argument(p)
    p.set_defaults(handler=run)


def load_network(args: argparse.Namespace) -> ImportedModel:
    """The network of ``--onnx`` (checked against onnxruntime unless told not to) or
    ``--model`` (whose input layout is the model's own)."""
    if args.onnx is not None:
        return import_onnx(args.onnx, check=args.onnxruntime_check)
    loaded = load_model(args.model)
    shape = tuple(loaded.input_shape)
    order = loaded.metrics.get("onnx_input_order")
    if order is None:
        return ImportedModel(loaded.model, shape, loaded.classes, str(args.model), shape,
                             torch.arange(int(torch.Size(shape).numel())))
    onnx_shape = tuple(int(d) for d in loaded.metrics["onnx_input_shape"])
    order_t = torch.tensor(order, dtype=torch.int64)
    if sorted(order) != list(range(int(torch.Size(shape).numel()))) or torch.Size(onnx_shape).numel() != len(order):
        raise UserError(f"{args.model}: metrics.json has an onnx_input_order that is not a permutation of the input")
    return ImportedModel(loaded.model, shape, loaded.classes, str(args.model), onnx_shape, order_t)


def run(args: argparse.Namespace) -> int:
    network = load_network(args)
    written = read_vnnlib(args.vnnlib, input_shape=network.onnx_input_shape, outputs=network.outputs)
    prop = network.model_property(written)
    device = device_from_args(args)
    model = network.model.to(device).eval()
    result = verify(model, prop, timeout=args.timeout, method=args.method, device=device, seed=args.seed)
    record: dict[str, Any] = {
        "status": result.status, "seconds": result.seconds, "method": result.method,
        "network": str(args.onnx or args.model), "property": str(args.vnnlib), "timeout": args.timeout,
        "bound": args.method, "stats": result.stats, "counterexample": None,
        "onnxruntime_max_abs_diff": network.max_abs_diff,
    }
    witness = None
    if result.status == "sat":
        witness = _checked_counterexample(network, prop, written, result, record,
                                          onnxruntime=args.onnx is not None and args.onnxruntime_check)
    if args.out is not None:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        if witness is not None:
            atomic.write_text(out / COUNTEREXAMPLE, witness)
        elif (out / COUNTEREXAMPLE).exists():
            (out / COUNTEREXAMPLE).unlink()  # a stale file from an earlier run would contradict result.json
        atomic.write_json(out / RESULT, record)
    print(record["status"])
    print_json({k: record[k] for k in ("status", "seconds", "method", "network", "property")} | {"out": args.out})
    return 0


def _checked_counterexample(network: ImportedModel, prop: Property, written: Property, result: VerificationResult,
                            record: dict[str, Any], *, onnxruntime: bool) -> str | None:
    """Re-run the network (and onnxruntime, when asked) on the verifier's counterexample; the
    file text (in the ONNX input's layout), or ``None`` (and ``record`` downgraded to
    ``unknown``) when it does not hold."""
    check = None if result.counterexample is None else recheck(network.model, prop, result.counterexample)
    x = None if result.counterexample is None else \
        network.to_onnx_layout(result.counterexample.detach().cpu().unsqueeze(0))[0]
    problem = "none given" if check is None else "" if check.holds else \
        f"in box: {check.in_box}, violation {check.violation:.3g}"
    if check is not None and x is not None:
        record["counterexample"] = {"file": COUNTEREXAMPLE, "in_box": check.in_box, "violation": check.violation,
                                    "input": x.reshape(-1).tolist(), "output": check.output.reshape(-1).tolist()}
        if onnxruntime and not problem:
            from shallowcert.models.onnx_check import onnxruntime_violation
            violation = onnxruntime_violation(network.source, written, x)
            record["counterexample"]["onnxruntime_violation"] = violation
            if not violation <= 0.0:
                problem = f"onnxruntime gives violation {violation:.3g}"
    if problem:
        log.warning("the verifier's counterexample does not hold on the network (%s); answering unknown", problem)
        record["status"] = "unknown"
        if record["counterexample"] is not None:
            record["counterexample"]["file"] = None
        return None
    assert check is not None and x is not None
    return format_counterexample(x, check.output)
