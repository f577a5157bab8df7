"""``shallowcert attack``: robust accuracy along an eps grid for one or more models.

Writes ``attack.json`` (the attack, ``n``, the eps grid, and per model its clean accuracy,
robust accuracy per eps, smallest breaking eps per point and seconds), ``attack.csv``
(``model,eps,robust_accuracy``) and ``attack.png`` (all models on one plot) to ``--out``.
Radii are in input units (inputs in [0, 1]).
"""

from __future__ import annotations

import argparse
import csv
import io
import time
from pathlib import Path
from typing import Any

from shallowcert import atomic
from shallowcert.attacks import (ATTACKS, IterativeAttack, SweepResult, make_attack, parse_eps_grid,
                                 plot_robust_accuracy, robust_accuracy)
from shallowcert.cli.common import (add_dataset_arguments, add_device_argument, add_model_argument, check_compatible,
                                    dataset_from_args, device_from_args, non_negative_float, positive_float,
                                    positive_int, print_json)
from shallowcert.models import load_model

# Attack options settable from the command line (flag name = option name with dashes).
OPTIONS = ("steps", "step_size", "relative_step", "random_start", "restarts", "decay")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("attack", help="robust accuracy against FGSM/PGD/BIM/MIM along an eps grid")
    add_model_argument(p, repeat=True)
    add_dataset_arguments(p)
    p.add_argument("--attack", choices=tuple(ATTACKS), default="pgd")
    p.add_argument("--eps", required=True, help="radii in input units: start:stop:count (0:0.2:21) or a,b,c")
    p.add_argument("--steps", type=positive_int, default=None, help="iterations (default: the attack's)")
    p.add_argument("--step-size", type=positive_float, default=None, help="step alpha in input units")
    p.add_argument("--relative-step", type=positive_float, default=None, help="step alpha as a fraction of eps")
    p.add_argument("--random-start", action=argparse.BooleanOptionalAction, default=None,
                   help="start PGD at a random point of the ball (seeded by --seed)")
    p.add_argument("--restarts", type=positive_int, default=None)
    p.add_argument("--decay", type=non_negative_float, default=None, help="MIM momentum decay mu")
    p.add_argument("--early-stop", action=argparse.BooleanOptionalAction, default=True,
                   help="stop each point at its first adversarial iterate (never weaker; default on)")
    p.add_argument("--split", choices=("train", "val", "test"), default="test")
    p.add_argument("--limit", type=positive_int, default=None, help="attack only the first N points")
    p.add_argument("--batch-size", type=positive_int, default=256)
    p.add_argument("--out", required=True, help="directory for attack.json, attack.csv and attack.png")
    add_device_argument(p)
    p.set_defaults(handler=run)


def attack_from_args(args: argparse.Namespace) -> IterativeAttack:
    """Build the chosen attack from the options given; an option it does not take is an error."""
    given = {name: getattr(args, name) for name in OPTIONS if getattr(args, name) is not None}
    return make_attack(args.attack, seed=args.seed, **given)


def run(args: argparse.Namespace) -> int:
    device = device_from_args(args)
    attack = attack_from_args(args)
    grid = parse_eps_grid(args.eps)
    models = [load_model(path, device=device) for path in args.model]
    dataset = dataset_from_args(args)
    for loaded in models:
        check_compatible(loaded, dataset)
    split = getattr(dataset, args.split).head(args.limit)
    x, y = split.floats(), split.labels
    started = time.perf_counter()
    sweeps = [robust_accuracy(loaded.model, x, y, attack, grid, batch_size=args.batch_size,
                              early_stop=args.early_stop) for loaded in models]
    records = [model_record(path, loaded.spec, sweep) for path, loaded, sweep in zip(args.model, models, sweeps)]
    report = {"attack": sweeps[0].attack, "attack_name": args.attack, "dataset": dataset.name, "split": args.split,
              "n": len(split), "eps": grid, "models": records, "seconds": time.perf_counter() - started}
    out = Path(args.out)
    atomic.write_json(out / "attack.json", report)
    atomic.write_text(out / "attack.csv", curves_csv(records, grid))
    plot_robust_accuracy({r["model"]: r["robust_accuracy"] for r in records}, grid, norm=attack.norm,
                         title=report["attack"], path=out / "attack.png")
    print_json({"out": str(out), "attack": report["attack"], "n": report["n"],
                "models": [{"model": r["model"], "clean_accuracy": round(r["clean_accuracy"], 4),
                            f"robust_accuracy_at_{grid[-1]:g}": round(r["robust_accuracy"][-1], 4)}
                           for r in records]})
    return 0


def model_record(path: str, spec: str, sweep: SweepResult) -> dict[str, Any]:
    """The per-model part of ``attack.json``."""
    curve = sweep.to_dict()
    return {"model": str(path), "spec": spec, "clean_accuracy": curve["clean_accuracy"],
            "robust_accuracy": curve["robust_accuracy"], "seconds": curve["seconds"],
            "breaking_eps": curve["breaking_eps"]}


def curves_csv(records: list[dict[str, Any]], grid: list[float]) -> str:
    """``model,eps,robust_accuracy`` rows, one per model and radius."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["model", "eps", "robust_accuracy"])
    for record in records:
        writer.writerows([record["model"], eps, value] for eps, value in zip(grid, record["robust_accuracy"]))
    return buffer.getvalue()
