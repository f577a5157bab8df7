"""Stage 7: improving the robust student — thesis tables 8.21-8.24.

Starting from the robust certification teacher, the shallow student architecture is made
robust in five ways, all evaluated on the same test points at the same epsilon:
logits distillation (from stage 6), temperature distillation, robust retraining of the
distilled student for a few epochs, straight robust training from scratch, and
adversarial distillation (the student matches the teacher's clean logits on inputs
perturbed against itself).

Jobs per seed: one per variant (``variant-<i>``), then its certification.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from shallowcert.distill import DistillMethod, distill_student
from shallowcert.study.context import StageContext
from shallowcert.study.costs import CostModel
from shallowcert.study.jobs import Job
from shallowcert.study.robustness import certify_job, train_robust
from shallowcert.study.stage import JobResults, Stage
from shallowcert.training import build_seeded

VARIANTS = ("distilled (logits)", "distilled (temperature)", "distilled + robust retraining",
            "robust training from scratch", "adversarial distillation")


def variant_label(config: dict[str, Any], variant: str) -> str:
    if variant == "distilled (temperature)":
        return f"distilled (temperature {config['improvement']['temperature']:g})"
    return variant


def _make_variant(ctx: StageContext, variant: str) -> tuple[nn.Module, list[dict[str, float]] | None]:
    """The variant's model and its learning curves (the logits student's are those of stage 6)."""
    cert, section = ctx.config["certification"], ctx.config["improvement"]
    spec, eps, config = cert["student_spec"], cert["eps"], ctx.fit_config(section["training"])
    if variant == "distilled (logits)":
        loaded = ctx.load("certification", "student-robust")
        return loaded.model, loaded.metrics.get("history")
    if variant == "distilled + robust retraining":
        model = ctx.load("certification", "student-robust").model
        fit = train_robust(ctx, model, eps=eps, method=cert["train_method"], warmup_epochs=1,
                           config=ctx.fit_config(section["training"], epochs=section["retrain_epochs"]))
        return model, fit.history
    if variant == "robust training from scratch":
        model = build_seeded(spec, ctx.dataset, ctx.seed).to(ctx.device)
        fit = train_robust(ctx, model, eps=eps, method=cert["train_method"], warmup_epochs=cert["warmup_epochs"],
                           config=config)
        return model, fit.history
    method = (DistillMethod("temperature", temperature=section["temperature"]) if variant == "distilled (temperature)"
              else DistillMethod("adversarial", eps=section["adversarial_eps"],
                                 attack_steps=section["adversarial_steps"]))
    model, fit = distill_student(ctx.load("certification", "teacher-robust").model, spec, ctx.dataset, method=method,
                                 config=config, cache_dir=ctx.cache_dir, device=ctx.device)
    return model, fit.history


def train_variant(ctx: StageContext, *, index: int, variant: str) -> dict[str, Any]:
    spec = ctx.config["certification"]["student_spec"]
    model, history = _make_variant(ctx, variant)
    return ctx.save(f"variant-{index}", model, spec=spec, variant=variant_label(ctx.config, variant), history=history)


def _variant_cost(ctx: StageContext, costs: CostModel, variant: str) -> float:
    cert, section = ctx.config["certification"], ctx.config["improvement"]
    spec = cert["student_spec"]
    if variant == "distilled (logits)":
        return 0.0
    if variant == "distilled + robust retraining":
        return costs.robust_training(spec, section["training"], cert["train_method"], epochs=section["retrain_epochs"])
    if variant == "robust training from scratch":
        return costs.robust_training(spec, section["training"], cert["train_method"])
    steps = section["adversarial_steps"] + 1 if variant == "adversarial distillation" else 1
    return costs.training(spec, section["training"], factor=steps)


def jobs(ctx: StageContext, costs: CostModel) -> list[Job]:
    cert = ctx.config["certification"]
    found = [Job(f"variant-{i}", train_variant, {"index": i, "variant": v}, cost=_variant_cost(ctx, costs, v),
                 outputs=(f"variant-{i}",)) for i, v in enumerate(VARIANTS)]
    found += [certify_job(ctx, costs, f"variant-{i}", cert["student_spec"], [0.0, cert["eps"]])
              for i in range(len(VARIANTS))]
    return found


def collect(ctx: StageContext, results: JobResults) -> dict[str, Any]:
    cert = ctx.config["certification"]
    rows = []
    for i, variant in enumerate(VARIANTS):
        row = results[f"certify-variant-{i}"]
        rows.append({**row, "name": variant_label(ctx.config, variant), "pgd_accuracy": row["pgd"]["robust_accuracy"][-1],
                     "history": results[f"variant-{i}"].get("history")})
    return {"spec": cert["student_spec"], "eps": cert["eps"], "dtype": "float64", "models": rows}


STAGE = Stage("improvement", "Improving the robust student", ("improvement",), jobs, collect)
