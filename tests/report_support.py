"""A synthetic run directory in the per-seed results format, for report tests.

Each stage's ``results.json`` is ``{"seeds": [...], "by_seed": {"<s>": results}}`` and the
per-point records live under ``<stage>/seed-<s>/``. Models are simulated by the accuracy
and certified radius they get on ``POINTS`` shared test points; ``Knobs`` sets how much
better one model is than another, so a test knows which verdict each claim must reach.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

POINTS = 600
EPS = 0.05


@dataclass
class Knobs:
    control_accuracy: float = 0.80
    distilled_accuracy: float = 0.80     # per-point independent draws: equal accuracies are within noise
    student_radius_gain: float = 0.0     # student-normal mean radius minus teacher-normal's
    epochs: int = 3
    same_predictions: bool = False       # distilled students copy their control point by point


class SyntheticRun:
    def __init__(self, root: Path, seeds: list[int], knobs: Knobs) -> None:
        self.root, self.seeds, self.knobs = root, seeds, knobs
        self.labels = np.random.default_rng(99).integers(0, 10, POINTS)

    def rng(self, seed: int, name: str) -> np.random.Generator:
        return np.random.default_rng([seed, sum(map(ord, name))])

    def history(self, seed: int, epochs: int | None = None) -> list[dict[str, float]]:
        n = epochs or self.knobs.epochs
        return [{"epoch": e, "loss": 1.0 / e, "val": 0.5 + 0.1 * e, "train_loss": 1.0 / e + 0.01 * seed,
                 "train_accuracy": 0.5 + 0.1 * e, "val_loss": 1.1 / e, "val_accuracy": 0.5 + 0.1 * e}
                for e in range(1, n + 1)]

    def model(self, stage: str, seed: int, name: str, spec: str, accuracy: float,
              copy_of: np.ndarray | None = None) -> dict[str, Any]:
        """A model row with its predictions.json (correct on a random ``accuracy`` share of points)."""
        correct = copy_of if copy_of is not None else self.rng(seed, stage + name).random(POINTS) < accuracy
        predicted = np.where(correct, self.labels, (self.labels + 1) % 10)
        path = self.root / stage / f"seed-{seed}" / name / "predictions.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"split": "test", "label": self.labels.tolist(), "predicted": predicted.tolist()}))
        return {"name": name, "spec": spec, "val_accuracy": accuracy + 0.01 * seed,
                "test_accuracy": float(correct.mean()), "params": 1000, "macs": 5000,
                "predictions": f"{name}/predictions.json", "best_epoch": self.knobs.epochs,
                "history": self.history(seed), "_correct": correct}

    def certified_model(self, stage: str, seed: int, name: str, mean_radius: float,
                        accuracy: float = 0.8) -> dict[str, Any]:
        rng = self.rng(seed, stage + name)
        correct = rng.random(POINTS) < accuracy
        radius = rng.exponential(mean_radius, POINTS)
        certified = correct & (radius >= EPS)
        table = "index,label,predicted,correct,certified,radius\n" + "".join(
            f"{i},{self.labels[i]},{self.labels[i] if correct[i] else 0},{int(correct[i])},{int(certified[i])},"
            f"{radius[i]:.6g}\n" for i in range(POINTS))
        (self.root / stage / f"seed-{seed}").mkdir(parents=True, exist_ok=True)
        (self.root / stage / f"seed-{seed}" / f"{name}-radii.csv").write_text(table)
        (self.root / stage / f"seed-{seed}" / f"{name}-area.png").write_bytes(b"\x89PNG stand-in")
        return {"name": name, "spec": "snn:16", "n": POINTS, "clean_accuracy": float(correct.mean()),
                "certified_accuracy": float(certified.mean()), "robust_error_bound": 1 - float(certified.mean()),
                "mean_radius": float(radius.mean()), "mean_true_label_radius": float((radius * correct).mean()),
                "median_radius": float(np.median(radius)), "figure": f"{name}-area.png", "radii": f"{name}-radii.csv",
                "pgd": {"eps": [0.0, EPS], "robust_accuracy": [float(correct.mean()), float(certified.mean())]},
                "history": self.history(seed)}

    def stage_results(self, seed: int) -> dict[str, dict[str, Any]]:
        k = self.knobs
        teacher = self.model("teacher", seed, "teacher", "teacher-svhn", 0.9)
        controls = [{"family": "snn", **self.model("teacher", seed, "control-snn-8", "snn:8", k.control_accuracy)},
                    {"family": "scnn2", **self.model("teacher", seed, "control-scnn2-2-2", "scnn2:2-2",
                                                     k.control_accuracy)}]
        students = []
        for transfer in ("train", "extra"):
            for control in controls:
                name = f"logits-{transfer}-{control['name'][8:]}"
                row = self.model("distillation", seed, name, control["spec"], k.distilled_accuracy,
                                 copy_of=control["_correct"] if k.same_predictions else None)
                students.append({"family": control["family"], **row, "method": "logits", "transfer": transfer,
                                 "control_test_accuracy": control["test_accuracy"]})
        temperature = [{**self.model("temperature", seed, "logits-scnn2", "scnn2:2-2", 0.8), "method": "logits",
                        "transfer": "train", "temperature": None}]
        temperature += [{**self.model("temperature", seed, f"T{t:g}-scnn2", "scnn2:2-2", acc), "method": "temperature",
                         "transfer": "train", "temperature": t} for t, acc in ((1.0, 0.8), (4.0, 0.95))]
        (self.root / "temperature" / f"seed-{seed}" / "temperature.png").write_bytes(b"\x89PNG stand-in")
        best = students[1]
        pruned = self.model("pruning", seed, "pruned", best["spec"], 0.0, copy_of=best["_correct"])
        pruning = {"student": {"stage": "distillation", **best}, "search_evaluations": 5, "max_drop": 0.0,
                   "params_before": 1144, "params_after": 552 + 8 * seed, "params_removed_fraction": 0.5,
                   "flops_before": 59780, "flops_after": 24990, "val_accuracy_before": 0.8, "val_accuracy_after": 0.8,
                   "test_accuracy_before": best["test_accuracy"], "test_accuracy_after": pruned["test_accuracy"],
                   "layers": [{"layer": "0", "filters_before": 2, "filters_kept": 1}], "figures": [],
                   "pruned": {"name": "pruned", "predictions": pruned["predictions"]}}
        base = 0.02
        models = [self.certified_model("certification", seed, "teacher-normal", base),
                  self.certified_model("certification", seed, "teacher-robust", 3 * base),
                  self.certified_model("certification", seed, "student-normal", base + k.student_radius_gain),
                  self.certified_model("certification", seed, "student-robust", base)]
        certification = {"eps": EPS, "method": "crown", "dtype": "float64", "domain": [0.0, 1.0], "n": POINTS,
                         "train_method": "ibp", "models": models}
        variants = []
        for i, (name, radius) in enumerate((("distilled + robust retraining", 0.2), ("robust training from scratch",
                                                                                   0.01))):
            row = self.certified_model("improvement", seed, f"variant-{i}", radius)
            variants.append({**row, "name": name, "pgd_accuracy": row["pgd"]["robust_accuracy"][-1]})
        improvement = {"spec": "snn:16", "eps": EPS, "dtype": "float64", "models": variants}
        return {"teacher": {"teacher": teacher, "controls": controls}, "distillation": {"students": students},
                "temperature": {"students": temperature, "transfer": "train"}, "pruning": pruning,
                "certification": certification, "improvement": improvement}

    def write(self) -> Path:
        by_stage: dict[str, dict[str, Any]] = {}
        for seed in self.seeds:
            for stage, results in self.stage_results(seed).items():
                by_stage.setdefault(stage, {})[str(seed)] = results
        for stage, by_seed in by_stage.items():
            text = json.dumps({"seeds": self.seeds, "by_seed": by_seed},
                              default=lambda o: None)  # drops the private "_correct" arrays
            (self.root / stage / "results.json").write_text(text)
            (self.root / stage / "manifest.json").write_text("{}")
        return self.root


def synthetic_run(root: Path, seeds: list[int], knobs: Knobs | None = None) -> Path:
    return SyntheticRun(root, seeds, knobs or Knobs()).write()
