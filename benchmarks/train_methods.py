"""Benchmark: verified error reached per hour of certified training, by training method.

Trains the same seeded architecture (``--spec``, default cert-teacher) on the first
``--train-points`` Fashion-MNIST training points for ``--epochs`` epochs with each
``--methods`` entry, one thread, Adam (lr 1e-3, batch ``--batch-size``), inputs clipped to
[0, 1] as the study trains:

* ``crown-ibp``: the loss and ramps of Zhang et al. 2020 (:class:`CrownIbpSchedule`: eps from 0,
  kappa 1 -> 0, beta 1 -> 0 over the first ``--ramp-epochs`` epochs, batch by batch);
* ``dual-projected``: Wong & Kolter's loss with ``--projections`` Cauchy projections and their
  linear epsilon warm-up over ``--ramp-epochs`` epochs (:class:`EpsilonSchedule`);
* any other engine method (``dual``, ``ibp``, ...): Wong & Kolter's loss with that warm-up.

After every epoch the model is certified, exactly and in float64, at ``--eps`` on the first
``--points`` test points with ``dual`` and ``crown`` (this benchmark's measurement; the model is
never selected on it: each epoch's weights are kept). Training seconds exclude that
evaluation. The load averages at the start and end of each method are recorded.

JSON goes to ``benchmarks/results/train-methods-<spec>.json`` after each method; a Markdown
table is printed. Run: ``python benchmarks/train_methods.py --epochs 6 --train-points 12000``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import torch

from shallowcert import atomic
from shallowcert.certify import certify_points
from shallowcert.data import load_dataset
from shallowcert.robust import CrownIbpSchedule, EpsilonSchedule, robust_fit
from shallowcert.training import FitConfig, build_seeded

RESULTS = Path(__file__).resolve().parent / "results"
DOMAIN = (0.0, 1.0)
CERTIFIERS = ("dual", "crown")


def train_and_certify(args: argparse.Namespace, method: str) -> dict[str, Any]:
    """Train with ``method``, certifying the test points after every epoch (module docstring)."""
    dataset = load_dataset("fashion-mnist")
    test = dataset.test.head(args.points)
    x, y = test.floats(), test.labels
    model = build_seeded(args.spec, dataset, args.seed)
    schedule = (CrownIbpSchedule(args.eps, ramp_epochs=args.ramp_epochs) if method == "crown-ibp"
                else EpsilonSchedule(args.eps, warmup_epochs=args.ramp_epochs, start=min(1e-3, args.eps)))
    epochs: list[dict[str, Any]] = []
    evaluation = [0.0]
    start = time.perf_counter()

    def evaluate(net: torch.nn.Module) -> float:
        begin = time.perf_counter()
        row: dict[str, Any] = {"epoch": len(epochs) + 1, "train_seconds": begin - start - evaluation[0]}
        for certifier in CERTIFIERS:
            verdict = certify_points(net, x, y, args.eps, method=certifier, domain=DOMAIN, dtype=torch.float64)
            row["clean_error"] = 1.0 - verdict.clean_accuracy
            row[f"verified_error_{certifier}"] = verdict.robust_error_bound
        epochs.append(row)
        logging.info("%s epoch %d: %s", method, row["epoch"], row)
        evaluation[0] += time.perf_counter() - begin
        return float(len(epochs))  # every epoch is the newest best: the last weights are kept

    load_start = os.getloadavg()
    robust_fit(model, dataset.train.head(args.train_points), schedule=schedule, method=method, domain=DOMAIN,
               config=FitConfig(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                                patience=args.epochs), validate=evaluate, projections=args.projections)
    return {"method": method, "projections": args.projections if method == "dual-projected" else None,
            "loadavg_start": load_start, "loadavg_end": os.getloadavg(), "epochs": epochs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="cert-teacher")
    parser.add_argument("--methods", nargs="+", default=["crown-ibp", "dual-projected"])
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--ramp-epochs", type=int, default=3)
    parser.add_argument("--train-points", type=int, default=12000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--projections", type=int, default=10)
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    result: dict[str, Any] = {key: value for key, value in vars(args).items() if key != "methods"}
    result.update(dtype="float64 certificates, float32 training", domain=list(DOMAIN), torch=torch.__version__,
                  runs=[])
    out = RESULTS / f"train-methods-{args.spec}.json"
    for method in args.methods:
        result["runs"].append(train_and_certify(args, method))
        atomic.write_text(out, json.dumps(result, indent=2) + "\n")
    print(f"{args.spec}, eps {args.eps}, {args.train_points} training points, {args.threads} thread(s)")
    print("| method | epoch | training s | clean error | verified error (dual) | verified error (crown) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for run in result["runs"]:
        for row in run["epochs"]:
            print(f"| {run['method']} | {row['epoch']} | {row['train_seconds']:.0f} | {row['clean_error']:.3f} | "
                  f"{row['verified_error_dual']:.3f} | {row['verified_error_crown']:.3f} |")


if __name__ == "__main__":
    main()
