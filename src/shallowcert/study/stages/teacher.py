"""Stage 1: the deep teacher and the hard-label control students (thesis table 8.1).

Jobs per seed: the teacher, and one control per student width (independent of the teacher).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from shallowcert.study.context import ModelRow, StageContext, TrainingConfig
from shallowcert.study.costs import CostModel
from shallowcert.study.jobs import Job
from shallowcert.study.record import Record
from shallowcert.study.stage import JobResults, Stage, StageName
from shallowcert.training import train_classifier

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TeacherConfig(Record):
    """The ``teacher`` section: the deep teacher's architecture spec and its training."""

    spec: str
    training: TrainingConfig


@dataclass(frozen=True)
class StudentsConfig(Record):
    """The ``students`` section: the width sweep of each shallow family, the transfer sets
    distilled on, and the students' training."""

    snn: list[int]
    scnn1: list[int]
    scnn2: list[str]
    transfer_sets: list[str]
    training: TrainingConfig

    def specs(self) -> list[tuple[str, str]]:
        """(family, spec) of every student in the width sweep."""
        return ([("snn", f"snn:{w}") for w in self.snn] + [("scnn1", f"scnn1:{w}") for w in self.scnn1]
                + [("scnn2", f"scnn2:{w}") for w in self.scnn2])

    def conv_specs(self) -> list[str]:
        """The specs of the convolutional students (scnn1, scnn2), in sweep order."""
        return [spec for family, spec in self.specs() if family != "snn"]


@dataclass(frozen=True, kw_only=True)
class TeacherRow(ModelRow):
    train_seconds: float  # wall time of the training


@dataclass(frozen=True, kw_only=True)
class ControlRow(ModelRow):
    family: str  # snn, scnn1 or scnn2


@dataclass(frozen=True)
class TeacherResults(Record):
    teacher: TeacherRow
    controls: list[ControlRow]


def model_name(prefix: str, spec: str) -> str:
    return f"{prefix}-" + spec.replace(":", "-").replace(",", "_")


def train_teacher(ctx: StageContext) -> TeacherRow:
    section = ctx.config.teacher
    model, fit = train_classifier(section.spec, ctx.dataset, ctx.fit_config(section.training), device=ctx.device)
    row = ctx.save("teacher", model, spec=section.spec, fit=fit).extend(TeacherRow, train_seconds=round(fit.seconds, 2))
    log.info("teacher %s (seed %d): test accuracy %.4f", section.spec, ctx.seed, row.test_accuracy)
    return row


def train_control(ctx: StageContext, *, family: str, spec: str) -> ControlRow:
    student, fit = train_classifier(spec, ctx.dataset, ctx.fit_config(ctx.config.students.training),
                                    device=ctx.device)
    return ctx.save(model_name("control", spec), student, spec=spec, fit=fit).extend(ControlRow, family=family)


def jobs(ctx: StageContext, costs: CostModel) -> list[Job]:
    teacher, students = ctx.config.teacher, ctx.config.students
    found = [Job("teacher", train_teacher, TeacherRow, cost=costs.training(teacher.spec, teacher.training),
                 outputs=("teacher",))]
    found += [Job(model_name("control", spec), train_control, ControlRow, {"family": family, "spec": spec},
                  cost=costs.training(spec, students.training), outputs=(model_name("control", spec),))
              for family, spec in students.specs()]
    return found


def collect(ctx: StageContext, results: JobResults) -> TeacherResults:
    controls = [results.get(model_name("control", spec), ControlRow) for _, spec in ctx.config.students.specs()]
    return TeacherResults(results.get("teacher", TeacherRow), controls)


STAGE = Stage(StageName.TEACHER, "Teacher and hard-label controls", ("teacher", "students"), jobs, collect,
              TeacherResults)
