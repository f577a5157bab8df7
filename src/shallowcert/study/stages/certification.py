"""Stage 6: the certification study — thesis tables 8.19/8.20 and the certification-area figures.

The ReLU-only certification teacher is trained twice, normally (cross-entropy) and
robustly (convex outer polytope at epsilon, with warm-up); a shallow student is distilled
(logits) from each. All four are certified on the same test points: certified accuracy at
epsilon, per-point certified radii and their average, and PGD curves. On the first
``exact_points`` of those points the complete verifier also brackets each model's exact
robust radius (:mod:`shallowcert.study.exact_gap`), so the report can show how much radius
the certificate gives away; the teachers' points often stay unsettled within
``exact_time_limit``, and are reported as such.

Jobs per seed: the two teachers; each student after its teacher; each certification after
its model; each exact-radius job (``exact-<model>``, none when ``exact_points`` is 0) after
its model.

Results per seed (:class:`CertificationResults`): ``models`` (one robustness row per model,
see :mod:`shallowcert.study.robustness`) and ``exact`` (``None`` without exact radii, else
``points``, ``time_limit``, ``rtol`` and one summary row per model naming its
``<model>-exact.json``).
"""

from __future__ import annotations

from dataclasses import dataclass

from shallowcert.distill import DistillMethod, distill_student
from shallowcert.study.context import History, ModelRow, StageContext, TrainingConfig
from shallowcert.study.costs import CostModel
from shallowcert.study.exact_gap import ExactSummary, exact_job
from shallowcert.study.jobs import Job
from shallowcert.study.record import Record
from shallowcert.study.robustness import DOMAIN, RobustnessRow, certify_job, train_robust
from shallowcert.study.stage import JobResults, Stage, StageName
from shallowcert.training import build_seeded, train_classifier

MODELS = ("teacher-normal", "teacher-robust", "student-normal", "student-robust")


@dataclass(frozen=True)
class CertificationConfig(Record):
    """The ``certification`` section: the two architectures, epsilon (input units) for robust
    training and certificates, the bounds used for each, training, how many test points are
    certified, the radius search's relative tolerance, and the exact radii (how many
    points, seconds per point), the PGD epsilons."""

    teacher_spec: str
    student_spec: str
    eps: float
    train_method: str
    projections: int
    method: str
    warmup_epochs: int
    teacher_training: TrainingConfig
    robust_training: TrainingConfig
    student_training: TrainingConfig
    points: int
    radius_rtol: float
    exact_points: int
    exact_time_limit: float
    pgd_eps: list[float]

    def exact_count(self) -> int:
        """How many points get an exact radius: ``exact_points``, at most the certified ``points``."""
        return min(self.exact_points, self.points)


@dataclass(frozen=True, kw_only=True)
class CertifiedRow(RobustnessRow):
    """A certification model's robustness with the learning curves of its training."""

    history: History | None


@dataclass(frozen=True)
class ExactResults(Record):
    """The exact radii of every model: points per model, seconds per point, settling tolerance."""

    points: int
    time_limit: float
    rtol: float
    models: list[ExactSummary]


@dataclass(frozen=True)
class CertificationResults(Record):
    """Certificates at ``eps`` by ``method`` in ``dtype`` over balls clipped to ``domain``."""

    eps: float
    method: str
    dtype: str
    domain: list[float]
    n: int
    train_method: str
    models: list[CertifiedRow]
    exact: ExactResults | None


def train_normal_teacher(ctx: StageContext) -> ModelRow:
    section = ctx.config.certification
    model, fit = train_classifier(section.teacher_spec, ctx.dataset, ctx.fit_config(section.teacher_training),
                                  device=ctx.device)
    return ctx.save("teacher-normal", model, spec=section.teacher_spec, fit=fit)


def train_robust_teacher(ctx: StageContext) -> ModelRow:
    section = ctx.config.certification
    model = build_seeded(section.teacher_spec, ctx.dataset, ctx.seed).to(ctx.device)
    fit = train_robust(ctx, model, eps=section.eps, method=section.train_method,
                       warmup_epochs=section.warmup_epochs, config=ctx.fit_config(section.robust_training))
    return ctx.save("teacher-robust", model, spec=section.teacher_spec, fit=fit)


def distill_from(ctx: StageContext, *, kind: str) -> ModelRow:
    """The student distilled (logits) from the ``kind`` (normal or robust) teacher of this stage."""
    section = ctx.config.certification
    student, fit = distill_student(ctx.load(ctx.stage, f"teacher-{kind}").model, section.student_spec, ctx.dataset,
                                   method=DistillMethod("logits"), config=ctx.fit_config(section.student_training),
                                   cache_dir=ctx.cache_dir, device=ctx.device)
    return ctx.save(f"student-{kind}", student, spec=section.student_spec, fit=fit)


def jobs(ctx: StageContext, costs: CostModel) -> list[Job]:
    section = ctx.config.certification
    teacher, student = section.teacher_spec, section.student_spec
    found = [Job("teacher-normal", train_normal_teacher, ModelRow,
                 cost=costs.training(teacher, section.teacher_training), outputs=("teacher-normal",)),
             Job("teacher-robust", train_robust_teacher, ModelRow, outputs=("teacher-robust",),
                 cost=costs.robust_training(teacher, section.robust_training, section.train_method,
                                            warmup_epochs=section.warmup_epochs))]
    found += [Job(f"student-{kind}", distill_from, ModelRow, {"kind": kind}, outputs=(f"student-{kind}",),
                  cost=costs.training(student, section.student_training), after=(f"teacher-{kind}",))
              for kind in ("normal", "robust")]
    found += [certify_job(ctx, costs, name, teacher if name.startswith("teacher") else student, section.pgd_eps)
              for name in MODELS]
    if section.exact_count():
        found += [exact_job(ctx, costs, name) for name in MODELS]
    return found


def collect(ctx: StageContext, results: JobResults) -> CertificationResults:
    section = ctx.config.certification
    rows = [results.get(f"certify-{name}", RobustnessRow).extend(
        CertifiedRow, history=results.get(name, ModelRow).history) for name in MODELS]
    exact = (ExactResults(section.exact_count(), section.exact_time_limit, section.radius_rtol,
                          [results.get(f"exact-{name}", ExactSummary) for name in MODELS])
             if section.exact_count() else None)
    return CertificationResults(section.eps, section.method, "float64", list(DOMAIN), rows[0].n, section.train_method,
                                rows, exact)


STAGE = Stage(StageName.CERTIFICATION, "Certification of normal and robust teachers and their students",
              ("certification", "attacks"), jobs, collect, CertificationResults)
