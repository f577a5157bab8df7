"""Stage 6: the certification study — thesis tables 8.19/8.20 and the certification-area figures.

A teacher is trained twice, normally (cross-entropy) and robustly (certified training at
epsilon, with ramps); a shallow student is distilled (logits) from each. ``teachers`` names
which teachers (:class:`TeacherKind`):

* ``cert-teacher``: the thesis' ReLU-only certification teacher (``teacher_spec``), a
  stand-in it needed because Wong & Kolter's bound could not pass a max-pool;
* ``distillation-teacher``: the teacher of stage 1 itself, the deep network the other stages
  distil (max-pool layers included). Its normally trained model *is* stage 1's teacher
  (copied, not retrained); its robust twin has the same architecture, trained robustly.
  Its models are named ``deep-<role>``.

Every model is certified on the same test points: certified accuracy at epsilon, per-point
certified radii and their average, and PGD curves. On the first ``exact_points`` of those
points the complete verifier also brackets each model's exact robust radius
(:mod:`shallowcert.study.exact_gap`), so the report can show how much radius the
certificate gives away; the teachers' points often stay unsettled within
``exact_time_limit``, and are reported as such (verify splits only ReLUs: a deep teacher's
pools stay relaxed).

Jobs per seed and teacher: the two teachers; each student after its teacher; each
certification after its model; each exact-radius job (``exact-<model>``, none when
``exact_points`` is 0) after its model.

Results per seed (:class:`CertificationResults`): ``models`` (one robustness row per model,
see :mod:`shallowcert.study.robustness`, with the teacher it descends from) and ``exact``
(``None`` without exact radii, else ``points``, ``time_limit``, ``rtol`` and one summary row
per model naming its ``<model>-exact.json``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from shallowcert.distill import DistillMethod, distill_student
from shallowcert.study.context import History, ModelRow, StageContext, TrainingConfig
from shallowcert.study.costs import CostModel
from shallowcert.study.exact_gap import ExactSummary, exact_job
from shallowcert.study.jobs import Job
from shallowcert.study.record import OMIT_NONE, Record
from shallowcert.study.robustness import DOMAIN, RobustnessRow, certify_job, train_robust
from shallowcert.study.stage import JobResults, Stage, StageName
from shallowcert.study.stages.teacher import TeacherResults
from shallowcert.training import build_seeded, train_classifier

ROLES = ("teacher-normal", "teacher-robust", "student-normal", "student-robust")


class TeacherKind(str, enum.Enum):
    """Which teacher a certification model descends from (module docstring)."""

    CERT = "cert-teacher"
    DISTILLATION = "distillation-teacher"

    def model(self, role: str) -> str:
        """The model name of ``role`` (one of :data:`ROLES`) for this teacher."""
        return role if self is TeacherKind.CERT else f"deep-{role}"

    def describe(self) -> str:
        """The teacher in words, for the report."""
        return ("the ReLU-only certification teacher" if self is TeacherKind.CERT
                else "the distillation teacher itself (stage 1's teacher)")


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
    teachers: list[TeacherKind] | None = field(default=None, metadata=OMIT_NONE)

    def teacher_kinds(self) -> list[TeacherKind]:
        """``teachers``; when not given, the certification teacher alone (left out of the JSON
        then, so a config without it keeps the fingerprints of runs made before it existed)."""
        return self.teachers or [TeacherKind.CERT]

    def spec(self, kind: TeacherKind, role: str, *, distillation_teacher: str) -> str:
        """The architecture of ``kind``'s model ``role``; ``distillation_teacher``: stage 1's spec."""
        if role.startswith("student"):
            return self.student_spec
        return self.teacher_spec if kind is TeacherKind.CERT else distillation_teacher

    def exact_count(self) -> int:
        """How many points get an exact radius: ``exact_points``, at most the certified ``points``."""
        return min(self.exact_points, self.points)


@dataclass(frozen=True, kw_only=True)
class CertifiedRow(RobustnessRow):
    """A certification model's robustness with the learning curves of its training and the
    teacher it descends from (absent in runs made before ``teachers``: the certification teacher)."""

    history: History | None
    teacher: TeacherKind | None = field(default=None, metadata=OMIT_NONE)

    @property
    def kind(self) -> TeacherKind:
        return self.teacher or TeacherKind.CERT


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

    def teacher_kinds(self) -> list[TeacherKind]:
        """The teachers whose models were certified, in config order."""
        return list(dict.fromkeys(m.kind for m in self.models))


def train_normal_teacher(ctx: StageContext) -> ModelRow:
    section = ctx.config.certification
    model, fit = train_classifier(section.teacher_spec, ctx.dataset, ctx.fit_config(section.teacher_training),
                                  device=ctx.device)
    return ctx.save(TeacherKind.CERT.model("teacher-normal"), model, spec=section.teacher_spec, fit=fit)


def copy_distillation_teacher(ctx: StageContext) -> ModelRow:
    """Stage 1's teacher, the very model distilled by the other stages, with its learning curves."""
    loaded = ctx.load(StageName.TEACHER, "teacher")
    trained = ctx.results(StageName.TEACHER, TeacherResults).teacher
    return ctx.save(TeacherKind.DISTILLATION.model("teacher-normal"), loaded.model, spec=loaded.spec,
                    history=trained.history)


def train_robust_teacher(ctx: StageContext, *, teacher: TeacherKind = TeacherKind.CERT) -> ModelRow:
    section = ctx.config.certification
    spec = section.spec(teacher, "teacher-robust", distillation_teacher=ctx.config.teacher.spec)
    model = build_seeded(spec, ctx.dataset, ctx.seed).to(ctx.device)
    fit = train_robust(ctx, model, eps=section.eps, method=section.train_method,
                       warmup_epochs=section.warmup_epochs, config=ctx.fit_config(section.robust_training))
    return ctx.save(teacher.model("teacher-robust"), model, spec=spec, fit=fit)


def distill_from(ctx: StageContext, *, kind: str, teacher: TeacherKind = TeacherKind.CERT) -> ModelRow:
    """The student distilled (logits) from ``teacher``'s ``kind`` (normal or robust) model."""
    section = ctx.config.certification
    student, fit = distill_student(ctx.load(ctx.stage, teacher.model(f"teacher-{kind}")).model,
                                   section.student_spec, ctx.dataset, method=DistillMethod("logits"),
                                   config=ctx.fit_config(section.student_training), cache_dir=ctx.cache_dir,
                                   device=ctx.device)
    return ctx.save(teacher.model(f"student-{kind}"), student, spec=section.student_spec, fit=fit)


def model_names(section: CertificationConfig) -> list[tuple[TeacherKind, str]]:
    """Every certification model as (teacher kind, name), in ``teachers`` then :data:`ROLES` order."""
    return [(kind, kind.model(role)) for kind in section.teacher_kinds() for role in ROLES]


def teacher_jobs(ctx: StageContext, costs: CostModel, kind: TeacherKind) -> list[Job]:
    """The jobs that make ``kind``'s four models and certify them; the arguments name the
    teacher only when it is not the certification teacher (the job fingerprints of runs made
    before ``teachers`` stay valid)."""
    section = ctx.config.certification
    teacher = {} if kind is TeacherKind.CERT else {"teacher": kind}
    spec = {role: section.spec(kind, role, distillation_teacher=ctx.config.teacher.spec) for role in ROLES}
    name = {role: kind.model(role) for role in ROLES}
    normal = (Job(name["teacher-normal"], train_normal_teacher, ModelRow, outputs=(name["teacher-normal"],),
                  cost=costs.training(spec["teacher-normal"], section.teacher_training))
              if kind is TeacherKind.CERT else
              Job(name["teacher-normal"], copy_distillation_teacher, ModelRow, outputs=(name["teacher-normal"],)))
    found = [normal,
             Job(name["teacher-robust"], train_robust_teacher, ModelRow, teacher,
                 outputs=(name["teacher-robust"],),
                 cost=costs.robust_training(spec["teacher-robust"], section.robust_training, section.train_method,
                                            warmup_epochs=section.warmup_epochs))]
    found += [Job(name[f"student-{training}"], distill_from, ModelRow, {"kind": training, **teacher},
                  outputs=(name[f"student-{training}"],),
                  cost=costs.training(spec[f"student-{training}"], section.student_training),
                  after=(name[f"teacher-{training}"],))
              for training in ("normal", "robust")]
    found += [certify_job(ctx, costs, name[role], spec[role], section.pgd_eps) for role in ROLES]
    if section.exact_count():
        found += [exact_job(ctx, costs, name[role]) for role in ROLES]
    return found


def jobs(ctx: StageContext, costs: CostModel) -> list[Job]:
    return [job for kind in ctx.config.certification.teacher_kinds() for job in teacher_jobs(ctx, costs, kind)]


def collect(ctx: StageContext, results: JobResults) -> CertificationResults:
    section = ctx.config.certification
    names = model_names(section)
    rows = [results.get(f"certify-{name}", RobustnessRow).extend(
        CertifiedRow, history=results.get(name, ModelRow).history, teacher=kind) for kind, name in names]
    exact = (ExactResults(section.exact_count(), section.exact_time_limit, section.radius_rtol,
                          [results.get(f"exact-{name}", ExactSummary) for _, name in names])
             if section.exact_count() else None)
    return CertificationResults(section.eps, section.method, "float64", list(DOMAIN), rows[0].n, section.train_method,
                                rows, exact)


STAGE = Stage(StageName.CERTIFICATION, "Certification of normal and robust teachers and their students",
              ("certification", "attacks"), jobs, collect, CertificationResults)
