"""Speed and strength of the robust-accuracy sweep against a per-eps Foolbox loop.

    python benchmarks/attacks.py [--model DIR] [--points N] [--steps T] [--eps GRID]
                                 [--step-size A | --relative-step R] [--random-start]

Without ``--model`` a wong-small is trained on Fashion-MNIST for one epoch (cross-entropy).
Both sides attack the same first N test points with L-inf PGD-T (default: 1,000 points,
PGD-100, step 0.01, no random start so both follow the same trajectories) at each radius of
the grid (default ``0:0.2:21``, input units), in float32 on ``--threads`` threads (default 2;
on a loaded machine one thread avoids OpenMP spin-waiting and gives steadier times). Wall
and CPU seconds are reported for both:

* ours: :func:`shallowcert.attacks.robust_accuracy` — only points not yet broken at a
  smaller radius are attacked, and each stops at its first adversarial iterate;
* Foolbox 3: ``LinfPGD(steps=T, abs_stepsize=A, random_start=False)`` run on every point
  at every radius, success judged on the final iterate.

Prints a Markdown table and writes ``benchmarks/results/attacks.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import foolbox as fb
import torch

from shallowcert.atomic import write_json
from shallowcert.attacks import PGD, parse_eps_grid, robust_accuracy
from shallowcert.data import load_dataset
from shallowcert.models import load_model
from shallowcert.training import FitConfig, train_classifier

RESULTS = Path(__file__).resolve().parent / "results" / "attacks.json"


def foolbox_per_eps(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, grid: list[float], *,
                    steps: int, step_size: float | None, relative_step: float | None, random_start: bool,
                    batch_size: int) -> tuple[list[float], float, float]:
    """Robust accuracy per radius from Foolbox's LinfPGD on every point; wall and CPU seconds."""
    fmodel = fb.PyTorchModel(model, bounds=(0, 1))
    if relative_step is not None:
        attack = fb.attacks.LinfPGD(steps=steps, rel_stepsize=relative_step, random_start=random_start)
    else:
        attack = fb.attacks.LinfPGD(steps=steps, abs_stepsize=step_size, random_start=random_start)
    started, cpu_started = time.perf_counter(), time.process_time()
    broken = torch.zeros(len(grid), x.shape[0], dtype=torch.bool)
    for eps_index, eps in enumerate(grid):
        for start in range(0, x.shape[0], batch_size):
            rows = slice(start, start + batch_size)
            _, _, success = attack(fmodel, x[rows], y[rows], epsilons=eps)
            broken[eps_index, rows] = success
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    return (~broken).double().mean(dim=1).tolist(), seconds, cpu_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model directory (default: train a wong-small for one epoch)")
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--eps", default="0:0.2:21", help="start:stop:count or a comma list (input units)")
    step = parser.add_mutually_exclusive_group()
    step.add_argument("--step-size", type=float, default=None, help="PGD step in input units (default 0.01)")
    step.add_argument("--relative-step", type=float, default=None, help="PGD step as a fraction of eps")
    parser.add_argument("--random-start", action="store_true", help="random starts (then trajectories differ)")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads for both runs")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON file (default {RESULTS})")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    step_size = 0.01 if args.step_size is None and args.relative_step is None else args.step_size

    dataset = load_dataset("fashion-mnist")
    if args.model:
        model, source = load_model(args.model).model, args.model
    else:
        started = time.perf_counter()
        model, _ = train_classifier("wong-small", dataset, FitConfig(epochs=1, seed=0))
        source = f"wong-small, 1 epoch of Fashion-MNIST ({time.perf_counter() - started:.0f} s)"
    model.eval()
    test = dataset.test.head(args.points)
    x, y = test.floats(), test.labels
    grid = parse_eps_grid(args.eps)

    options = {"steps": args.steps, "random_start": args.random_start}
    options.update({"relative_step": args.relative_step} if args.relative_step is not None
                   else {"step_size": step_size})
    cpu_started = time.process_time()
    ours = robust_accuracy(model, x, y, PGD(**options), grid, batch_size=args.batch_size)
    our_cpu_seconds = time.process_time() - cpu_started
    theirs, foolbox_seconds, foolbox_cpu_seconds = foolbox_per_eps(
        model, x, y, grid, steps=args.steps, step_size=step_size, relative_step=args.relative_step,
        random_start=args.random_start, batch_size=args.batch_size)
    differences = [a - b for a, b in zip(ours.robust_accuracy, theirs)]
    result = {
        "model": source,
        "points": len(test),
        "attack": ours.attack,
        "eps": grid,
        "threads": torch.get_num_threads(),
        "ours": {"seconds": ours.seconds, "cpu_seconds": our_cpu_seconds, "robust_accuracy": ours.robust_accuracy},
        "foolbox_per_eps": {"seconds": foolbox_seconds, "cpu_seconds": foolbox_cpu_seconds, "robust_accuracy": theirs,
                            "attack": f"foolbox {fb.__version__} LinfPGD({options}) per eps, every point"},
        "clean_accuracy": ours.clean_accuracy,
        "speedup": foolbox_seconds / ours.seconds,
        "cpu_speedup": foolbox_cpu_seconds / our_cpu_seconds,
        "ours_at_most_foolbox_at_every_eps": all(d <= 1e-12 for d in differences),
        "largest_difference": max(differences),
    }
    write_json(args.out, result)

    print(f"model: {source}; {len(test)} points; clean accuracy {ours.clean_accuracy:.4f}")
    print(f"ours: {ours.attack}\n")
    print("| eps | robust acc. (ours) | robust acc. (Foolbox per eps) | ours - Foolbox |")
    print("| --- | --- | --- | --- |")
    for eps, a, b in zip(grid, ours.robust_accuracy, theirs):
        print(f"| {eps:g} | {a:.4f} | {b:.4f} | {a - b:+.4f} |")
    print(f"\n| run | wall s | CPU s |\n| --- | --- | --- |\n"
          f"| ours (sweep, early stop) | {ours.seconds:.1f} | {our_cpu_seconds:.1f} |\n"
          f"| Foolbox per eps | {foolbox_seconds:.1f} | {foolbox_cpu_seconds:.1f} |\n\n"
          f"speed-up {result['speedup']:.1f}x wall, {result['cpu_speedup']:.1f}x CPU "
          f"({args.threads} threads); ours <= Foolbox at every eps: {result['ours_at_most_foolbox_at_every_eps']}")


if __name__ == "__main__":
    main()
