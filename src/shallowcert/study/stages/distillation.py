"""Stage 2: logits distillation over student families and widths, on transfer set A (the
labelled train split) and B (the unlabelled transfer set) — thesis tables 8.2-8.6.

Jobs per seed: the teacher's logits on each transfer set (cached on disk), then one
student per width and transfer set.
"""

from __future__ import annotations

from dataclasses import dataclass

from shallowcert.distill import DistillMethod, distill_student, teacher_logits, transfer_set
from shallowcert.study.context import ModelRow, StageContext
from shallowcert.study.costs import CostModel
from shallowcert.study.jobs import Job
from shallowcert.study.record import Record
from shallowcert.study.stage import JobResults, Stage, StageName
from shallowcert.study.stages.teacher import TeacherResults, model_name


@dataclass(frozen=True)
class LogitsCache(Record):
    """A teacher's logits computed into the shared cache: which model, on which transfer set."""

    teacher: str  # <stage>/<model>
    transfer: str
    examples: int


@dataclass(frozen=True, kw_only=True)
class DistilledRow(ModelRow):
    """A student distilled by logits matching, beside its hard-label control's test accuracy."""

    method: str
    transfer: str
    family: str
    control_test_accuracy: float


@dataclass(frozen=True)
class DistillationResults(Record):
    students: list[DistilledRow]


def cache_teacher_logits(ctx: StageContext, *, stage: StageName, teacher: str, transfer: str) -> LogitsCache:
    """Compute the logits of ``stage``'s model ``teacher`` on ``transfer`` into the shared cache,
    so that the students that follow read them instead of computing them each."""
    model = ctx.load(stage, teacher).model
    logits = teacher_logits(model, transfer_set(ctx.dataset, transfer), cache_dir=ctx.cache_dir)
    return LogitsCache(f"{stage}/{teacher}", transfer, int(logits.shape[0]))


def logits_job(costs: CostModel, teacher_spec: str, transfer: str, *, stage: StageName = StageName.TEACHER,
               teacher: str = "teacher") -> Job:
    return Job(f"logits-{teacher}-{transfer}", cache_teacher_logits, LogitsCache,
               {"stage": stage, "teacher": teacher, "transfer": transfer}, cost=costs.logits(teacher_spec, transfer))


def distill_logits(ctx: StageContext, *, family: str, spec: str, transfer: str) -> DistilledRow:
    teacher = ctx.load(StageName.TEACHER, "teacher").model
    student, fit = distill_student(teacher, spec, ctx.dataset, method=DistillMethod("logits"),
                                   config=ctx.fit_config(ctx.config.students.training), transfer=transfer,
                                   cache_dir=ctx.cache_dir, device=ctx.device)
    row = ctx.save(model_name(f"logits-{transfer}", spec), student, spec=spec, fit=fit)
    control = next(c for c in ctx.results(StageName.TEACHER, TeacherResults).controls if c.spec == spec)
    return row.extend(DistilledRow, method="logits", transfer=transfer, family=family,
                      control_test_accuracy=control.test_accuracy)


def jobs(ctx: StageContext, costs: CostModel) -> list[Job]:
    students = ctx.config.students
    found = []
    for transfer in students.transfer_sets:
        logits = logits_job(costs, ctx.config.teacher.spec, transfer)
        found.append(logits)
        found += [Job(model_name(f"logits-{transfer}", spec), distill_logits, DistilledRow,
                      {"family": family, "spec": spec, "transfer": transfer},
                      cost=costs.training(spec, students.training, transfer=transfer),
                      outputs=(model_name(f"logits-{transfer}", spec),), after=(logits.name,))
                  for family, spec in students.specs()]
    return found


def collect(ctx: StageContext, results: JobResults) -> DistillationResults:
    students = ctx.config.students
    return DistillationResults([results.get(model_name(f"logits-{transfer}", spec), DistilledRow)
                                for transfer in students.transfer_sets for _, spec in students.specs()])


STAGE = Stage(StageName.DISTILLATION, "Logits distillation (transfer sets A and B)", ("students",), jobs, collect,
              DistillationResults)
