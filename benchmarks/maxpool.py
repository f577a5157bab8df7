"""CROWN on a max-pool network against auto_LiRPA's CROWN: robust error bound and speed.

    python benchmarks/maxpool.py --model DIR [--points 500] [--eps E] [--threads 1] [--output JSON]
        [--lirpa-python /work/lirpa-venv/bin/python]

The model (e.g. ``teacher-svhn`` trained on Fashion-MNIST) is bounded on the first ``points``
test points, float64, one L-inf radius ``eps`` without domain clipping, the margin spec of the
true class (so a misclassified point is never certified): by ``shallowcert`` (``crown``, and
``ibp`` for reference) in this process, and by auto_LiRPA 0.7.1 (``method="CROWN"``) in its own
virtual environment (``benchmarks/lirpa_peer.py``, a subprocess: the package never imports it),
on the same points, weights, dtype and thread count. Times are wall seconds of the bound calls
only; the load averages (``os.getloadavg``) before and after are recorded with them. Prints a
Markdown table and writes ``--output`` (default ``benchmarks/results/maxpool.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from shallowcert.atomic import write_json
from shallowcert.bounds import InputSet, lower_bounds, margin_spec
from shallowcert.data import load_dataset, to_float
from shallowcert.models import load_model

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "maxpool.json"
LIRPA_PYTHON = "/work/lirpa-venv/bin/python"


def layer_list(model: nn.Sequential) -> list[list]:
    """``[type, *constructor arguments]`` per layer, for the peer to rebuild the model."""
    layers: list[list] = []
    for layer in model:
        if isinstance(layer, nn.Conv2d):
            layers.append(["Conv2d", layer.in_channels, layer.out_channels, list(layer.kernel_size),
                           list(layer.stride), list(layer.padding)])
        elif isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)):
            layers.append([type(layer).__name__, layer.kernel_size, layer.stride, layer.padding])
        elif isinstance(layer, nn.Linear):
            layers.append(["Linear", layer.in_features, layer.out_features])
        elif isinstance(layer, (nn.ReLU, nn.Flatten)):
            layers.append([type(layer).__name__])
        else:
            raise SystemExit(f"benchmark: layer {type(layer).__name__} has no peer equivalent here")
    return layers


def _summary(name: str, bound: torch.Tensor, seconds: float) -> dict:
    certified = (bound > 0).all(1)
    return {"method": name, "ms_per_point": 1000 * seconds / len(bound), "certified": float(certified.float().mean()),
            "robust_error_bound": float(1 - certified.float().mean()), "mean_bound": float(bound.mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model directory (safetensors + JSON spec)")
    parser.add_argument("--points", type=int, default=500)
    parser.add_argument("--eps", type=float, default=0.004)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--chunk", type=int, default=25, help="points per auto_LiRPA compute_bounds call")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--lirpa-python", default=LIRPA_PYTHON)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    loaded = load_model(args.model)
    model = loaded.model.eval().double()
    dataset = load_dataset("fashion-mnist")
    test = dataset.test.head(args.points)
    x = to_float(test.images).double()
    spec = margin_spec(test.labels, dataset.classes).double()
    eps = torch.full((len(x),), args.eps, dtype=torch.float64)
    load_before = os.getloadavg()
    rows, ours = [], {}
    with torch.no_grad():
        accuracy = float((model(x).argmax(1) == test.labels).float().mean())
        for method in ("crown", "ibp"):
            start = time.perf_counter()
            ours[method] = lower_bounds(model, InputSet(x, eps, domain=None), spec, method=method)
            rows.append(_summary(f"shallowcert {method}", ours[method], time.perf_counter() - start))
    with tempfile.TemporaryDirectory() as scratch:
        problem, result = Path(scratch) / "problem.pt", Path(scratch) / "result.json"
        torch.save({"layers": layer_list(model), "state": model.state_dict(), "x": x, "spec": spec, "eps": args.eps},
                   problem)
        subprocess.run([args.lirpa_python, str(HERE / "lirpa_peer.py"), str(problem), str(result),
                        "--threads", str(args.threads), "--chunk", str(args.chunk)], check=True)
        peer = json.loads(result.read_text())
    theirs = torch.tensor(peer["lower"], dtype=torch.float64)
    rows.append(_summary("auto_LiRPA 0.7.1 CROWN", theirs, peer["seconds"]))
    load_after = os.getloadavg()
    crown = ours["crown"]
    tolerance = 1e-9 * (1 + theirs.abs())
    result = {
        "model": str(args.model), "architecture": loaded.spec,
        "points": len(x), "eps": args.eps, "dtype": "float64", "threads": args.threads, "domain": None,
        "clean_accuracy": accuracy, "rows": rows,
        "speedup_crown_vs_auto_lirpa": rows[-1]["ms_per_point"] / rows[0]["ms_per_point"],
        "margins_tighter": int((crown > theirs + tolerance).sum()), "margins_looser": int((crown < theirs - tolerance).sum()),
        "margins": crown.numel(), "max_looser_by": float((theirs - crown).clamp(min=0).max()),
        "points_certified_only_by_ours": int(((crown > 0).all(1) & ~(theirs > 0).all(1)).sum()),
        "points_certified_only_by_auto_lirpa": int(((theirs > 0).all(1) & ~(crown > 0).all(1)).sum()),
        "load_average_before": list(load_before), "load_average_after": list(load_after),
    }
    write_json(args.output, result)
    print(f"{args.model}: {len(x)} Fashion-MNIST test points (clean accuracy {accuracy:.2%}), eps={args.eps}, "
          f"float64, {args.threads} thread(s), no domain clipping; load {load_before[0]:.1f} -> {load_after[0]:.1f}\n")
    print("| method | ms / point | certified | robust error bound | mean bound |\n| --- | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(f"| {row['method']} | {row['ms_per_point']:.1f} | {row['certified']:.2%} | "
              f"{row['robust_error_bound']:.2%} | {row['mean_bound']:.4f} |")
    print(f"\nCROWN vs auto_LiRPA: {result['speedup_crown_vs_auto_lirpa']:.2f}x the speed; margins tighter "
          f"{result['margins_tighter']}, looser {result['margins_looser']} of {result['margins']} "
          f"(by at most {result['max_looser_by']:.2e})")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
