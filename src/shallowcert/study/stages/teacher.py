"""Stage 1: the deep teacher and the hard-label control students (thesis table 8.1).

Jobs per seed: the teacher, and one control per student width (independent of the teacher).
"""

from __future__ import annotations

import logging
from typing import Any

from shallowcert.study.context import StageContext
from shallowcert.study.costs import CostModel
from shallowcert.study.jobs import Job
from shallowcert.study.stage import JobResults, Stage
from shallowcert.training import train_classifier

log = logging.getLogger(__name__)


def student_specs(config: dict[str, Any]) -> list[tuple[str, str]]:
    """(family, spec) of every student in the width sweep."""
    students = config["students"]
    return ([("snn", f"snn:{w}") for w in students["snn"]] + [("scnn1", f"scnn1:{w}") for w in students["scnn1"]]
            + [("scnn2", f"scnn2:{w}") for w in students["scnn2"]])


def model_name(prefix: str, spec: str) -> str:
    return f"{prefix}-" + spec.replace(":", "-").replace(",", "_")


def train_teacher(ctx: StageContext) -> dict[str, Any]:
    teacher_cfg = ctx.config["teacher"]
    model, fit = train_classifier(teacher_cfg["spec"], ctx.dataset, ctx.fit_config(teacher_cfg["training"]),
                                  device=ctx.device)
    row = ctx.save("teacher", model, spec=teacher_cfg["spec"], fit=fit,
                   train_seconds=round(fit.seconds, 2))
    log.info("teacher %s (seed %d): test accuracy %.4f", teacher_cfg["spec"], ctx.seed, row["test_accuracy"])
    return row


def train_control(ctx: StageContext, *, family: str, spec: str) -> dict[str, Any]:
    student, fit = train_classifier(spec, ctx.dataset, ctx.fit_config(ctx.config["students"]["training"]),
                                    device=ctx.device)
    return {"family": family, **ctx.save(model_name("control", spec), student, spec=spec, fit=fit)}


def jobs(ctx: StageContext, costs: CostModel) -> list[Job]:
    teacher = ctx.config["teacher"]
    found = [Job("teacher", train_teacher, cost=costs.training(teacher["spec"], teacher["training"]),
                 outputs=("teacher",))]
    found += [Job(model_name("control", spec), train_control, {"family": family, "spec": spec},
                  cost=costs.training(spec, ctx.config["students"]["training"]),
                  outputs=(model_name("control", spec),)) for family, spec in student_specs(ctx.config)]
    return found


def collect(ctx: StageContext, results: JobResults) -> dict[str, Any]:
    return {"teacher": results["teacher"], "controls": [results[model_name("control", spec)]
                                                        for _, spec in student_specs(ctx.config)]}


STAGE = Stage("teacher", "Teacher and hard-label controls", ("teacher", "students"), jobs, collect)
