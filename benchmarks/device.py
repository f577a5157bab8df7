"""Benchmark: the same work on every available device (the CPU, and CUDA when present).

    python benchmarks/device.py [--model DIR] [--devices cpu,cuda] [--train-points N]
                                [--attack-points N] [--radius-points N] [--threads T]

On Fashion-MNIST with ``wong-small`` (conv16-32-fc100), for each device:

1. **train**: one epoch of cross-entropy training (Adam, batch 128, seed 0) on the first
   ``--train-points`` training points, validation accuracy on 1,000 validation points
   (:func:`shallowcert.training.fit`: data on the CPU, each batch moved as uint8);
2. **attack**: PGD-40 (step eps/4, no random start, early stop) at eps = 0.1 on the first
   ``--attack-points`` test points (:func:`shallowcert.attacks.robust_accuracy`);
3. **radius**: certified radii of the predicted class (dual bounds, float32, bracketing
   search with the shortcut) of the first ``--radius-points`` test points
   (:func:`shallowcert.certify.certified_radius`).

Steps 2 and 3 use one model on every device (``--model``, else
``benchmarks/results/wong-small-fmnist`` when it exists, else the model step 1 trained on
the first device), so their numbers can be compared across devices; timings on CUDA are
taken after ``torch.cuda.synchronize()`` and after one untimed warm-up of each step on a few
points (context creation and kernel loading are not counted). Writes
``benchmarks/results/device.json`` (or ``--out``) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path
from typing import Callable

import torch

from shallowcert import atomic
from shallowcert.attacks import PGD, robust_accuracy
from shallowcert.certify import certified_radius
from shallowcert.data import Dataset, load_dataset
from shallowcert.device import resolve_device
from shallowcert.models import load_model
from shallowcert.training import FitConfig, accuracy, build_seeded, fit

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_MODEL = RESULTS / "wong-small-fmnist"
EPS = 0.1


def timed(device: torch.device, work: Callable[[], object]) -> tuple[object, float]:
    """``work()`` and its wall-clock seconds (CUDA work finished before the clock stops)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    result = work()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return result, time.perf_counter() - started


def train_step(dataset: Dataset, device: torch.device, points: int) -> tuple[torch.nn.Module, dict[str, float]]:
    model = build_seeded("wong-small", dataset, 0)
    val = dataset.val.head(1000)
    result, seconds = timed(device, lambda: fit(model, dataset.train.head(points), config=FitConfig(epochs=1, seed=0),
                                                validate=lambda m: accuracy(m, val), device=device))
    return model, {"seconds": seconds, "points": points, "loss": result.history[0]["loss"],
                   "val_accuracy": result.best_score}


def attack_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device) -> dict[str, float]:
    attack = PGD(steps=40, relative_step=0.25, random_start=False)
    sweep, seconds = timed(device, lambda: robust_accuracy(model, x, y, attack, [EPS], device=device))
    return {"seconds": seconds, "points": len(x), "robust_accuracy": sweep.robust_accuracy[-1],
            "ms_per_point": 1000 * seconds / len(x)}


def radius_step(model: torch.nn.Module, x: torch.Tensor, device: torch.device) -> dict[str, float]:
    result, seconds = timed(device, lambda: certified_radius(model, x, method="dual", dtype=torch.float32,
                                                              device=device))
    return {"seconds": seconds, "points": len(x), "mean_radius": float(result.radius.double().mean()),
            "evaluations_per_point": float(result.evaluations.double().mean()), "ms_per_point": 1000 * seconds / len(x)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="wong-small model directory for the attack and radius steps")
    parser.add_argument("--devices", default=None, help="comma list (default: cpu, and cuda when available)")
    parser.add_argument("--train-points", type=int, default=20000)
    parser.add_argument("--attack-points", type=int, default=1000)
    parser.add_argument("--radius-points", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--data-dir", default=None, help="Fashion-MNIST files (default: the registry's search)")
    parser.add_argument("--out", default=str(RESULTS / "device.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = args.devices.split(",") if args.devices else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    devices = [resolve_device(name) for name in names]
    dataset = load_dataset("fashion-mnist", data_dir=args.data_dir, seed=0)
    test = dataset.test
    x_attack, y_attack = test.head(args.attack_points).floats(), test.head(args.attack_points).labels
    x_radius = test.head(args.radius_points).floats()
    model_path = args.model or (str(DEFAULT_MODEL) if DEFAULT_MODEL.is_dir() else None)
    shared = load_model(model_path).model if model_path else None
    rows: dict[str, dict[str, dict[str, float]]] = {}
    for device in devices:
        # untimed warm-up on a few points: CUDA context, kernels, allocator
        warm = build_seeded("wong-small", dataset, 0)
        fit(warm, dataset.train.head(256), config=FitConfig(epochs=1, seed=0), validate=lambda m: 0.0, device=device)
        robust_accuracy(warm, x_attack[:8], y_attack[:8], PGD(steps=2), [EPS], device=device)
        certified_radius(warm, x_radius[:8], device=device)
        trained, train = train_step(dataset, device, args.train_points)
        model = shared if shared is not None else trained.cpu()
        shared = model
        rows[str(device)] = {"train": train, "attack": attack_step(model, x_attack, y_attack, device),
                             "radius": radius_step(model, x_radius, device)}
        model.cpu()
    report = {
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "torch": torch.__version__,
                    "threads": torch.get_num_threads(),
                    "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
        "model": model_path or f"wong-small trained here on {args.train_points} points (1 epoch, {devices[0]})",
        "settings": {"train": "wong-small, 1 epoch, Adam lr 1e-3, batch 128, seed 0",
                     "attack": f"PGD-40, step eps/4, no random start, early stop, eps {EPS}",
                     "radius": "dual, float32, bracketing search, rtol 1%"},
        "devices": rows,
    }
    atomic.write_json(args.out, report)
    print("| device | train s (points) | val acc | PGD ms/point | robust acc | radius ms/point | mean radius |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, row in rows.items():
        print(f"| {name} | {row['train']['seconds']:.1f} ({row['train']['points']}) | "
              f"{row['train']['val_accuracy']:.4f} | {row['attack']['ms_per_point']:.2f} | "
              f"{row['attack']['robust_accuracy']:.4f} | {row['radius']['ms_per_point']:.2f} | "
              f"{row['radius']['mean_radius']:.5f} |")


if __name__ == "__main__":
    main()
