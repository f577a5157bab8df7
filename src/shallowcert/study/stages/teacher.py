"""Stage 1: the deep teacher and the hard-label control students (thesis table 8.1)."""

from __future__ import annotations

import logging
from typing import Any

from shallowcert.study.context import StageContext
from shallowcert.study.stage import Stage
from shallowcert.training import train_classifier

log = logging.getLogger(__name__)


def student_specs(config: dict[str, Any]) -> list[tuple[str, str]]:
    """(family, spec) of every student in the width sweep."""
    students = config["students"]
    return ([("snn", f"snn:{w}") for w in students["snn"]] + [("scnn1", f"scnn1:{w}") for w in students["scnn1"]]
            + [("scnn2", f"scnn2:{w}") for w in students["scnn2"]])


def model_name(prefix: str, spec: str) -> str:
    return f"{prefix}-" + spec.replace(":", "-").replace(",", "_")


def run(ctx: StageContext) -> dict[str, Any]:
    teacher_cfg = ctx.config["teacher"]
    model, fit = train_classifier(teacher_cfg["spec"], ctx.dataset, ctx.fit_config(teacher_cfg["training"]))
    teacher = ctx.save("teacher", model, spec=teacher_cfg["spec"], fit=fit, train_seconds=round(fit.seconds, 2))
    log.info("teacher %s: test accuracy %.4f", teacher_cfg["spec"], teacher["test_accuracy"])
    controls = []
    for family, spec in student_specs(ctx.config):
        student, fit = train_classifier(spec, ctx.dataset, ctx.fit_config(ctx.config["students"]["training"]))
        controls.append({"family": family, **ctx.save(model_name("control", spec), student, spec=spec, fit=fit)})
    return {"teacher": teacher, "controls": controls}


STAGE = Stage("teacher", "Teacher and hard-label controls", ("teacher", "students"), run)
