"""The thesis' conclusions, each decided on this run's numbers by an explicit test.

Every comparison is paired: both models are evaluated on the same test points, and with
several seeds on the same points again; seeds and points are both sources of variance, so
every claim is decided by the two-level (seeds, then points) bootstrap 95% interval of
:mod:`shallowcert.report.stats`:

* accuracy comparisons (distillation vs control, temperature vs logits, certified accuracy)
  hold when the interval of the accuracy difference lies above 0 and fail when it lies below
  (McNemar's exact test, which pools the seeds, is quoted beside it);
* radius comparisons alike, on the mean radius difference;
* the pruning claim (test drop at most 1 point) holds when the whole interval of the drop
  lies at or below 0.01 and fails when it lies above;
* a claim over several models (one comparison per student) holds when more than half of
  its comparisons hold, fails when more than half fail; its effect is the mean difference
  over the comparisons, with its own interval.

Claims 4 and 5 (a student's certification area against its teacher's) are checked once per
teacher that stage 6 certified: the certification teacher and, when configured, the
distillation teacher itself (:class:`~shallowcert.study.stages.certification.TeacherKind`).

Anything else is *undecided (difference within noise)*, and says the effect seen and roughly
how many seeds or points would decide it (:func:`shallowcert.report.stats.decision_size`); a
claim is also undecided when a stage is missing. Accuracies are test accuracies; choices
between models (the best temperature) are made on validation accuracy averaged over seeds,
as a user would.

:func:`caveats` lists what makes the verdicts weak whatever they say: a teacher no more
accurate than one of its hard-label controls, a certification teacher near chance (clean
accuracy less than halfway from chance to 1), a config marked as a trial.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable, Sequence, TypeVar

import numpy as np

from shallowcert.errors import UserError
from shallowcert.report.document import Claim, spread_text
from shallowcert.report.results import RunResults, common_seeds, correct_per_point, need, radii_columns, stacked
from shallowcert.report.stats import (Interval, decide_interval, describe_interval, describe_mcnemar,
                                      describe_undecided, majority, mcnemar_exact, paired_bootstrap)
from shallowcert.study.stage import StageName
from shallowcert.study.stages.certification import CertifiedRow, TeacherKind
from shallowcert.study.stages.improvement import ImprovementRow, Variant

Verdict = tuple[bool | None, str, str, Interval | None, float]  # holds, evidence, test, effect, its threshold
WORDS = {True: "holds", False: "does not hold", None: "within noise"}
BOOTSTRAP = "two-level bootstrap (seeds, then test points) 95% interval"
ACCURACY_TEST = f"{BOOTSTRAP} of the paired accuracy difference, majority over the comparisons"
Row = TypeVar("Row")


def _one(rows: Sequence[Row], keep: Callable[[Row], bool], what: str) -> Row:
    """The one row of ``rows`` that ``keep`` accepts (``what`` describes it)."""
    found = [r for r in rows if keep(r)]
    if len(found) != 1:
        raise UserError(f"expected one row with {what}, found {len(found)}")
    return found[0]


def _with(rows: Sequence[Row], key: str, value: str) -> Row:
    """The one row of ``rows`` whose attribute ``key`` is ``value``."""
    return _one(rows, lambda r: getattr(r, key) == value, f"{key} {value}")


def _accuracy_comparison(label: str, a: np.ndarray, b: np.ndarray, *, what: str) -> tuple[bool | None, str]:
    """The bootstrap interval decides "A more accurate than B"; McNemar's pooled test is quoted."""
    interval = paired_bootstrap(a, b)
    holds = decide_interval(interval, above=0.0)
    return holds, (f"{label}: {what} {spread_text(a.mean(axis=1))} vs {spread_text(b.mean(axis=1))}; "
                   f"{describe_interval(interval, what='difference')} → {WORDS[holds]} "
                   f"({describe_mcnemar(mcnemar_exact(a, b))})")


def _summary(verdicts: list[bool | None]) -> str:
    return (f"{sum(v is True for v in verdicts)} of {len(verdicts)} comparisons hold, "
            f"{sum(v is False for v in verdicts)} fail, {sum(v is None for v in verdicts)} within noise. ")


def _overall(pairs: list[tuple[np.ndarray, np.ndarray]]) -> Interval:
    """The interval of the mean difference over several comparisons on the same seeds and points."""
    return paired_bootstrap(np.mean([a for a, _ in pairs], axis=0), np.mean([b for _, b in pairs], axis=0))


def distilled_beat_controls(results: RunResults) -> Verdict:
    distillation, teacher = need(results.distillation), need(results.teacher)
    seeds = common_seeds(distillation, teacher)
    verdicts, details, pairs = [], [], []
    for first in distillation.first.students:
        spec, transfer = first.spec, first.transfer
        student = stacked([correct_per_point(distillation, s, _one(
            distillation.by_seed[s].students, lambda r: r.spec == spec and r.transfer == transfer,
            f"spec {spec}, transfer {transfer}")) for s in seeds])
        control = stacked([correct_per_point(teacher, s, _one(teacher.by_seed[s].controls, lambda r: r.spec == spec,
                                                              f"spec {spec}")) for s in seeds])
        holds, text = _accuracy_comparison(f"{spec} ({transfer})", student, control, what="test accuracy")
        verdicts.append(holds)
        details.append(text)
        pairs.append((student, control))
    return majority(verdicts), _summary(verdicts) + "; ".join(details), ACCURACY_TEST, _overall(pairs), 0.0


def temperature_beats_logits(results: RunResults) -> Verdict:
    stage = need(results.temperature)
    verdicts, details, pairs = [], [], []
    for spec in dict.fromkeys(r.spec for r in stage.first.students):
        temperatures = [r.temperature for r in stage.first.students if r.spec == spec and r.temperature is not None]
        val = {t: np.mean(stage.over_seeds(lambda res: _one(
            res.students, lambda r: r.spec == spec and r.temperature == t, f"spec {spec}, T={t:g}").val_accuracy))
            for t in temperatures}
        best = max(temperatures, key=lambda t: val[t])
        chosen = stacked([correct_per_point(stage, s, _one(
            stage.by_seed[s].students, lambda r: r.spec == spec and r.temperature == best, f"spec {spec}, T={best:g}"))
            for s in stage.seeds])
        logits = stacked([correct_per_point(stage, s, _one(
            stage.by_seed[s].students, lambda r: r.spec == spec and r.temperature is None, f"spec {spec}, logits"))
            for s in stage.seeds])
        holds, text = _accuracy_comparison(f"{spec}: T={best:g} (best mean validation accuracy "
                                           f"{val[best]:.4f}) vs logits", chosen, logits, what="test accuracy")
        verdicts.append(holds)
        details.append(text)
        pairs.append((chosen, logits))
    return majority(verdicts), _summary(verdicts) + "; ".join(details), ACCURACY_TEST, _overall(pairs), 0.0


PRUNING_MARGIN = 0.01


def pruning_keeps_accuracy(results: RunResults) -> Verdict:
    stage = need(results.pruning)
    test = (f"{BOOTSTRAP} of the test accuracy drop (before − after): holds when it lies at or below "
            f"{PRUNING_MARGIN}, fails when it lies above")
    params_before, params_after = stage.over_seeds(lambda p: p.params_before), stage.over_seeds(
        lambda p: p.params_after)
    evidence = (f"parameters {spread_text(params_before)} -> {spread_text(params_after)} "
                f"(removed fraction {spread_text(stage.over_seeds(lambda p: p.params_removed_fraction))}), "
                f"MACs {spread_text(stage.over_seeds(lambda p: p.flops_before))} -> "
                f"{spread_text(stage.over_seeds(lambda p: p.flops_after))}; validation accuracy "
                f"{spread_text(stage.over_seeds(lambda p: p.val_accuracy_before))} -> "
                f"{spread_text(stage.over_seeds(lambda p: p.val_accuracy_after))}, test "
                f"{spread_text(stage.over_seeds(lambda p: p.test_accuracy_before))} -> "
                f"{spread_text(stage.over_seeds(lambda p: p.test_accuracy_after))}")
    if all(b == a for b, a in zip(params_before, params_after)):
        return None, "no filter could be removed within the tolerance. " + evidence, "", None, PRUNING_MARGIN
    before, after = [], []
    for seed in stage.seeds:
        p = stage.by_seed[seed]
        before.append(correct_per_point(need(results.stage(p.student.stage)), seed, p.student))
        after.append(correct_per_point(stage, seed, p.pruned))
    interval = paired_bootstrap(stacked(before), stacked(after))
    holds = decide_interval(interval, below=PRUNING_MARGIN)
    return (holds, f"{evidence}; {describe_interval(interval, what='test accuracy drop')} → {WORDS[holds]}", test,
            interval, PRUNING_MARGIN)


RADIUS_TEST = f"{BOOTSTRAP} of the paired mean certified-radius difference"


def _radius_comparison(results: RunResults, *, larger: str, smaller: str) -> Verdict:
    """Decide "mean radius of ``larger`` > mean radius of ``smaller``" on the same test points."""
    stage = need(results.certification)
    rows = {name: [_one(stage.by_seed[s].models, lambda r: r.name == name, f"name {name}") for s in stage.seeds]
            for name in (larger, smaller)}
    radius = {name: stacked([radii_columns(stage, s, row, ["radius"])[0] for s, row in zip(stage.seeds, rows[name])])
              for name in rows}
    interval = paired_bootstrap(radius[larger], radius[smaller])
    holds = decide_interval(interval, above=0.0)

    def spread(name: str, value: Callable[[CertifiedRow], float], digits: int = 5) -> str:
        return spread_text([value(r) for r in rows[name]], digits=digits)

    def mean(r: CertifiedRow) -> float:
        return r.mean_radius

    def true_label(r: CertifiedRow) -> float:
        return r.mean_true_label_radius

    def clean(r: CertifiedRow) -> float:
        return r.clean_accuracy

    return holds, (f"average certified radius of the predicted class ({stage.first.dtype}): {larger} "
                   f"{spread(larger, mean)} vs {smaller} {spread(smaller, mean)}; counting "
                   f"misclassified points as 0: {spread(larger, true_label)} vs "
                   f"{spread(smaller, true_label)}; clean accuracy "
                   f"{spread(larger, clean, 4)} vs {spread(smaller, clean, 4)}; "
                   f"{describe_interval(interval, what=f'mean radius difference ({larger} − {smaller})', digits=5)}"
                   f" → {WORDS[holds]}"), RADIUS_TEST, interval, 0.0


def retraining_beats_straight_robust(results: RunResults) -> Verdict:
    stage = need(results.improvement)
    variants = (Variant.RETRAINED, Variant.SCRATCH)
    rows: dict[Variant, list[ImprovementRow]] = {
        v: [_one(stage.by_seed[s].models, lambda r: r.variant == v, f"variant {v}") for s in stage.seeds]
        for v in variants}
    certified = {v: stacked([radii_columns(stage, s, row, ["certified"])[0] for s, row in zip(stage.seeds, rows[v])])
                 for v in variants}
    pair = certified[variants[0]], certified[variants[1]]
    holds, text = _accuracy_comparison("retrained vs from scratch", *pair, what="certified accuracy at ε")
    a, b = rows[variants[0]], rows[variants[1]]
    return holds, (f"{text}; average radius {spread_text([r.mean_radius for r in a], digits=5)} vs "
                   f"{spread_text([r.mean_radius for r in b], digits=5)}; clean accuracy "
                   f"{spread_text([r.clean_accuracy for r in a])} vs {spread_text([r.clean_accuracy for r in b])}"
                   ), f"{BOOTSTRAP} of the paired certified-accuracy difference at ε", paired_bootstrap(*pair), 0.0


@dataclass(frozen=True)
class ClaimCheck:
    statement: str
    stages: tuple[StageName, ...]
    decide: Callable[[RunResults], Verdict]


def area_claims(kind: TeacherKind) -> tuple[ClaimCheck, ClaimCheck]:
    """Claims 4 and 5 for the models of teacher ``kind`` (stage 6 certifies one set per teacher)."""
    teacher = "" if kind is TeacherKind.CERT else f" ({kind.describe()})"
    normal, robust = (partial(_radius_comparison, larger=kind.model("student-normal"),
                              smaller=kind.model("teacher-normal")),
                      partial(_radius_comparison, larger=kind.model("teacher-robust"),
                              smaller=kind.model("student-robust")))
    return (ClaimCheck(f"A student distilled from a normally trained teacher{teacher} has a larger certification "
                       "area (average certified radius) than its teacher.", (StageName.CERTIFICATION,), normal),
            ClaimCheck(f"A student distilled from a robustly trained teacher{teacher} has a smaller certification "
                       "area than its teacher.", (StageName.CERTIFICATION,), robust))


def claim_checks(kinds: list[TeacherKind]) -> list[ClaimCheck]:
    """The study's claims in order, claims 4 and 5 once per teacher kind in ``kinds``."""
    return [
        ClaimCheck("Distilled students are more accurate than the same architectures trained on hard labels.",
                   (StageName.DISTILLATION, StageName.TEACHER), distilled_beat_controls),
        ClaimCheck("Temperature distillation (T chosen on validation) beats logits matching.",
                   (StageName.TEMPERATURE,), temperature_beats_logits),
        ClaimCheck("L1 filter pruning removes parameters while keeping accuracy (test drop at most 1 point).",
                   (StageName.PRUNING, StageName.DISTILLATION, StageName.TEMPERATURE), pruning_keeps_accuracy),
        *(check for kind in kinds for check in area_claims(kind)),
        ClaimCheck("Robust retraining of the distilled student beats straight robust training of the same "
                   "architecture (certified accuracy at epsilon).", (StageName.IMPROVEMENT,),
                   retraining_beats_straight_robust),
    ]


def check_claims(results: RunResults) -> list[Claim]:
    """Every claim of :func:`claim_checks` for the teachers stage 6 certified, decided on
    ``results`` (undecided where a stage is missing); an undecided claim's evidence ends with
    what would decide it."""
    certification = results.certification
    kinds = certification.first.teacher_kinds() if certification is not None else [TeacherKind.CERT]
    claims = []
    for check in claim_checks(kinds):
        absent = [s for s in check.stages if results.stage(s) is None]
        if absent:
            claims.append(Claim(check.statement, None, f"stage(s) {', '.join(absent)} not run"))
            continue
        try:
            holds, evidence, test, effect, threshold = check.decide(results)
        except UserError as exc:
            claims.append(Claim(check.statement, None, f"cannot be tested: {exc}"))
            continue
        if holds is None and effect is not None:
            evidence = f"{evidence}. Undecided: {describe_undecided(effect, threshold)}"
        claims.append(Claim(check.statement, holds, evidence, test, effect))
    return claims


CHANCE_FRACTION = 0.5  # a certification teacher is "near chance" below chance + this fraction of (1 - chance)


def caveats(results: RunResults, *, trial: bool) -> list[str]:
    """What weakens every verdict of this run (module docstring), one sentence each."""
    found = []
    if trial:
        found.append("This is a trial run: its sizes are for trying the pipeline, and its verdicts are not evidence.")
    teacher = results.teacher
    if teacher is not None:
        accuracy = float(np.mean([r.teacher.test_accuracy for r in teacher.by_seed.values()]))
        controls = {c.spec: float(np.mean([_with(r.controls, "spec", c.spec).test_accuracy
                                           for r in teacher.by_seed.values()])) for c in teacher.first.controls}
        beaten = {spec: acc for spec, acc in controls.items() if acc >= accuracy}
        if beaten:
            found.append(f"The teacher (test accuracy {accuracy:.4f}, mean over seeds) does not beat every hard-label "
                         "control: " + ", ".join(f"{spec} {acc:.4f}" for spec, acc in beaten.items())
                         + ". Claims about distillation then say little about distillation.")
    certification = results.certification
    if certification is not None:
        seed = certification.seeds[0]
        labels = radii_columns(certification, seed, certification.first.models[0], ["label"])[0]
        chance = 1.0 / (int(labels.max()) + 1)  # classes: the labels seen on the certified points
        floor = chance + CHANCE_FRACTION * (1.0 - chance)
        for name in (k.model(role) for k in certification.first.teacher_kinds()
                     for role in ("teacher-normal", "teacher-robust")):
            accuracy = float(np.mean([_with(r.models, "name", name).clean_accuracy
                                      for r in certification.by_seed.values()]))
            if accuracy < floor:
                found.append(f"The certification {name.replace('-', ' ')} sits near chance: clean accuracy "
                             f"{accuracy:.4f} (mean over seeds; chance {chance:.2f}), below {floor:.2f}; its "
                             "certificates and radii say little about a useful model.")
    return found
