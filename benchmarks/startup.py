"""Start-up of ``shallowcert verify``: seconds from process start to exit on a small case.

    python benchmarks/startup.py [--repeats 5] [--out benchmarks/results/startup.json]

VNN-COMP counts a verifier's whole process, so a case that needs 0.1 s of bounds costs what
the imports and the model set-up cost. Each repeat runs ``shallowcert verify --onnx
test_small.onnx --vnnlib test_small.vnnlib`` (``/work/shared/vnncomp/test``, the default
onnxruntime check included) as a fresh process and takes its wall time (``time.perf_counter``
around ``subprocess.run``); the first repeat pays for a cold file cache when the files were not
read before. Then one more run under ``python -X importtime`` lists the modules whose own
import took longest (self time, microseconds). Prints a Markdown table and writes the JSON with
the load averages before and after.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from shallowcert.atomic import write_json

HERE = Path(__file__).resolve().parent
CASE = Path("/work/shared/vnncomp/test")


def verify_command(python: bool = False) -> list[str]:
    """The command that verifies the small case; ``python``: as ``python -X importtime -m shallowcert``."""
    if python:
        head = [sys.executable, "-X", "importtime", "-m", "shallowcert"]
    else:
        head = [shutil.which("shallowcert") or "shallowcert"]
    return [*head, "verify", "--onnx", str(CASE / "onnx" / "test_small.onnx"), "--vnnlib",
            str(CASE / "vnnlib" / "test_small.vnnlib"), "--timeout", "10"]


def timed_run() -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(verify_command(), capture_output=True, text=True, check=True)
    return time.perf_counter() - start, done.stdout


def slowest_imports(count: int) -> list[tuple[str, int]]:
    """The ``count`` modules with the longest own import time (microseconds) in one run."""
    done = subprocess.run(verify_command(python=True), capture_output=True, text=True, check=True)
    rows = []
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "self [us]" not in line:
            own, _, name = line[len("import time:"):].split("|")
            rows.append((name.strip(), int(own)))
    return sorted(rows, key=lambda row: -row[1])[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "startup.json")
    args = parser.parse_args()
    before = os.getloadavg()
    runs = [timed_run() for _ in range(args.repeats)]
    imports = slowest_imports(8)
    seconds = [s for s, _ in runs]
    result = {"command": " ".join(verify_command()), "seconds": seconds, "median_seconds": statistics.median(seconds),
              "verdict": runs[-1][1].strip().splitlines()[:1], "slowest_imports_us": imports,
              "load_average_before": before, "load_average_after": os.getloadavg()}
    write_json(args.out, result)
    print("| run | seconds |\n| --- | ---: |")
    for i, s in enumerate(seconds, 1):
        print(f"| {i} | {s:.2f} |")
    print(f"| median | {result['median_seconds']:.2f} |\n")
    print("| module (own import time) | ms |\n| --- | ---: |")
    for name, micros in imports:
        print(f"| {name} | {micros / 1000:.0f} |")
    print(f"\nload average before {before}, after {result['load_average_after']}; wrote {args.out}")


if __name__ == "__main__":
    main()
