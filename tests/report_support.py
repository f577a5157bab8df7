"""A synthetic run directory written with the stages' result records, for report tests.

Each stage's ``results.json`` is ``{"seeds": [...], "by_seed": {"<s>": results}}`` (the
records as JSON), its manifest names the results format, and the per-point records live
under ``<stage>/seed-<s>/``. Models are simulated by the accuracy and certified radius they
get on ``POINTS`` shared test points; ``Knobs`` sets how much better one model is than
another, so a test knows which verdict each claim must reach.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shallowcert.study.context import ModelRow
from shallowcert.study.record import Record
from shallowcert.study.robustness import PgdCurve, RadiusSearch, RobustnessRow
from shallowcert.study.stage import StageName
from shallowcert.study.stages.certification import CertificationResults, CertifiedRow
from shallowcert.study.stages.distillation import DistillationResults, DistilledRow
from shallowcert.study.stages.improvement import ImprovementResults, ImprovementRow, Variant
from shallowcert.study.stages.pruning import PrunedLayer, PrunedModel, PruningResults, SourceStudent
from shallowcert.study.stages.teacher import ControlRow, TeacherResults, TeacherRow
from shallowcert.study.stages.temperature import TemperatureResults, TemperatureRow
from shallowcert.study.store import RESULTS_FORMAT

POINTS = 600
EPS = 0.05


@dataclass
class Knobs:
    control_accuracy: float = 0.80
    distilled_accuracy: float = 0.80     # per-point independent draws: equal accuracies are within noise
    student_radius_gain: float = 0.0     # student-normal mean radius minus teacher-normal's
    epochs: int = 3
    same_predictions: bool = False       # distilled students copy their control point by point
    robust_teacher_accuracy: float = 0.8  # clean accuracy of the robust certification teacher


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
              copy_of: np.ndarray | None = None) -> tuple[ModelRow, np.ndarray]:
        """A model row with its predictions.json (correct on a random ``accuracy`` share of points),
        and which points it gets right."""
        correct = copy_of if copy_of is not None else self.rng(seed, stage + name).random(POINTS) < accuracy
        predicted = np.where(correct, self.labels, (self.labels + 1) % 10)
        path = self.root / stage / f"seed-{seed}" / name / "predictions.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"split": "test", "label": self.labels.tolist(), "predicted": predicted.tolist()}))
        return ModelRow(name, spec, accuracy + 0.01 * seed, float(correct.mean()), 1000, 5000,
                        f"{name}/predictions.json", self.knobs.epochs, self.history(seed)), correct

    def certified_model(self, stage: str, seed: int, name: str, mean_radius: float,
                        accuracy: float = 0.8) -> RobustnessRow:
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
        return RobustnessRow(name, "snn:16", POINTS, float(correct.mean()), float(certified.mean()),
                             1 - float(certified.mean()), float(radius.mean()), float((radius * correct).mean()),
                             float(np.median(radius)), RadiusSearch("bisect", "crown", "float64", [0.0, 1.0], POINTS,
                                                                    float(radius.mean()), 8, 8.0, 9, 0.1),
                             f"{name}-area.png", f"{name}-radii.csv",
                             PgdCurve([0.0, EPS], [float(correct.mean()), float(certified.mean())]))

    def stage_results(self, seed: int) -> dict[StageName, Record]:
        k = self.knobs
        teacher, _ = self.model("teacher", seed, "teacher", "teacher-svhn", 0.9)
        controls, correct = [], {}
        for family, name, spec in (("snn", "control-snn-8", "snn:8"), ("scnn2", "control-scnn2-2-2", "scnn2:2-2")):
            row, correct[spec] = self.model("teacher", seed, name, spec, k.control_accuracy)
            controls.append(row.extend(ControlRow, family=family))
        students = []
        for transfer in ("train", "extra"):
            for control in controls:
                name = f"logits-{transfer}-{control.name[8:]}"
                row, correct[name] = self.model("distillation", seed, name, control.spec, k.distilled_accuracy,
                                                copy_of=correct[control.spec] if k.same_predictions else None)
                students.append(row.extend(DistilledRow, method="logits", transfer=transfer, family=control.family,
                                           control_test_accuracy=control.test_accuracy))
        temperature = [self.model("temperature", seed, name, "scnn2:2-2", acc)[0].extend(
            TemperatureRow, method="logits" if t is None else "temperature", transfer="train", temperature=t)
            for name, t, acc in (("logits-scnn2", None, 0.8), ("T1-scnn2", 1.0, 0.8), ("T4-scnn2", 4.0, 0.95))]
        (self.root / "temperature" / f"seed-{seed}" / "temperature.png").write_bytes(b"\x89PNG stand-in")
        best = students[1]
        pruned, _ = self.model("pruning", seed, "pruned", best.spec, 0.0, copy_of=correct[best.name])
        pruning = PruningResults(
            params_before=1144, params_after=552 + 8 * seed, params_removed_fraction=0.5, flops_before=59780,
            flops_after=24990, flops_removed_fraction=0.58, val_accuracy_before=0.8, val_accuracy_after=0.8,
            test_accuracy_before=best.test_accuracy, test_accuracy_after=pruned.test_accuracy,
            layers=[PrunedLayer(0, 2, 1, [1])], student=best.extend(SourceStudent, stage=StageName.DISTILLATION),
            search_evaluations=5, max_drop=0.0, figures=[], pruned=PrunedModel("pruned", pruned.predictions))
        base = 0.02
        radii = {"teacher-normal": base, "teacher-robust": 3 * base, "student-normal": base + k.student_radius_gain,
                 "student-robust": base}
        models = [self.certified_model("certification", seed, name, radius, accuracy=(
            k.robust_teacher_accuracy if name == "teacher-robust" else 0.8)).extend(
            CertifiedRow, history=self.history(seed)) for name, radius in radii.items()]
        certification = CertificationResults(EPS, "crown", "float64", [0.0, 1.0], POINTS, "ibp", models, None)
        variants = []
        for i, (variant, radius) in enumerate(((Variant.RETRAINED, 0.2), (Variant.SCRATCH, 0.01))):
            row = self.certified_model("improvement", seed, f"variant-{i}", radius)
            variants.append(row.extend(ImprovementRow, name=f"label of {variant}",
                                       pgd_accuracy=row.pgd.robust_accuracy[-1], history=self.history(seed),
                                       variant=variant))
        return {StageName.TEACHER: TeacherResults(teacher.extend(TeacherRow, train_seconds=1.0), controls),
                StageName.DISTILLATION: DistillationResults(students),
                StageName.TEMPERATURE: TemperatureResults(temperature, "train", "temperature.png"),
                StageName.PRUNING: pruning, StageName.CERTIFICATION: certification,
                StageName.IMPROVEMENT: ImprovementResults("snn:16", EPS, "float64", variants)}

    def write(self) -> Path:
        by_stage: dict[StageName, dict[str, Record]] = {}
        for seed in self.seeds:
            for stage, results in self.stage_results(seed).items():
                by_stage.setdefault(stage, {})[str(seed)] = results
        for stage, by_seed in by_stage.items():
            (self.root / stage.value / "results.json").write_text(json.dumps(
                {"seeds": self.seeds, "by_seed": {s: r.to_json() for s, r in by_seed.items()}}))
            (self.root / stage.value / "manifest.json").write_text(json.dumps({"format": RESULTS_FORMAT}))
        return self.root


def synthetic_run(root: Path, seeds: list[int], knobs: Knobs | None = None) -> Path:
    return SyntheticRun(root, seeds, knobs or Knobs()).write()
