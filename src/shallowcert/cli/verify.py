"""``shallowcert verify``: decide a VNN-LIB property on an ONNX network or a model directory.

Prints the answer (``unsat``: the property holds; ``sat``: a counterexample exists;
``unknown``; ``timeout``) as the first line of stdout, then a JSON summary. With ``--out DIR``
it writes ``DIR/result.json`` and, for ``sat``, ``DIR/counterexample.txt`` in the VNN-COMP
format. A counterexample is re-checked by running the network in its own dtype (float32 for
ONNX); one that fails the re-check is not reported: the answer becomes ``unknown``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from torch import nn

from shallowcert import atomic
from shallowcert.cli.common import add_device_argument, device_from_args, positive_float, print_json
from shallowcert.models import load_model
from shallowcert.models.onnx_import import import_onnx
from shallowcert.verify import VERIFY_METHODS, verify
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
    add_device_argument(p)
    p.set_defaults(handler=run)


def load_network(args: argparse.Namespace) -> tuple[nn.Module, tuple[int, ...], int]:
    """The network of ``--onnx`` or ``--model``: model, input shape (no batch), outputs."""
    if args.onnx is not None:
        imported = import_onnx(args.onnx)
        return imported.model, imported.input_shape, imported.outputs
    loaded = load_model(args.model)
    return loaded.model, tuple(loaded.input_shape), loaded.classes


def run(args: argparse.Namespace) -> int:
    model, input_shape, outputs = load_network(args)
    prop = read_vnnlib(args.vnnlib, input_shape=input_shape, outputs=outputs)
    device = device_from_args(args)
    model = model.to(device).eval()
    result = verify(model, prop, timeout=args.timeout, method=args.method, device=device, seed=args.seed)
    record: dict[str, Any] = {
        "status": result.status, "seconds": result.seconds, "method": result.method,
        "network": str(args.onnx or args.model), "property": str(args.vnnlib), "timeout": args.timeout,
        "bound": args.method, "stats": result.stats, "counterexample": None,
    }
    witness = None
    if result.status == "sat":
        witness = _checked_counterexample(model, prop, result, record)
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


def _checked_counterexample(model: nn.Module, prop: Any, result: VerificationResult,
                            record: dict[str, Any]) -> str | None:
    """Re-run the network on the verifier's counterexample; the file text, or ``None`` (and
    ``record`` downgraded to ``unknown``) when it does not hold."""
    found = result.counterexample
    check = None if found is None else recheck(model, prop, found)
    if check is not None and found is not None:
        record["counterexample"] = {"file": COUNTEREXAMPLE, "in_box": check.in_box, "violation": check.violation,
                                    "input": found.reshape(-1).tolist(),
                                    "output": check.output.reshape(-1).tolist()}
    if check is None or found is None or not check.holds:
        log.warning("the verifier's counterexample does not hold on the network (%s); answering unknown",
                    "none given" if check is None else f"in box: {check.in_box}, violation {check.violation:.3g}")
        record["status"] = "unknown"
        if record["counterexample"] is not None:
            record["counterexample"]["file"] = None
        return None
    return format_counterexample(found, check.output)
