"""Stage 7: improving the robust student — thesis tables 8.21-8.24.

Starting from the robust certification teacher, the shallow student architecture is made
robust in five ways, all evaluated on the same test points at the same epsilon:
logits distillation (from stage 6), temperature distillation, robust retraining of the
distilled student for a few epochs, straight robust training from scratch, and
adversarial distillation (the student matches the teacher's clean logits on inputs
perturbed against itself).
"""

from __future__ import annotations

from typing import Any

from shallowcert.distill import DistillMethod, distill_student
from shallowcert.study.context import StageContext
from shallowcert.study.robustness import robustness_row, train_robust
from shallowcert.study.stage import Stage
from shallowcert.training import build_seeded


def run(ctx: StageContext) -> dict[str, Any]:
    cert, section = ctx.config["certification"], ctx.config["improvement"]
    spec, eps = cert["student_spec"], cert["eps"]
    teacher = ctx.load("certification", "teacher-robust").model
    config = ctx.fit_config(section["training"])
    logits = ctx.load("certification", "student-robust")
    # (model, learning curves): the logits student's curves are those of its training in stage 6
    variants = {"distilled (logits)": (logits.model, logits.metrics.get("history"))}
    student, fit = distill_student(teacher, spec, ctx.dataset, config=config, cache_dir=ctx.cache_dir,
                                   method=DistillMethod("temperature", temperature=section["temperature"]))
    variants[f"distilled (temperature {section['temperature']:g})"] = (student, fit.history)
    retrained = ctx.load("certification", "student-robust").model
    fit = train_robust(ctx, retrained, eps=eps, method=cert["train_method"], warmup_epochs=1,
                       config=ctx.fit_config(section["training"], epochs=section["retrain_epochs"]))
    variants["distilled + robust retraining"] = (retrained, fit.history)
    scratch = build_seeded(spec, ctx.dataset, ctx.seed)
    fit = train_robust(ctx, scratch, eps=eps, method=cert["train_method"], warmup_epochs=cert["warmup_epochs"],
                       config=config)
    variants["robust training from scratch"] = (scratch, fit.history)
    student, fit = distill_student(
        teacher, spec, ctx.dataset, config=config, cache_dir=ctx.cache_dir,
        method=DistillMethod("adversarial", eps=section["adversarial_eps"], attack_steps=section["adversarial_steps"]))
    variants["adversarial distillation"] = (student, fit.history)
    rows = []
    for i, (name, (model, history)) in enumerate(variants.items()):
        ctx.save(f"variant-{i}", model, spec=spec, variant=name, history=history)
        row = robustness_row(ctx, model, name=f"variant-{i}", spec=spec, pgd_eps=[0.0, eps])
        rows.append({**row, "name": name, "pgd_accuracy": row["pgd"]["robust_accuracy"][-1], "history": history})
    return {"spec": spec, "eps": eps, "dtype": "float64", "models": rows}


STAGE = Stage("improvement", "Improving the robust student", ("improvement",), run)
