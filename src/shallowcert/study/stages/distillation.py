"""Stage 2: logits distillation over student families and widths, on transfer set A (the
labelled train split) and B (the unlabelled transfer set) — thesis tables 8.2-8.6.
"""

from __future__ import annotations

from typing import Any

from shallowcert.distill import DistillMethod, distill_student
from shallowcert.study.context import StageContext
from shallowcert.study.stage import Stage
from shallowcert.study.stages.teacher import model_name, student_specs


def run(ctx: StageContext) -> dict[str, Any]:
    teacher = ctx.load("teacher", "teacher").model
    controls = {row["spec"]: row for row in ctx.store.results("teacher")["controls"]}
    config = ctx.fit_config(ctx.config["students"]["training"])
    rows = []
    for transfer in ctx.config["students"]["transfer_sets"]:
        for family, spec in student_specs(ctx.config):
            student, fit = distill_student(teacher, spec, ctx.dataset, method=DistillMethod("logits"), config=config,
                                           transfer=transfer, cache_dir=ctx.cache_dir)
            row = ctx.save(model_name(f"logits-{transfer}", spec), student, spec=spec, method="logits",
                           transfer=transfer, fit=fit)
            rows.append({"family": family, **row, "control_test_accuracy": controls[spec]["test_accuracy"]})
    return {"students": rows}


STAGE = Stage("distillation", "Logits distillation (transfer sets A and B)", ("students",), run)
