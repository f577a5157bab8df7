"""Certified against exact radius in the report: Table E.1 and Figure E.1 from per-point brackets
(built here as :class:`ExactRadius` results, written the way the study's exact jobs write them)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from report_support import synthetic_run
from shallowcert.report import write_report
from shallowcert.report.exact_gap import ExactPoints, gap_row, plot_exact_gap, shown_models
from shallowcert.verify.exact import ExactRadius

INF = math.inf


def exact(lower, upper, certified, settled) -> ExactRadius:
    def f64(values):
        return torch.tensor(values, dtype=torch.float64)
    return ExactRadius(f64(lower), f64(upper), f64(certified), torch.tensor(settled), f64([0.5] * len(lower)), 0.02)


def points(result: ExactRadius) -> ExactPoints:
    """Through JSON, as the report reads ``<model>-exact.json``."""
    return ExactPoints.from_record(json.loads(json.dumps(result.per_point())))


MIXED = exact(lower=[0.10, 0.20, 0.05, 0.30], upper=[0.101, 0.202, 0.20, INF], certified=[0.08, 0.10, 0.04, 0.30],
              settled=[True, True, False, False])


def test_gap_is_over_settled_points_only() -> None:
    row = gap_row("student", points(MIXED))
    name, n, settled, certified_all, certified, lower, upper, gap, ratio, at_least, at_most = row
    assert (name, n, settled) == ("student", 4, 2)
    assert certified_all == pytest.approx((0.08 + 0.10 + 0.04 + 0.30) / 4)
    assert certified == pytest.approx((0.08 + 0.10) / 2)
    assert lower == pytest.approx(0.15) and upper == pytest.approx((0.101 + 0.202) / 2)
    assert gap == pytest.approx(((0.10 - 0.08) + (0.20 - 0.10)) / 2)  # the unsettled 0.05 - 0.04 is not counted
    assert ratio == pytest.approx(0.09 / 0.15)
    assert 0 <= gap and ratio <= 1  # certified <= exact
    bracketed_certified = (0.08 + 0.10 + 0.04) / 3  # the point without a counterexample has no bracket
    assert at_least == pytest.approx(bracketed_certified / ((0.101 + 0.202 + 0.20) / 3))
    assert at_most == pytest.approx(bracketed_certified / ((0.10 + 0.20 + 0.05) / 3))
    assert at_least <= ratio <= at_most


def test_no_settled_point_gives_empty_exact_cells() -> None:
    teacher = exact(lower=[0.01, 0.02], upper=[0.5, INF], certified=[0.01, 0.02], settled=[False, False])
    row = gap_row("teacher-normal", points(teacher))
    assert row[1:4] == [2, 0, pytest.approx(0.015)]
    assert row[4:9] == [None] * 5
    assert row[9] == pytest.approx(0.01 / 0.5) and row[10] == pytest.approx(1.0)  # the bracketed point still bounds it


def test_json_keeps_a_missing_counterexample_infinite() -> None:
    record = MIXED.per_point()
    assert record["upper"][3] is None and record["settled"] == [True, True, False, False]
    assert math.isinf(points(MIXED).upper[3])


def test_figure_shows_students_and_only_teachers_that_settled(tmp_path: Path) -> None:
    unsettled = exact(lower=[0.01, 0.02], upper=[0.5, INF], certified=[0.01, 0.02], settled=[False, False])
    models = {"teacher-normal": {0: points(unsettled)}, "teacher-robust": {0: points(MIXED)},
              "student-normal": {0: points(MIXED)}, "student-robust": {0: points(unsettled)}}
    assert shown_models(models) == ["teacher-robust", "student-normal", "student-robust"]
    counts = plot_exact_gap(models, tmp_path / "gap.png", title="test")
    assert (tmp_path / "gap.png").read_bytes()[:4] == b"\x89PNG"
    assert (counts["student-normal"].settled, counts["student-normal"].bracketed, counts["student-normal"].omitted) \
        == (2, 1, 1)
    assert (counts["teacher-normal"].settled, counts["teacher-normal"].bracketed, counts["teacher-normal"].omitted) \
        == (0, 1, 1)


def add_exact(run: Path, seeds: list[int]) -> None:
    """Exact brackets for the synthetic run's certification models: the students settle, the
    normal teacher settles one point in the first seed only."""
    results = json.loads((run / "certification" / "results.json").read_text())
    for seed in seeds:
        rows = []
        for name in ("teacher-normal", "teacher-robust", "student-normal", "student-robust"):
            if name.startswith("student"):
                shift = 0.01 * seed
                result = exact([0.1 + shift, 0.2], [0.1 + shift, 0.2], [0.05, 0.2], [True, True])
            else:
                result = exact([0.05, 0.01], [0.05, INF], [0.04, 0.01], [name == "teacher-normal" and seed == seeds[0],
                                                                         False])
            (run / "certification" / f"seed-{seed}" / f"{name}-exact.json").write_text(json.dumps(result.per_point()))
            rows.append({"name": name, "spec": "snn:16", "bound": "crown", "time_limit": 1.0,
                         "file": f"{name}-exact.json", **result.summary()})
        results["by_seed"][str(seed)]["exact"] = {"points": 2, "time_limit": 1.0, "rtol": 0.02, "models": rows}
    (run / "certification" / "results.json").write_text(json.dumps(results))


def test_report_has_the_gap_table_and_figure(tmp_path: Path) -> None:
    run = synthetic_run(tmp_path, [0, 1])
    add_exact(run, [0, 1])
    write_report(run)
    markdown = (run / "report.md").read_text()
    assert "**Table E.1.** Certified vs exact radius" in markdown and "(figures/exact-gap.png)" in markdown
    assert (run / "figures" / "exact-gap.png").read_bytes()[:4] == b"\x89PNG"
    table = next(t for t in json.loads((run / "report.json").read_text())["tables"] if t["label"] == "Table E.1")
    rows = {row[0]: row for row in table["rows"]}
    assert list(rows) == ["teacher-normal", "teacher-robust", "student-normal", "student-robust"]
    student = rows["student-normal"]
    assert student[1:3] == [2, 2]
    assert student[5]["mean"] == pytest.approx(0.1525) and student[5]["n"] == 2  # lower (0.15, 0.155) over seeds
    assert student[7]["mean"] == pytest.approx(0.0275)  # gap ((0.05 + 0) / 2, (0.06 + 0) / 2) over seeds
    teacher = rows["teacher-normal"]
    assert teacher[2]["mean"] == pytest.approx(0.5)  # settled 1 and 0
    assert teacher[5] == pytest.approx(0.05) and teacher[7] == pytest.approx(0.01)  # the one seed that settled
    assert rows["teacher-robust"][2] == 0 and rows["teacher-robust"][5:9] == [None] * 4
    assert "teacher-robust: 0 settled, 2 bracketed, 2 left out (no counterexample), no panel" in markdown
    assert "teacher-normal: 1 settled, 1 bracketed, 2 left out (no counterexample);" in markdown  # has its panel


def test_a_run_without_exact_radii_says_so(tmp_path: Path) -> None:
    run = synthetic_run(tmp_path, [0])
    write_report(run)
    markdown = (run / "report.md").read_text()
    assert "Exact radii were not computed" in markdown and "Table E.1" not in markdown
