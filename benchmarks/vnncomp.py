"""Our complete verifier on the VNN-COMP known-answer cases (``/work/shared/vnncomp``).

    python benchmarks/vnncomp.py [--benchmarks a,b,...] [--timeout S[,S...]] [--threads N]
                                 [--limit N] [--method alpha-crown|crown] [--cli]
                                 [--cases FILE.csv] [--out FILE.json]

Each case of ``cases.csv`` (or ``--cases``, e.g. ``reference_45.csv``; optionally only the
named benchmarks and the first ``--limit`` per benchmark) is imported (ONNX, checked against
onnxruntime), read (VNN-LIB, its box moved to the model's input layout) and decided by
:func:`shallowcert.verify.verify` with ``--timeout`` seconds (default 60; several, comma-separated,
run every case at each) on ``--threads``
torch threads (default 1). Import and reading are timed apart (``load_seconds``); the
verdict's time is ``seconds``. With ``--cli`` every case is instead a fresh ``shallowcert
verify --out DIR`` process, as VNN-COMP runs a tool: ``seconds`` is then the process's wall
time, start-up included, and the counterexample checked is the file it wrote.

A verdict is *wrong* when it contradicts the known answer (``unsat`` on a ``sat`` case or
``sat`` on an ``unsat`` one); a crash of the verifier (or a refused import) is recorded as
``error``; every ``sat`` answer's counterexample is moved back to the ONNX input's layout
and run through onnxruntime: it must lie in the box and reach the unsafe set (tolerance
1e-6), else it counts as *invalid*. Prints one line per case, then a Markdown table per
timeout, benchmark and network (solved/cases, wrong, invalid counterexamples, timeouts, errors,
total and mean seconds) and writes ``benchmarks/results/vnncomp.json`` (or ``--out``)
with the machine's load averages before and after.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

from shallowcert.atomic import write_json
from shallowcert.models.onnx_import import ImportedModel, import_onnx
from shallowcert.verify import verify
from shallowcert.verify.property import Property
from shallowcert.verify.vnnlib import read_vnnlib
from shallowcert.verify.witness import read_counterexample

ROOT = Path("/work/shared/vnncomp")
RESULTS = Path(__file__).resolve().parent / "results" / "vnncomp.json"
TOLERANCE = 1e-6


def onnxruntime_check(onnx_path: Path, prop: Property, x: torch.Tensor) -> bool:
    """Whether ``x`` (ONNX input layout) is in ``prop``'s box (written in that layout) and its
    onnxruntime output is unsafe (within ``TOLERANCE``)."""
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    spec = session.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in spec.shape]
    output = session.run(None, {spec.name: x.reshape(shape).cpu().numpy().astype(np.float32)})[0]
    y = torch.from_numpy(np.asarray(output, dtype=np.float64).reshape(1, -1))
    flat, lower, upper = x.reshape(-1).double().cpu(), prop.lower.reshape(-1), prop.upper.reshape(-1)
    in_box = bool(((flat >= lower - TOLERANCE) & (flat <= upper + TOLERANCE)).all())
    return in_box and float(prop.violation(y)[0]) <= TOLERANCE


def run_case(row: dict[str, str], networks: dict[str, ImportedModel], *, timeout: float,
             method: str) -> dict[str, Any]:
    """One case: import (cached per network), read, verify, re-check; the JSON record."""
    onnx_path = ROOT / row["onnx"]
    record: dict[str, Any] = {"benchmark": row["benchmark"], "network": Path(row["onnx"]).stem,
                              "onnx": row["onnx"], "vnnlib": row["vnnlib"], "expected": row["expected"]}
    record |= {k: row[k] for k in ("reference_verdict", "reference_seconds") if k in row}
    start = time.monotonic()
    try:
        if row["onnx"] not in networks:
            networks[row["onnx"]] = import_onnx(onnx_path, check=True)
        net = networks[row["onnx"]]
        written = read_vnnlib(ROOT / row["vnnlib"], input_shape=net.onnx_input_shape, outputs=net.outputs)
        prop = net.model_property(written)
        record["load_seconds"] = time.monotonic() - start
        result = verify(net.model, prop, timeout=timeout, method=method, device="cpu")
    except Exception as exc:  # a crash is a result of the benchmark, counted and shown, not the end of the run
        logging.exception("verify crashed on %s", row["vnnlib"])
        return record | {"status": "error", "error": f"{type(exc).__name__}: {exc}",
                         "seconds": time.monotonic() - start, "wrong": False}
    record |= {"status": result.status, "seconds": result.seconds, "by": result.method, "stats": result.stats}
    record["wrong"] = {result.status, row["expected"]} == {"sat", "unsat"}
    if result.status == "sat":
        record["counterexample_valid"] = result.counterexample is not None and onnxruntime_check(
            onnx_path, written, net.to_onnx_layout(result.counterexample.detach().cpu().unsqueeze(0))[0])
    return record


def run_case_cli(row: dict[str, str], networks: dict[str, ImportedModel], *, timeout: float, method: str,
                 threads: int) -> dict[str, Any]:
    """One case as a fresh ``shallowcert verify`` process; the JSON record."""
    onnx_path = ROOT / row["onnx"]
    record: dict[str, Any] = {"benchmark": row["benchmark"], "network": Path(row["onnx"]).stem,
                              "onnx": row["onnx"], "vnnlib": row["vnnlib"], "expected": row["expected"]}
    record |= {k: row[k] for k in ("reference_verdict", "reference_seconds") if k in row}
    if row["onnx"] not in networks:
        networks[row["onnx"]] = import_onnx(onnx_path, check=True)
    net = networks[row["onnx"]]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    with tempfile.TemporaryDirectory() as out:
        start = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "shallowcert", "verify", "--onnx", str(onnx_path), "--vnnlib",
                               str(ROOT / row["vnnlib"]), "--timeout", f"{timeout:g}", "--method", method,
                               "--device", "cpu", "--out", out], capture_output=True, text=True, env=env)
        record["seconds"] = time.monotonic() - start
        if done.returncode != 0 or not (Path(out) / "result.json").exists():
            return record | {"status": "error", "error": done.stderr.strip().splitlines()[-1:], "wrong": False}
        result = json.loads((Path(out) / "result.json").read_text())
        record |= {"status": result["status"], "verify_seconds": result["seconds"], "by": result["method"],
                   "stats": result["stats"]}
        record["wrong"] = {result["status"], row["expected"]} == {"sat", "unsat"}
        if result["status"] == "sat":
            written = read_vnnlib(ROOT / row["vnnlib"], input_shape=net.onnx_input_shape, outputs=net.outputs)
            file = Path(out) / "counterexample.txt"
            record["counterexample_valid"] = file.exists() and onnxruntime_check(
                onnx_path, written, read_counterexample(file)[0])
    return record


def summarise(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (timeout, benchmark, network), in the order they first appear."""
    rows = []
    for key in dict.fromkeys((r["timeout"], r["benchmark"], r["network"]) for r in records):
        mine = [r for r in records if (r["timeout"], r["benchmark"], r["network"]) == key]
        seconds = sum(r["seconds"] for r in mine)
        rows.append({"timeout": key[0], "benchmark": key[1], "network": key[2], "cases": len(mine),
                     "solved": sum(r["status"] == r["expected"] for r in mine),
                     "wrong": sum(r["wrong"] for r in mine),
                     "invalid_counterexamples": sum(r.get("counterexample_valid") is False for r in mine),
                     "timeouts": sum(r["status"] == "timeout" for r in mine),
                     "errors": sum(r["status"] == "error" for r in mine),
                     "seconds": seconds, "mean_seconds": seconds / len(mine)})
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| timeout s | benchmark | network | solved / cases | wrong | invalid counterexamples | timeouts "
             "| errors | total s | mean s |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['timeout']:g} | {r['benchmark']} | {r['network']} | {r['solved']} / {r['cases']} | {r['wrong']} "
              f"| {r['invalid_counterexamples']} | {r['timeouts']} | {r['errors']} | {r['seconds']:.1f} "
              f"| {r['mean_seconds']:.2f} |" for r in rows]
    return "\n".join(lines)


def select(cases: list[dict[str, str]], benchmarks: list[str] | None, limit: int | None) -> list[dict[str, str]]:
    """The cases of ``benchmarks`` (all when ``None``), at most ``limit`` per benchmark."""
    chosen, seen = [], {}  # type: ignore[var-annotated]
    for row in cases:
        if benchmarks and row["benchmark"] not in benchmarks:
            continue
        seen[row["benchmark"]] = seen.get(row["benchmark"], 0) + 1
        if limit is None or seen[row["benchmark"]] <= limit:
            chosen.append(row)
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmarks", help="comma-separated benchmark names (default: all)")
    parser.add_argument("--timeout", default="60", help="seconds per case, or several comma-separated (default 60)")
    parser.add_argument("--limit", type=int, help="at most this many cases per benchmark")
    parser.add_argument("--method", default="alpha-crown", choices=("crown", "alpha-crown"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cli", action="store_true", help="run each case as a fresh shallowcert verify process")
    parser.add_argument("--cases", type=Path, default=ROOT / "cases.csv", help="the cases table (default cases.csv)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    benchmarks = args.benchmarks.split(",") if args.benchmarks else None
    timeouts = [float(t) for t in args.timeout.split(",")]
    with open(args.cases, newline="") as handle:
        cases = select(list(csv.DictReader(handle)), benchmarks, args.limit)
    load_before = os.getloadavg()
    start = time.monotonic()
    records: list[dict[str, Any]] = []
    networks: dict[str, ImportedModel] = {}
    for timeout in timeouts:
        for row in cases:
            record = {"timeout": timeout} | (
                run_case_cli(row, networks, timeout=timeout, method=args.method, threads=args.threads) if args.cli
                else run_case(row, networks, timeout=timeout, method=args.method))
            print(f"{timeout:4g} s {row['benchmark']:15s} {Path(row['vnnlib']).name:60s} expected "
                  f"{row['expected']:5s} got {record['status']:7s} {record['seconds']:6.2f} s", flush=True)
            records.append(record)
    rows = summarise(records)
    table = markdown(rows)
    print(table)
    command = " ".join(["python benchmarks/vnncomp.py", f"--timeout {args.timeout}", f"--threads {args.threads}",
                        f"--method {args.method}"] + (["--cli"] if args.cli else [])
                       + ([f"--benchmarks {args.benchmarks}"] if benchmarks else [])
                       + ([f"--limit {args.limit}"] if args.limit is not None else [])
                       + ([f"--cases {args.cases}"] if args.cases != ROOT / "cases.csv" else []))
    write_json(args.out, {"command": command, "threads": args.threads, "wall_seconds": time.monotonic() - start,
                          "load_average_before": load_before, "load_average_after": os.getloadavg(),
                          "summary": rows, "cases": records, "table": table})


if __name__ == "__main__":
    main()
