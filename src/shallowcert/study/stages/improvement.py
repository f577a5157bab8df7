"""Stage 7: improving the robust student — thesis tables 8.21-8.24.

Starting from the robust teacher of stage 6 (its first ``certification.teachers``), the
shallow student architecture is made robust in five ways, all evaluated on the same test
points at the same epsilon:
logits distillation (from stage 6), temperature distillation, robust retraining of the
distilled student for a few epochs, straight robust training from scratch, and
adversarial distillation (the student matches the teacher's clean logits on inputs
perturbed against itself).

The variants are :class:`Variant` keys (in the order of the tables); each has a recipe
(how its model is made and what that costs) and a display label. Jobs per seed: one per
variant (``variant-<i>``, ``i`` its place in that order), then its certification.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn

from shallowcert.distill import DistillMethod, distill_student
from shallowcert.models.checkpoint import ModelDir
from shallowcert.study.context import History, ModelRow, StageContext, TrainingConfig
from shallowcert.study.costs import CostModel
from shallowcert.study.jobs import Job
from shallowcert.study.record import Key, Record
from shallowcert.study.robustness import RobustnessRow, certify_job, train_robust
from shallowcert.study.stage import JobResults, Stage, StageName
from shallowcert.training import build_seeded


@dataclass(frozen=True)
class ImprovementConfig(Record):
    """The ``improvement`` section: the distillation temperature, robust retraining epochs,
    adversarial distillation's epsilon (input units) and PGD steps, and the training."""

    temperature: float
    retrain_epochs: int
    adversarial_eps: float
    adversarial_steps: int
    training: TrainingConfig


class Variant(Key):
    """The ways to a robust student, in table order; the value is the key results carry."""

    LOGITS = "logits"
    TEMPERATURE = "temperature"
    RETRAINED = "retrained"
    SCRATCH = "scratch"
    ADVERSARIAL = "adversarial"

    def label(self, section: ImprovementConfig) -> str:
        """The name the report shows."""
        return _LABELS[self].format(temperature=section.temperature)


_LABELS = {Variant.LOGITS: "distilled (logits)", Variant.TEMPERATURE: "distilled (temperature {temperature:g})",
           Variant.RETRAINED: "distilled + robust retraining", Variant.SCRATCH: "robust training from scratch",
           Variant.ADVERSARIAL: "adversarial distillation"}


@dataclass(frozen=True, kw_only=True)
class ImprovementRow(RobustnessRow):
    """A variant's robustness (``name``: its label), PGD accuracy at epsilon, learning curves."""

    pgd_accuracy: float
    history: History | None
    variant: Variant


@dataclass(frozen=True)
class ImprovementResults(Record):
    spec: str
    eps: float
    dtype: str
    models: list[ImprovementRow]


Made = tuple[nn.Module, History | None]  # a variant's model and its learning curves


RETRAIN_WARMUP = 1  # epochs of warm-up when the distilled student is trained robustly


def _certified(ctx: StageContext, role: str) -> ModelDir:
    """Stage 6's model ``role`` of its first teacher (``certification.teachers``)."""
    return ctx.load(StageName.CERTIFICATION, ctx.config.certification.teacher_kinds()[0].model(role))


def _logits(ctx: StageContext) -> Made:
    loaded = _certified(ctx, "student-robust")
    return loaded.model, loaded.metrics.get("history")


def _retrained(ctx: StageContext) -> Made:
    cert, section = ctx.config.certification, ctx.config.improvement
    model = _certified(ctx, "student-robust").model
    fit = train_robust(ctx, model, eps=cert.eps, method=cert.train_method, warmup_epochs=RETRAIN_WARMUP,
                       config=ctx.fit_config(section.training, epochs=section.retrain_epochs))
    return model, fit.history


def _scratch(ctx: StageContext) -> Made:
    cert = ctx.config.certification
    model = build_seeded(cert.student_spec, ctx.dataset, ctx.seed).to(ctx.device)
    fit = train_robust(ctx, model, eps=cert.eps, method=cert.train_method, warmup_epochs=cert.warmup_epochs,
                       config=ctx.fit_config(ctx.config.improvement.training))
    return model, fit.history


def _distilled(ctx: StageContext, method: DistillMethod) -> Made:
    model, fit = distill_student(_certified(ctx, "teacher-robust").model,
                                 ctx.config.certification.student_spec, ctx.dataset, method=method,
                                 config=ctx.fit_config(ctx.config.improvement.training), cache_dir=ctx.cache_dir,
                                 device=ctx.device)
    return model, fit.history


def _temperature(ctx: StageContext) -> Made:
    return _distilled(ctx, DistillMethod("temperature", temperature=ctx.config.improvement.temperature))


def _adversarial(ctx: StageContext) -> Made:
    section = ctx.config.improvement
    return _distilled(ctx, DistillMethod("adversarial", eps=section.adversarial_eps,
                                         attack_steps=section.adversarial_steps))


def _robust_cost(ctx: StageContext, costs: CostModel, epochs: int | None, warmup_epochs: int) -> float:
    cert = ctx.config.certification
    return costs.robust_training(cert.student_spec, ctx.config.improvement.training, cert.train_method, epochs=epochs,
                                 warmup_epochs=warmup_epochs)


def _distill_cost(ctx: StageContext, costs: CostModel, passes: int) -> float:
    return costs.training(ctx.config.certification.student_spec, ctx.config.improvement.training, factor=passes)


@dataclass(frozen=True)
class Recipe:
    """How a variant's model is made, and its estimated cost (seconds on one thread)."""

    make: Callable[[StageContext], Made]
    cost: Callable[[StageContext, CostModel], float]


RECIPES: dict[Variant, Recipe] = {
    Variant.LOGITS: Recipe(_logits, lambda ctx, costs: 0.0),  # the certification stage's student
    Variant.TEMPERATURE: Recipe(_temperature, lambda ctx, costs: _distill_cost(ctx, costs, 1)),
    Variant.RETRAINED: Recipe(_retrained, lambda ctx, costs: _robust_cost(
        ctx, costs, ctx.config.improvement.retrain_epochs, RETRAIN_WARMUP)),
    Variant.SCRATCH: Recipe(_scratch, lambda ctx, costs: _robust_cost(
        ctx, costs, None, ctx.config.certification.warmup_epochs)),
    Variant.ADVERSARIAL: Recipe(_adversarial, lambda ctx, costs: _distill_cost(
        ctx, costs, ctx.config.improvement.adversarial_steps + 1)),
}


def model_name(variant: Variant) -> str:
    return f"variant-{list(Variant).index(variant)}"


def train_variant(ctx: StageContext, *, variant: Variant) -> ModelRow:
    model, history = RECIPES[variant].make(ctx)
    return ctx.save(model_name(variant), model, spec=ctx.config.certification.student_spec, history=history)


def jobs(ctx: StageContext, costs: CostModel) -> list[Job]:
    cert = ctx.config.certification
    found = [Job(model_name(v), train_variant, ModelRow, {"variant": v}, cost=RECIPES[v].cost(ctx, costs),
                 outputs=(model_name(v),)) for v in Variant]
    found += [certify_job(ctx, costs, model_name(v), cert.student_spec, [0.0, cert.eps]) for v in Variant]
    return found


def collect(ctx: StageContext, results: JobResults) -> ImprovementResults:
    cert, section = ctx.config.certification, ctx.config.improvement
    rows = []
    for variant in Variant:
        row = results.get(f"certify-{model_name(variant)}", RobustnessRow)
        rows.append(row.extend(ImprovementRow, name=variant.label(section), pgd_accuracy=row.pgd.robust_accuracy[-1],
                               history=results.get(model_name(variant), ModelRow).history, variant=variant))
    return ImprovementResults(cert.student_spec, cert.eps, "float64", rows)


STAGE = Stage(StageName.IMPROVEMENT, "Improving the robust student", ("improvement",), jobs, collect,
              ImprovementResults)
