"""Benchmark: the robust loss with random projections, ours vs convex_adversarial's ``proj`` option.

On the same Fashion-MNIST training batches (the first ``--batches`` of ``--batch-size``), the
same model and ε, one thread, float32, inputs clipped to [0, 1] on both sides
(``bounded_input=True`` for convex_adversarial, ``domain=(0, 1)`` here), it times one training
step (loss forward + backward; the weights are not changed, so every side sees the same model)
of:

* the exact loss: our ``robust_loss(method="dual-exact")`` (the dual network the projections
  estimate, equal to convex_adversarial's) and ``convex_adversarial.robust_loss``;
* the projected loss at each ``--projections`` k: our ``projected_robust_loss`` and
  ``convex_adversarial.robust_loss(..., proj=k, norm_type="l1_median")``;

and the loss gap of each projected loss to its own library's exact loss on the same batch,
``(projected - exact) / exact``, averaged over the batches (mean, and mean absolute value).
The sides alternate within each batch, so machine load affects them alike; the load averages
(``os.getloadavg``) at the start and end are recorded. A side that raises (convex_adversarial cannot bound
some architectures) is recorded with its error message. The model is the seeded architecture at
initialisation, or ``--checkpoint DIR`` (a saved model, e.g. one trained robustly).

JSON goes to ``benchmarks/results/projected-loss-<spec>.json``; a Markdown table is printed.
Run: ``python benchmarks/projected_loss.py --spec cert-teacher --projections 10 50``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Callable

import torch
from convex_adversarial import robust_loss as ca_robust_loss

from shallowcert import atomic
from shallowcert.data import load_dataset
from shallowcert.models import load_model
from shallowcert.robust import projected_robust_loss, robust_loss
from shallowcert.training import build_seeded

RESULTS = Path(__file__).resolve().parent / "results"
DOMAIN = (0.0, 1.0)
Loss = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def timed_step(model: torch.nn.Module, loss_of: Loss, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """``(seconds, loss)`` of one forward + backward of ``loss_of``; gradients are discarded."""
    model.zero_grad(set_to_none=True)
    start = time.perf_counter()
    loss = loss_of(model, x, y)
    loss.backward()
    seconds = time.perf_counter() - start
    model.zero_grad(set_to_none=True)
    return seconds, float(loss.detach())


def sides(eps: float, projections: list[int]) -> dict[str, Loss]:
    """Every loss timed, by name: the two exact ones, then ours and theirs at each k."""
    found: dict[str, Loss] = {
        "shallowcert exact": lambda m, x, y: robust_loss(m, x, y, eps, method="dual-exact", domain=DOMAIN).loss,
        "convex_adversarial exact": lambda m, x, y: ca_robust_loss(m, eps, x, y, bounded_input=True)[0],
    }
    for k in projections:
        found[f"shallowcert proj={k}"] = (
            lambda m, x, y, k=k: projected_robust_loss(m, x, y, eps, projections=k, domain=DOMAIN).loss)
        found[f"convex_adversarial proj={k}"] = (
            lambda m, x, y, k=k: ca_robust_loss(m, eps, x, y, proj=k, norm_type="l1_median", bounded_input=True)[0])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="cert-teacher")
    parser.add_argument("--checkpoint", default=None, help="a saved model directory instead of the seeded init")
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--projections", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dataset = load_dataset("fashion-mnist")
    model = (load_model(args.checkpoint).model if args.checkpoint else build_seeded(args.spec, dataset, 0)).train()
    train = dataset.train.head(args.batch_size * args.batches)
    x_all, y_all = train.floats(), train.labels
    losses = sides(args.eps, args.projections)
    seconds: dict[str, list[float]] = {name: [] for name in losses}
    values: dict[str, list[float]] = {name: [] for name in losses}
    failed: dict[str, str] = {}
    load_start = os.getloadavg()
    for b in range(args.batches):
        x, y = x_all[b * args.batch_size:(b + 1) * args.batch_size], y_all[b * args.batch_size:(b + 1) * args.batch_size]
        for name, loss_of in losses.items():
            if name in failed:
                continue
            try:
                spent, value = timed_step(model, loss_of, x, y)
            except RuntimeError as exc:  # convex_adversarial cannot bound some architectures
                failed[name] = str(exc).splitlines()[0]
                continue
            seconds[name].append(spent)
            values[name].append(value)
    load_end = os.getloadavg()
    rows = []
    for name in losses:
        library = name.split(" ")[0]
        if name in failed or f"{library} exact" in failed:
            rows.append({"side": name, "error": failed.get(name) or failed[f"{library} exact"]})
            continue
        exact = values[f"{library} exact"]
        gaps = [(v - e) / e for v, e in zip(values[name], exact)]
        rows.append({"side": name, "ms_per_example": 1000 * sum(seconds[name]) / (args.batch_size * args.batches),
                     "mean_loss": statistics.fmean(values[name]), "gap": statistics.fmean(gaps),
                     "abs_gap": statistics.fmean(abs(g) for g in gaps)})
    result = {"spec": args.spec, "checkpoint": args.checkpoint, "eps": args.eps, "batch_size": args.batch_size,
              "batches": args.batches, "threads": args.threads, "dtype": "float32", "domain": list(DOMAIN),
              "loadavg_start": load_start, "loadavg_end": load_end, "machine": platform.processor() or platform.machine(),
              "torch": torch.__version__, "rows": rows}
    atomic.write_text(RESULTS / f"projected-loss-{Path(args.checkpoint).name if args.checkpoint else args.spec}.json",
                      json.dumps(result, indent=2) + "\n")
    print(f"{args.spec}, eps {args.eps}, batch {args.batch_size} x {args.batches}, {args.threads} thread(s), "
          f"load {load_start[0]:.2f} -> {load_end[0]:.2f}")
    print("| side | ms / example / step | mean loss | gap to exact | mean abs gap |\n| --- | ---: | ---: | ---: | ---: |")
    for row in rows:
        if "error" in row:
            print(f"| {row['side']} | fails: {row['error']} | | | |")
            continue
        print(f"| {row['side']} | {row['ms_per_example']:.2f} | {row['mean_loss']:.4f} | {row['gap']:+.2%} | "
              f"{row['abs_gap']:.2%} |")


if __name__ == "__main__":
    main()
