"""Benchmark: distillation vs hard labels, temperature vs logits, and pruning the best student.

On real Fashion-MNIST (first ``--train-size`` training points; validation and test splits
in full):

1. a deeper teacher (``--teacher``) trained with cross-entropy for ``--teacher-epochs``;
2. the student architecture (``--student``) trained on hard labels (the control) and
   distilled from the teacher with matching logits and with temperature soft targets
   (one run per ``--temperature``; optionally adversarial distillation), all for ``--epochs`` epochs
   with the same seed, optimiser and early stopping on validation accuracy;
3. the student with the best *validation* accuracy pruned by the L1-norm search at
   ``--max-drop`` (default 0: no validation accuracy lost).

Writes ``benchmarks/results/distill.json`` and prints a Markdown table. The defaults take
about ten minutes on two CPU cores; raise ``--train-size`` and the epochs to scale up.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from shallowcert import atomic
from shallowcert.data import Dataset, load_dataset
from shallowcert.distill import DistillMethod, distill_student
from shallowcert.models import count_macs, count_params
from shallowcert.prune import pruning_report, remove_filters, search_pruning
from shallowcert.training import FitConfig, accuracy, train_classifier

RESULTS = Path(__file__).resolve().parent / "results" / "distill.json"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--teacher", default="teacher-svhn", help="teacher spec")
    p.add_argument("--student", default="scnn2:16-32", help="student spec")
    p.add_argument("--train-size", type=int, default=20000, help="training points used (of 54000)")
    p.add_argument("--teacher-epochs", type=int, default=5)
    p.add_argument("--epochs", type=int, default=5, help="epochs for every student")
    p.add_argument("--temperature", type=float, nargs="+", default=[2.0, 4.0], help="one run per temperature")
    p.add_argument("--adversarial", action="store_true", help="also run adversarial distillation (8x slower)")
    p.add_argument("--eps", type=float, default=0.05, help="eps of adversarial distillation (input units)")
    p.add_argument("--max-drop", type=float, default=0.0, help="validation accuracy drop allowed by pruning")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (1 is several times faster than 2 on a busy 2-core machine)")
    p.add_argument("--out", type=Path, default=RESULTS)
    return p.parse_args()


def scores(model: nn.Module, dataset: Dataset, seconds: float) -> dict[str, Any]:
    return {"val_accuracy": accuracy(model, dataset.val), "test_accuracy": accuracy(model, dataset.test),
            "params": count_params(model), "macs": count_macs(model, dataset.input_shape),
            "train_seconds": round(seconds, 1)}


def markdown(results: dict[str, Any]) -> str:
    lines = ["| model | training | val acc | test acc | params | MACs | seconds |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for row in results["runs"]:
        lines.append(f"| {row['spec']} | {row['training']} | {row['val_accuracy']:.4f} | {row['test_accuracy']:.4f} "
                     f"| {row['params']:,} | {row['macs']:,} | {row['train_seconds']} |")
    p = results["pruning"]
    kept = [(row["layer"], row["filters_kept"], row["filters_before"]) for row in p["layers"]]
    lines += ["", f"Pruning the best student ({p['student']}, max validation drop {p['max_drop']}):", "",
              "| | params | MACs | val acc | test acc |", "| --- | ---: | ---: | ---: | ---: |"]
    for when in ("before", "after"):
        lines.append(f"| {when} | {p['params_' + when]:,} | {p['flops_' + when]:,} "
                     f"| {p['val_accuracy_' + when]:.4f} | {p['test_accuracy_' + when]:.4f} |")
    lines += ["", (f"Filters kept per conv layer (position, kept, before): {kept}; "
                   f"params removed {p['params_removed_fraction']:.1%}, "
                   f"MACs removed {p['flops_removed_fraction']:.1%}; "
                   f"search: {p['evaluations']} validation evaluations, {p['search_seconds']} s.")]
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    full = load_dataset("fashion-mnist", seed=args.seed)
    dataset = dataclasses.replace(full, train=full.train.head(args.train_size))
    runs: list[dict[str, Any]] = []
    models: dict[str, nn.Module] = {}

    teacher, fit = train_classifier(args.teacher, dataset, FitConfig(epochs=args.teacher_epochs, seed=args.seed))
    runs.append({"spec": args.teacher, "training": "teacher, hard labels", **scores(teacher, dataset, fit.seconds)})

    config = FitConfig(epochs=args.epochs, seed=args.seed)
    student, fit = train_classifier(args.student, dataset, config)
    runs.append({"spec": args.student, "training": "hard labels (control)", **scores(student, dataset, fit.seconds)})
    models[runs[-1]["training"]] = student

    methods = [DistillMethod("logits"), *(DistillMethod("temperature", temperature=t) for t in args.temperature)]
    if args.adversarial:
        methods.append(DistillMethod("adversarial", eps=args.eps))
    with tempfile.TemporaryDirectory() as cache_dir:
        for method in methods:
            start = time.perf_counter()
            student, fit = distill_student(teacher, args.student, dataset, method=method, config=config,
                                           cache_dir=cache_dir)
            options = {k: v for k, v in method.settings().items() if k != "method"}
            label = f"distilled: {method.name}" + (f" ({', '.join(f'{k}={v:g}' for k, v in options.items())})"
                                                   if options else "")
            runs.append({"spec": args.student, "training": label, **scores(student, dataset, fit.seconds),
                         "wall_seconds_with_teacher_logits": round(time.perf_counter() - start, 1)})
            models[label] = student

    best = max((row for row in runs if row["training"] in models), key=lambda row: row["val_accuracy"])
    chosen = models[best["training"]]
    start = time.perf_counter()
    search = search_pruning(chosen, dataset.val, input_shape=dataset.input_shape, max_drop=args.max_drop)
    search_seconds = round(time.perf_counter() - start, 1)
    pruned = remove_filters(chosen, search.plan, input_shape=dataset.input_shape)
    pruning = {"student": best["training"], "max_drop": args.max_drop, "evaluations": search.evaluations,
               "search_seconds": search_seconds, **pruning_report(chosen, pruned, search.plan, dataset)}

    results = {"dataset": dataset.name, "train_size": len(dataset.train), "val_size": len(dataset.val),
               "test_size": len(dataset.test), "settings": vars(args) | {"out": str(args.out)},
               "runs": runs, "pruning": pruning}
    atomic.write_json(args.out, results)
    print(markdown(results))


if __name__ == "__main__":
    main()
