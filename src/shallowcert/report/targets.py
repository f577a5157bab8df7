"""Table T.1: the run's targets (:class:`shallowcert.study.targets.TargetsConfig`) against what it reached.

A target is a floor (teacher test accuracy ``a_T ≥ t``; certification and attack points
``n ≥ t``) or a ceiling (student gap ``100 · (a_T − max_s a_s) ≤ t`` percentage points over
the distilled students ``s`` of the target's family; a robust teacher's robust error bound
``1 − certified accuracy ≤ t`` and clean error ``1 − clean accuracy ≤ t`` at the
certification ε). It is **met** when every seed reaches it: a target is about the sizes, and
a seed that misses it shows the sizes do not buy it reliably. The per-seed values are shown,
so a near miss reads as one. A target whose stage has not run is "not checked". Each row
names the table or figure that holds its evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from shallowcert.report.document import Document, Heading, Paragraph, Table
from shallowcert.report.results import RunResults
from shallowcert.report.sections import FAMILY_TABLES
from shallowcert.study.stages.certification import TeacherKind
from shallowcert.study.targets import TargetsConfig

HEADERS = ["target", "required", "reached (per seed)", "met", "evidence"]


@dataclass(frozen=True)
class TargetCheck:
    """One target: what it asks, its bound, the value of each seed (in run order), whether
    higher is better, and where the report shows the evidence."""

    target: str
    bound: float
    reached: list[float]
    floor: bool  # True: reached >= bound is met; False: reached <= bound is met
    evidence: str
    digits: int = 4

    @property
    def met(self) -> bool | None:
        """Every seed on the right side of the bound (None: nothing to check)."""
        if not self.reached:
            return None
        return all(v >= self.bound if self.floor else v <= self.bound for v in self.reached)

    def required(self) -> str:
        return f"{'≥' if self.floor else '≤'} {self._number(self.bound)}"

    def reached_text(self) -> str:
        return " / ".join(self._number(v) for v in self.reached) if self.reached else "not run"

    def _number(self, value: float) -> str:
        return f"{value:,.0f}" if self.digits == 0 else f"{value:.{self.digits}f}"


def _teacher_accuracy(results: RunResults, bound: float) -> TargetCheck:
    stage = results.teacher
    reached = [] if stage is None else stage.over_seeds(lambda r: r.teacher.test_accuracy)
    return TargetCheck("teacher test accuracy (full test split)", bound, reached, True, "Table 8.1")


def _student_gap(results: RunResults, bound: float, family: str) -> TargetCheck:
    reached: list[float] = []
    teacher, distillation = results.teacher, results.distillation
    if teacher is not None and distillation is not None:
        for seed in distillation.seeds:
            students = [s.test_accuracy for s in distillation.by_seed[seed].students if s.family == family]
            if students and seed in teacher.by_seed:
                reached.append(100.0 * (teacher.by_seed[seed].teacher.test_accuracy - max(students)))
    return TargetCheck(f"best distilled {family} student below its teacher (percentage points)", bound, reached,
                       False, f"{FAMILY_TABLES[family]}, Table 8.1", digits=2)


def _robust_teacher(results: RunResults, targets: TargetsConfig) -> list[TargetCheck]:
    stage = results.certification
    kinds = [TeacherKind.CERT] if stage is None else stage.first.teacher_kinds()
    checks = []
    for kind in kinds:
        name = kind.model("teacher-robust")
        rows = [] if stage is None else [next(m for m in r.models if m.name == name) for r in stage.by_seed.values()]
        points = "" if stage is None else f" on the {stage.first.n:,} certification points"
        eps = "" if stage is None else f" at ε = {stage.first.eps:g}"
        if targets.robust_error_bound is not None:
            checks.append(TargetCheck(f"{name}: robust error bound{eps}{points}", targets.robust_error_bound,
                                      [m.robust_error_bound for m in rows], False, "Table 8.20"))
        if targets.robust_clean_error is not None:
            checks.append(TargetCheck(f"{name}: clean error{points}", targets.robust_clean_error,
                                      [1.0 - m.clean_accuracy for m in rows], False, "Table 8.20"))
    return checks


def _points(results: RunResults, bound: int) -> list[TargetCheck]:
    certification, attacks = results.certification, results.attacks
    return [TargetCheck("test points certified", bound,
                        [] if certification is None else certification.over_seeds(lambda r: float(r.n)), True,
                        "Tables 8.19, 8.20", digits=0),
            TargetCheck("test points attacked", bound,
                        [] if attacks is None else attacks.over_seeds(lambda r: float(r.n)), True,
                        "Tables 8.11 onwards", digits=0)]


def check_targets(results: RunResults, targets: TargetsConfig) -> list[TargetCheck]:
    """Every target ``targets`` sets, checked on ``results`` (module docstring), in config order."""
    checks = []
    if targets.teacher_test_accuracy is not None:
        checks.append(_teacher_accuracy(results, targets.teacher_test_accuracy))
    if targets.student_gap is not None:
        checks.append(_student_gap(results, targets.student_gap, targets.student_family))
    checks += _robust_teacher(results, targets)
    if targets.points is not None:
        checks += _points(results, targets.points)
    return checks


def missed_caveat(checks: Sequence[TargetCheck]) -> str | None:
    """One sentence naming the targets missed, for the head of the claims (None: none missed)."""
    missed = [c for c in checks if c.met is False]
    if not missed:
        return None
    return ("This run misses " + ("its target" if len(missed) == 1 else f"{len(missed)} of its targets") + ": "
            + "; ".join(f"{c.target} {c.reached_text()}, required {c.required()}" for c in missed)
            + " (Table T.1).")


def targets_section(doc: Document, checks: Sequence[TargetCheck]) -> None:
    """Table T.1, one row per target."""
    doc.add(Heading("Targets of this run's sizes"))
    doc.add(Paragraph("The targets its config sets, each met when every seed reaches it; the values are per seed, "
                      "in the run's seed order."))
    doc.add(Table("Table T.1", "Targets against what the run reached.", HEADERS,
                  [[c.target, c.required(), c.reached_text(),
                    "not checked" if c.met is None else ("yes" if c.met else "no"), c.evidence] for c in checks]))
