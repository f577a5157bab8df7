"""Table T.1: a run's targets checked on every seed, a missed one named at the head of the claims."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from report_support import POINTS, synthetic_run
from shallowcert.cli import main
from shallowcert.errors import UserError
from shallowcert.report import write_report
from shallowcert.study.config import load_config
from shallowcert.study.runner import all_stages, stage_fingerprints
from shallowcert.study.targets import TargetsConfig, load_targets


def seed_values(root: Path) -> dict[str, list[float]]:
    """What each target reads, per seed, straight from the results files."""
    teacher = json.loads((root / "teacher" / "results.json").read_text())["by_seed"]
    students = json.loads((root / "distillation" / "results.json").read_text())["by_seed"]
    models = json.loads((root / "certification" / "results.json").read_text())["by_seed"]
    seeds = sorted(teacher)
    accuracy = [teacher[s]["teacher"]["test_accuracy"] for s in seeds]
    best = [max(m["test_accuracy"] for m in students[s]["students"] if m["family"] == "scnn2") for s in seeds]
    robust = [next(m for m in models[s]["models"] if m["name"] == "teacher-robust") for s in seeds]
    return {"accuracy": accuracy, "gap": [100 * (a - b) for a, b in zip(accuracy, best)],
            "bound": [m["robust_error_bound"] for m in robust], "clean": [1 - m["clean_accuracy"] for m in robust]}


def targets_table(root: Path) -> tuple[list[list], str]:
    data = json.loads((root / "report.json").read_text())
    table = next(t for t in data["tables"] if t["label"] == "Table T.1")
    markdown = (root / "report.md").read_text()
    return table["rows"], markdown.split("## Claims of the study")[1].split("**Table C.1.**")[0]


def test_each_target_is_met_only_when_every_seed_reaches_it(tmp_path: Path) -> None:
    root = synthetic_run(tmp_path, [0, 1])
    seen = seed_values(root)
    low, high = sorted(seen["accuracy"])
    assert low < high
    targets = TargetsConfig(teacher_test_accuracy=(low + high) / 2,  # one seed below: missed
                            student_gap=max(seen["gap"]) + 0.01,  # every seed within: met
                            robust_error_bound=min(seen["bound"]) - 1e-6,  # both above: missed
                            robust_clean_error=max(seen["clean"]),  # equal to the worst seed: met
                            points=POINTS)
    write_report(root, targets=targets)
    rows, head = targets_table(root)
    assert [row[3] for row in rows] == ["no", "yes", "no", "yes", "yes", "not checked"]
    assert rows[0][2] == f"{seen['accuracy'][0]:.4f} / {seen['accuracy'][1]:.4f}" and rows[0][1].startswith("≥ ")
    assert rows[1][2] == " / ".join(f"{g:.2f}" for g in seen["gap"]) and rows[1][1].startswith("≤ ")
    assert f"at ε = 0.05 on the {POINTS} certification points" in rows[2][0]
    assert rows[2][4] == "Table 8.20" and rows[0][4] == "Table 8.1"
    assert "This run misses 2 of its targets: teacher test accuracy" in head and "(Table T.1)" in head
    assert "teacher-robust: robust error bound" in head and "clean error" not in head
    report = json.loads((root / "report.json").read_text())
    assert [t["met"] for t in report["targets"]] == [False, True, False, True, True, None]


def test_targets_all_met_add_no_caveat_and_no_targets_add_no_table(tmp_path: Path) -> None:
    root = synthetic_run(tmp_path, [0])
    write_report(root, targets=TargetsConfig(teacher_test_accuracy=0.5, robust_clean_error=1.0))
    rows, head = targets_table(root)
    assert [row[3] for row in rows] == ["yes", "yes"] and "misses" not in head
    write_report(root)
    assert "Table T.1" not in (root / "report.md").read_text()
    assert json.loads((root / "report.json").read_text())["targets"] == []


def test_the_fashion_mnist_preset_sets_the_floors_and_they_change_no_fingerprint() -> None:
    config = load_config(preset="fashion-mnist")
    assert config.targets == TargetsConfig(teacher_test_accuracy=0.91, student_gap=1.5, student_family="scnn2",
                                           robust_error_bound=0.36, robust_clean_error=0.25, points=1000)
    assert load_config(preset="quick").targets is None and "targets" not in load_config(preset="quick").to_json()
    from dataclasses import replace
    assert stage_fingerprints(config, all_stages()) == stage_fingerprints(replace(config, targets=None), all_stages())


def test_a_targets_file_is_validated_and_checked_from_the_command_line(tmp_path: Path, capsys) -> None:
    root = synthetic_run(tmp_path / "run", [0])
    good = tmp_path / "targets.yaml"
    good.write_text("teacher_test_accuracy: 0.99\nstudent_family: snn\nstudent_gap: 50\n")
    assert main(["report", str(root), "--targets", str(good)]) == 0
    rows, head = targets_table(root)
    assert [row[3] for row in rows] == ["no", "yes"] and "best distilled snn student" in rows[1][0]
    bad = tmp_path / "bad.yaml"
    bad.write_text("teacher_test_accuracy: 1.5\nrobust_errror_bound: 0.3\n")
    with pytest.raises(UserError, match="2 problem") as caught:
        load_targets(bad)
    assert "bad.yaml:1 teacher_test_accuracy: must be in [0, 1]" in str(caught.value)
    assert "bad.yaml:2 robust_errror_bound: unknown key" in str(caught.value)
    empty = tmp_path / "empty.yaml"
    empty.write_text("student_family: scnn1\n")
    capsys.readouterr()
    assert main(["report", str(root), "--targets", str(empty)]) != 0
    assert "sets no target" in capsys.readouterr().err
