"""The thesis' conclusions, each checked on this run's numbers.

Every claim is stated, the numbers that decide it are quoted, and it is marked
*holds*, *does not hold* or *undecided* (a stage is missing or has nothing to compare).
Accuracies are test accuracies; choices between models (the best temperature) are made
on validation accuracy, as a user would.
"""

from __future__ import annotations

from typing import Any, Callable

from shallowcert.report.document import Claim

Results = dict[str, dict[str, Any]]


def _missing(results: Results, *stages: str) -> str | None:
    absent = [s for s in stages if s not in results]
    return f"stage(s) {', '.join(absent)} not run" if absent else None


def distilled_beat_controls(results: Results) -> Claim:
    statement = "Distilled students are more accurate than the same architectures trained on hard labels."
    if (why := _missing(results, "distillation")):
        return Claim(statement, None, why)
    rows = results["distillation"]["students"]
    wins = [r for r in rows if r["test_accuracy"] > r["control_test_accuracy"]]
    detail = "; ".join(f"{r['spec']} ({r['transfer']}): {r['test_accuracy']:.4f} vs {r['control_test_accuracy']:.4f}"
                       for r in rows)
    return Claim(statement, len(wins) * 2 > len(rows), f"{len(wins)} of {len(rows)} students beat their control. {detail}")


def temperature_beats_logits(results: Results) -> Claim:
    statement = "Temperature distillation (T chosen on validation) beats logits matching."
    if (why := _missing(results, "temperature")):
        return Claim(statement, None, why)
    rows = results["temperature"]["students"]
    verdicts, details = [], []
    for spec in dict.fromkeys(r["spec"] for r in rows):
        logits = next(r for r in rows if r["spec"] == spec and r["method"] == "logits")
        best = max((r for r in rows if r["spec"] == spec and r["method"] == "temperature"),
                   key=lambda r: r["val_accuracy"])
        verdicts.append(best["test_accuracy"] > logits["test_accuracy"])
        details.append(f"{spec}: T={best['temperature']:g} {best['test_accuracy']:.4f} vs logits "
                       f"{logits['test_accuracy']:.4f}")
    return Claim(statement, sum(verdicts) * 2 > len(verdicts), "; ".join(details))


def pruning_keeps_accuracy(results: Results) -> Claim:
    statement = "L1 filter pruning removes parameters while keeping accuracy (test drop at most 1 point)."
    if (why := _missing(results, "pruning")):
        return Claim(statement, None, why)
    p = results["pruning"]
    drop = p["test_accuracy_before"] - p["test_accuracy_after"]
    removed = p["params_before"] - p["params_after"]
    evidence = (f"{removed:,} of {p['params_before']:,} parameters removed ({p['params_removed_fraction']:.1%}), "
                f"MACs {p['flops_before']:,} -> {p['flops_after']:,}; validation accuracy "
                f"{p['val_accuracy_before']:.4f} -> {p['val_accuracy_after']:.4f}, test "
                f"{p['test_accuracy_before']:.4f} -> {p['test_accuracy_after']:.4f}")
    if removed == 0:
        return Claim(statement, None, "no filter could be removed within the tolerance. " + evidence)
    return Claim(statement, drop <= 0.01, evidence)


def _cert_row(results: Results, name: str) -> dict[str, Any]:
    return next(r for r in results["certification"]["models"] if r["name"] == name)


def _radius_comparison(results: Results, student: str, teacher: str, larger: bool, statement: str) -> Claim:
    if (why := _missing(results, "certification")):
        return Claim(statement, None, why)
    s, t = _cert_row(results, student), _cert_row(results, teacher)
    holds = s["mean_radius"] > t["mean_radius"] if larger else s["mean_radius"] < t["mean_radius"]
    return Claim(statement, holds, f"average certified radius of the predicted class "
                                   f"({results['certification']['dtype']}): student {s['mean_radius']:.5f} vs "
                                   f"teacher {t['mean_radius']:.5f}; counting misclassified points as 0: "
                                   f"{s['mean_true_label_radius']:.5f} vs {t['mean_true_label_radius']:.5f}; clean "
                                   f"accuracy {s['clean_accuracy']:.4f} vs {t['clean_accuracy']:.4f}")


def normal_student_larger_area(results: Results) -> Claim:
    return _radius_comparison(results, "student-normal", "teacher-normal", True,
                              "A student distilled from a normally trained teacher has a larger certification "
                              "area (average certified radius) than its teacher.")


def robust_student_smaller_area(results: Results) -> Claim:
    return _radius_comparison(results, "student-robust", "teacher-robust", False,
                              "A student distilled from a robustly trained teacher has a smaller certification "
                              "area than its teacher.")


def retraining_beats_straight_robust(results: Results) -> Claim:
    statement = ("Robust retraining of the distilled student beats straight robust training of the same "
                 "architecture (certified accuracy at epsilon).")
    if (why := _missing(results, "improvement")):
        return Claim(statement, None, why)
    rows = {r["name"]: r for r in results["improvement"]["models"]}
    a, b = rows["distilled + robust retraining"], rows["robust training from scratch"]
    return Claim(statement, a["certified_accuracy"] > b["certified_accuracy"],
                 f"certified accuracy {a['certified_accuracy']:.4f} vs {b['certified_accuracy']:.4f}; "
                 f"average radius {a['mean_radius']:.5f} vs {b['mean_radius']:.5f}; "
                 f"clean accuracy {a['clean_accuracy']:.4f} vs {b['clean_accuracy']:.4f}")


CLAIMS: tuple[Callable[[Results], Claim], ...] = (
    distilled_beat_controls, temperature_beats_logits, pruning_keeps_accuracy, normal_student_larger_area,
    robust_student_smaller_area, retraining_beats_straight_robust,
)


def check_claims(results: Results) -> list[Claim]:
    return [claim(results) for claim in CLAIMS]
