"""The report over seeds: mean ± sd tables, claims decided by paired tests, learning curves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from report_support import POINTS, Knobs, synthetic_run
from shallowcert.errors import UserError
from shallowcert.report import write_report
from shallowcert.report.aggregate import seed_table
from shallowcert.report.document import cell
from shallowcert.report.results import read_stage
from shallowcert.report.stats import Spread
from shallowcert.study.stage import StageName
from shallowcert.study.stages.attacks import AttacksResults
from shallowcert.study.stages.teacher import TeacherResults

CLAIM_ORDER = ("distilled", "temperature", "pruning", "normal", "robust", "retraining")


def report(root: Path) -> tuple[dict, str, str]:
    write_report(root)
    return (json.loads((root / "report.json").read_text()), (root / "report.md").read_text(),
            (root / "report.html").read_text())


def claims(data: dict) -> dict[str, dict]:
    return dict(zip(CLAIM_ORDER, data["claims"]))


def table(data: dict, label: str) -> dict:
    return next(t for t in data["tables"] if t["label"] == label)


def test_two_seeds_give_mean_and_sd_in_every_table(tmp_path: Path) -> None:
    data, markdown, _ = report(synthetic_run(tmp_path, [0, 1]))
    t81 = table(data, "Table 8.1")
    assert "n=2 seeds (0, 1)" in t81["caption"]
    teacher = t81["rows"][0]
    assert teacher[:4] == ["teacher", "teacher-svhn", 1000, 5000]  # equal over seeds: plain values
    val = teacher[4]  # val accuracy 0.9 and 0.91
    assert val["n"] == 2 and val["mean"] == pytest.approx(0.905) and val["sd"] == pytest.approx(0.01 / 2 ** 0.5)
    assert "0.9050 ± 0.0071" in markdown
    for label in ("Table 8.1", "Table 8.2", "Table 8.7", "Table 8.9", "Table 8.19", "Table 8.22"):
        assert "n=2 seeds" in table(data, label)["caption"], label
    assert table(data, "Table 8.9")["rows"][1][1]["mean"] == pytest.approx(556)  # params after: 552 and 560
    csv_text = (tmp_path / "tables" / "Table-8_9.csv").read_text()
    assert "556 ± 5.66" in csv_text and "556.0 ± 5.7" in markdown


def test_one_seed_gives_plain_numbers(tmp_path: Path) -> None:
    data, markdown, _ = report(synthetic_run(tmp_path, [3]))
    assert "±" not in markdown.split("## Claims")[0] + markdown.split("## 1. Teacher")[1]
    assert "One seed (3)" in table(data, "Table 8.1")["caption"]
    assert all(not isinstance(v, dict) for t in data["tables"] for row in t["rows"] for v in row)
    assert "1,000 test points × 1 seed" not in markdown and f"{POINTS} test points × 1 seed" in markdown


def test_claims_name_their_test_and_decide_only_outside_noise(tmp_path: Path) -> None:
    data, markdown, html = report(synthetic_run(tmp_path, [0, 1]))
    found = claims(data)
    assert found["distilled"]["holds"] is None  # 0.80 vs 0.80: within noise
    assert found["distilled"]["verdict"] == "undecided (difference within noise)"
    assert "two-level bootstrap" in found["distilled"]["test"] and "McNemar" in found["distilled"]["evidence"]
    assert f"{POINTS} test points × 2 seeds" in found["distilled"]["evidence"]
    assert found["temperature"]["holds"] is True and "T=4" in found["temperature"]["evidence"]
    assert found["pruning"]["holds"] is True and "CI [+0.0000, +0.0000]" in found["pruning"]["evidence"]
    assert found["normal"]["holds"] is None and "bootstrap" in found["normal"]["test"]
    assert found["robust"]["holds"] is True
    assert found["retraining"]["holds"] is True
    assert "**undecided (difference within noise)**" in markdown
    assert "<span class='open'>undecided (difference within noise)</span>" in html


@pytest.mark.parametrize("knobs, claim, expected", [
    (Knobs(distilled_accuracy=0.9), "distilled", True),
    (Knobs(distilled_accuracy=0.7), "distilled", False),
    (Knobs(same_predictions=True), "distilled", None),
    (Knobs(student_radius_gain=0.02), "normal", True),
    (Knobs(student_radius_gain=-0.012), "normal", False),
])
def test_clear_differences_are_decided(tmp_path: Path, knobs: Knobs, claim: str, expected: bool | None) -> None:
    data, _, _ = report(synthetic_run(tmp_path, [0, 1], knobs))
    assert claims(data)[claim]["holds"] is expected, claims(data)[claim]["evidence"]


def test_identical_models_have_a_zero_interval(tmp_path: Path) -> None:
    data, _, _ = report(synthetic_run(tmp_path, [0, 1], Knobs(same_predictions=True)))
    evidence = claims(data)["distilled"]["evidence"]
    assert "p = 1" in evidence and "CI [+0.0000, +0.0000]" in evidence


def test_learning_curves_are_drawn_and_linked(tmp_path: Path) -> None:
    data, markdown, html = report(synthetic_run(tmp_path, [0, 1]))
    for stage, label in (("teacher", "L.1"), ("distillation", "L.2"), ("temperature", "L.3"),
                         ("certification", "L.4"), ("improvement", "L.5")):
        figure = tmp_path / "figures" / f"learning-{stage}.png"
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # a real PNG, not a stand-in
        assert f"![Figure {label}](figures/learning-{stage}.png)" in markdown
    assert html.count("alt='Figure L.") == 5


def test_seeds_that_do_not_line_up_are_listed_per_seed() -> None:
    rows = {0: [["scnn2:4-8", 0.8]], 1: [["scnn1:4", 0.7]]}
    t = seed_table("Table X", "Best student.", ["spec", "acc"], rows)
    assert t.headers == ["seed", "spec", "acc"] and t.rows == [[0, "scnn2:4-8", 0.8], [1, "scnn1:4", 0.7]]
    merged = seed_table("Table X", "Best student.", ["spec", "acc"], {0: [["a", 0.8]], 1: [["a", 0.6]]})
    assert merged.rows[0][0] == "a" and isinstance(merged.rows[0][1], Spread)
    assert cell(merged.rows[0][1]) == "0.7000 ± 0.1414"


def test_a_run_from_an_older_version_is_refused_with_one_line(tmp_path: Path) -> None:
    """An older manifest (no results format) is refused by ``shallowcert report``: one line, the
    advice to resume, a non-zero exit, no report written."""
    import subprocess
    import sys
    run = synthetic_run(tmp_path / "run", [0])
    (run / "teacher" / "manifest.json").write_text("{}")
    result = subprocess.run([sys.executable, "-m", "shallowcert", "report", str(run)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "another version of shallowcert" in lines[0] and "--resume" in lines[0], lines
    assert not (run / "report.md").exists()


def test_results_in_another_layout_are_refused(tmp_path: Path) -> None:
    run = synthetic_run(tmp_path, [0])
    results = json.loads((run / "improvement" / "results.json").read_text())
    del results["by_seed"]["0"]["models"][0]["variant"]  # a row as older versions wrote it
    (run / "improvement" / "results.json").write_text(json.dumps(results))
    with pytest.raises(UserError, match=r"improvement was written by another version.*missing key variant.*--resume"):
        write_report(run)
    assert read_stage(run, StageName.TEACHER, TeacherResults) is not None
    assert read_stage(run, StageName.ATTACKS, AttacksResults) is None  # not run: nothing to refuse


def test_claims_table_comes_first_with_effect_interval_test_and_size(tmp_path: Path) -> None:
    data, markdown, _ = report(synthetic_run(tmp_path, [0, 1]))
    claims_part = markdown.split("## Claims of the study")[1].split("## 1. Teacher")[0]
    assert claims_part.index("**Table C.1.**") < claims_part.index("### Evidence for each claim")
    assert "Caveat" not in claims_part  # teacher 0.9 beats controls 0.8; certification teachers at 0.8
    rows = table(data, "Table C.1")["rows"]
    assert table(data, "Table C.1")["headers"] == ["claim", "verdict", "effect (95% interval)", "test", "n"]
    assert len(rows) == 6 and rows[0][1] == "undecided (difference within noise)"
    effect = claims(data)["distilled"]["effect"]
    assert rows[0][2] == f"{effect['estimate']:+.4f} [{effect['low']:+.4f}, {effect['high']:+.4f}]"
    assert effect["low"] < 0 < effect["high"] and rows[0][4] == f"2 seeds × {POINTS:,} points"
    # an undecided claim says what it saw and what would decide it
    assert "Undecided: the effect seen is" in claims(data)["distilled"]["evidence"]
    assert "would need about" in claims(data)["distilled"]["evidence"] \
        or "neither more seeds nor more points" in claims(data)["distilled"]["evidence"]
    assert "Undecided" not in claims(data)["temperature"]["evidence"]  # decided


def test_a_teacher_below_a_control_and_a_teacher_near_chance_are_flagged_at_the_head(tmp_path: Path) -> None:
    data, markdown, _ = report(synthetic_run(tmp_path, [0, 1], Knobs(control_accuracy=0.95,
                                                                     robust_teacher_accuracy=0.2)))
    head = markdown.split("## Claims of the study")[1].split("**Table C.1.**")[0]
    assert "does not beat every hard-label control: snn:8 0.9" in head and ", scnn2:2-2 0.9" in head
    assert "certification teacher robust sits near chance" in head and "chance 0.10" in head
    assert "teacher normal sits near chance" not in head


def test_a_trial_config_says_its_verdicts_are_not_evidence() -> None:
    from shallowcert.report.claims import caveats
    from shallowcert.report.results import read_results
    from shallowcert.study.config import load_config

    assert load_config(preset="quick").trial is True and load_config(preset="fashion-mnist").trial is False
    empty = read_results(Path("/nonexistent"))
    assert caveats(empty, trial=False) == []
    assert caveats(empty, trial=True) == ["This is a trial run: its sizes are for trying the pipeline, and its "
                                          "verdicts are not evidence."]


def test_each_teacher_and_its_student_share_one_certification_area_figure(tmp_path: Path) -> None:
    _, markdown, html = report(synthetic_run(tmp_path, [0, 1]))
    figure = tmp_path / "figures" / "certification-areas.png"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![Figure 8.18](figures/certification-areas.png)" in markdown
    section = markdown.split("## 6. Certification")[1]
    assert section.index("Figure 8.18") < section.index("Figure 8.19")
    assert "alt='Figure 8.18'" in html


def test_the_report_names_the_robust_training_method(tmp_path: Path) -> None:
    from shallowcert.report.sections import training_method

    data, _, _ = report(synthetic_run(tmp_path, [0]))  # the synthetic run trained with ibp
    assert "Wong & Kolter robust loss with ibp bounds" in table(data, "Table 8.20")["caption"]
    assert "Zhang et al. 2020" in training_method("crown-ibp") and "β from 1 to 0" in training_method("crown-ibp")
    assert "random projections" in training_method("dual-projected")
