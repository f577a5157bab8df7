"""Stage 2: logits distillation over student families and widths, on transfer set A (the
labelled train split) and B (the unlabelled transfer set) — thesis tables 8.2-8.6.

Jobs per seed: the teacher's logits on each transfer set (cached on disk), then one
student per width and transfer set.
"""

from __future__ import annotations

from typing import Any

from shallowcert.distill import DistillMethod, distill_student, teacher_logits, transfer_set
from shallowcert.study.context import StageContext
from shallowcert.study.costs import CostModel
from shallowcert.study.jobs import Job
from shallowcert.study.stage import JobResults, Stage
from shallowcert.study.stages.teacher import model_name, student_specs


def cache_teacher_logits(ctx: StageContext, *, stage: str, teacher: str, transfer: str) -> dict[str, Any]:
    """Compute the logits of ``stage``'s model ``teacher`` on ``transfer`` into the shared cache,
    so that the students that follow read them instead of computing them each."""
    model = ctx.load(stage, teacher).model
    logits = teacher_logits(model, transfer_set(ctx.dataset, transfer), cache_dir=ctx.cache_dir)
    return {"teacher": f"{stage}/{teacher}", "transfer": transfer, "examples": int(logits.shape[0])}


def logits_job(costs: CostModel, teacher_spec: str, transfer: str, *, stage: str = "teacher",
               teacher: str = "teacher") -> Job:
    return Job(f"logits-{teacher}-{transfer}", cache_teacher_logits,
               {"stage": stage, "teacher": teacher, "transfer": transfer}, cost=costs.logits(teacher_spec, transfer))


def distill_logits(ctx: StageContext, *, family: str, spec: str, transfer: str) -> dict[str, Any]:
    teacher = ctx.load("teacher", "teacher").model
    student, fit = distill_student(teacher, spec, ctx.dataset, method=DistillMethod("logits"),
                                   config=ctx.fit_config(ctx.config["students"]["training"]), transfer=transfer,
                                   cache_dir=ctx.cache_dir, device=ctx.device)
    row = ctx.save(model_name(f"logits-{transfer}", spec), student, spec=spec, method="logits", transfer=transfer,
                   fit=fit)
    control = next(c for c in ctx.results("teacher")["controls"] if c["spec"] == spec)
    return {"family": family, **row, "control_test_accuracy": control["test_accuracy"]}


def jobs(ctx: StageContext, costs: CostModel) -> list[Job]:
    students, teacher_spec = ctx.config["students"], ctx.config["teacher"]["spec"]
    found = []
    for transfer in students["transfer_sets"]:
        logits = logits_job(costs, teacher_spec, transfer)
        found.append(logits)
        found += [Job(model_name(f"logits-{transfer}", spec), distill_logits,
                      {"family": family, "spec": spec, "transfer": transfer},
                      cost=costs.training(spec, students["training"], transfer=transfer),
                      outputs=(model_name(f"logits-{transfer}", spec),), after=(logits.name,))
                  for family, spec in student_specs(ctx.config)]
    return found


def collect(ctx: StageContext, results: JobResults) -> dict[str, Any]:
    return {"students": [results[model_name(f"logits-{transfer}", spec)]
                         for transfer in ctx.config["students"]["transfer_sets"]
                         for _, spec in student_specs(ctx.config)]}


STAGE = Stage("distillation", "Logits distillation (transfer sets A and B)", ("students",), jobs, collect)
