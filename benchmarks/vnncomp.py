"""Our complete verifier on the VNN-COMP known-answer cases (``/work/shared/vnncomp``).

    python benchmarks/vnncomp.py [--benchmark NAME ...] [--timeout S] [--limit N]
                                 [--method alpha-crown|crown]

Each case of ``cases.csv`` (optionally only the named benchmarks, the first ``--limit`` per
benchmark) is imported (ONNX), read (VNN-LIB) and decided by
:func:`shallowcert.verify.verify` with ``--timeout`` seconds (default 60) on one thread.
A verdict is *wrong* when it contradicts the known answer (``unsat`` on a ``sat`` case or
``sat`` on an ``unsat`` one); a crash of the verifier is recorded as ``error``; every ``sat`` answer's counterexample is run through
onnxruntime and must lie in the box and reach the unsafe set (tolerance 1e-6). Prints a
Markdown table (solved/total, wrong, total and mean seconds per benchmark) and writes
``benchmarks/results/vnncomp.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import csv
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

from shallowcert.atomic import write_json
from shallowcert.models.onnx_import import import_onnx
from shallowcert.verify import verify
from shallowcert.verify.property import Property
from shallowcert.verify.vnnlib import read_vnnlib

ROOT = Path("/work/shared/vnncomp")
RESULTS = Path(__file__).resolve().parent / "results" / "vnncomp.json"
TOLERANCE = 1e-6


def onnxruntime_check(onnx_path: Path, prop: Property, x: torch.Tensor) -> bool:
    """Whether ``x`` is in the box and its onnxruntime output is unsafe (within ``TOLERANCE``)."""
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    spec = session.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in spec.shape]
    output = session.run(None, {spec.name: x.reshape(shape).cpu().numpy().astype(np.float32)})[0]
    y = torch.from_numpy(np.asarray(output, dtype=np.float64).reshape(1, -1))
    flat, lower, upper = x.reshape(-1).double().cpu(), prop.lower.reshape(-1), prop.upper.reshape(-1)
    in_box = bool(((flat >= lower - TOLERANCE) & (flat <= upper + TOLERANCE)).all())
    return in_box and float(prop.violation(y)[0]) <= TOLERANCE


def run_case(row: dict[str, str], *, timeout: float, method: str) -> dict[str, Any]:
    onnx_path = ROOT / row["onnx"]
    net = import_onnx(onnx_path)
    prop = read_vnnlib(ROOT / row["vnnlib"], input_shape=net.input_shape, outputs=net.outputs)
    record: dict[str, Any] = {"benchmark": row["benchmark"], "onnx": row["onnx"], "vnnlib": row["vnnlib"],
                              "expected": row["expected"]}
    start = time.monotonic()
    try:
        result = verify(net.model, prop, timeout=timeout, method=method, device="cpu")
    except Exception as exc:  # a crash is a result of the benchmark, counted and shown, not the end of the run
        logging.exception("verify crashed on %s", row["vnnlib"])
        return record | {"status": "error", "error": f"{type(exc).__name__}: {exc}",
                         "seconds": time.monotonic() - start, "wrong": False}
    record |= {"status": result.status, "seconds": result.seconds, "by": result.method, "stats": result.stats}
    record["wrong"] = {result.status, row["expected"]} == {"sat", "unsat"}
    if result.status == "sat":
        record["counterexample_valid"] = result.counterexample is not None and \
            onnxruntime_check(onnx_path, prop, result.counterexample)
    return record


def summarise(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for name in dict.fromkeys(r["benchmark"] for r in records):
        mine = [r for r in records if r["benchmark"] == name]
        seconds = sum(r["seconds"] for r in mine)
        rows.append({"benchmark": name, "cases": len(mine),
                     "solved": sum(r["status"] == r["expected"] for r in mine),
                     "wrong": sum(r["wrong"] for r in mine),
                     "invalid_counterexamples": sum(r.get("counterexample_valid") is False for r in mine),
                     "timeouts": sum(r["status"] == "timeout" for r in mine),
                     "errors": sum(r["status"] == "error" for r in mine),
                     "seconds": seconds, "mean_seconds": seconds / len(mine)})
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| benchmark | solved / cases | wrong | invalid counterexamples | timeouts | errors | total s | mean s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['benchmark']} | {r['solved']} / {r['cases']} | {r['wrong']} | {r['invalid_counterexamples']} "
              f"| {r['timeouts']} | {r['errors']} | {r['seconds']:.1f} | {r['mean_seconds']:.2f} |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmark", action="append", help="only this benchmark (repeatable)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per case (default 60)")
    parser.add_argument("--limit", type=int, help="at most this many cases per benchmark")
    parser.add_argument("--method", default="alpha-crown", choices=("crown", "alpha-crown"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    with open(ROOT / "cases.csv", newline="") as handle:
        cases = [r for r in csv.DictReader(handle) if not args.benchmark or r["benchmark"] in args.benchmark]
    if args.limit is not None:
        cases = [r for r in cases if sum(c["benchmark"] == r["benchmark"] for c in cases[:cases.index(r)])
                 < args.limit]
    start = time.monotonic()
    records = []
    for row in cases:
        record = run_case(row, timeout=args.timeout, method=args.method)
        print(f"{row['benchmark']:9s} {Path(row['vnnlib']).name:40s} expected {row['expected']:5s} "
              f"got {record['status']:7s} {record['seconds']:6.2f} s", flush=True)
        records.append(record)
    rows = summarise(records)
    table = markdown(rows)
    print(table)
    write_json(args.out, {"command": " ".join(["python benchmarks/vnncomp.py"] + [
        f"--benchmark {b}" for b in args.benchmark or []] + [f"--timeout {args.timeout:g}", f"--method {args.method}"]
        + ([f"--limit {args.limit}"] if args.limit is not None else [])),
        "threads": args.threads, "wall_seconds": time.monotonic() - start,
        "summary": rows, "cases": records, "table": table})


if __name__ == "__main__":
    main()
