"""Stage 5: attacks on the teacher and the best student before and after pruning:
accuracy-against-epsilon curves for each attack (thesis figures 8.15-8.17).

Iterative attacks use the thesis' settings: ``steps`` iterations of step
``relative_step * eps`` (PGD from a seeded random start), swept with early stop. One job
per model runs every attack on it; the figures are drawn when the seed's jobs are done.
"""

from __future__ import annotations

from dataclasses import dataclass

from shallowcert.attacks import IterativeAttack, make_attack, plot_robust_accuracy, robust_accuracy
from shallowcert.study.context import StageContext
from shallowcert.study.costs import CostModel
from shallowcert.study.jobs import Job
from shallowcert.study.record import Record
from shallowcert.study.stage import JobResults, Stage, StageName
from shallowcert.study.stages.pruning import PruningResults

MODELS = ("teacher", "student", "pruned student")


@dataclass(frozen=True)
class AttacksConfig(Record):
    """The ``attacks`` section: attacks, the epsilon grid (input units), iterations, step
    size as a fraction of epsilon, and how many test points (the first ones)."""

    attacks: list[str]
    eps: list[float]
    steps: int
    relative_step: float
    points: int


@dataclass(frozen=True)
class AttackCurve(Record):
    """Accuracy (fraction) of one model under one attack along the epsilon grid."""

    attack: str
    model: str
    eps: list[float]
    robust_accuracy: list[float]
    clean_accuracy: float
    seconds: float


@dataclass(frozen=True)
class AttackedModel(Record):
    """Every configured attack on one model; ``titles``: attack name -> what was run."""

    n: int
    curves: list[AttackCurve]
    titles: dict[str, str]


@dataclass(frozen=True)
class AttacksResults(Record):
    n: int
    steps: int
    relative_step: float
    curves: list[AttackCurve]
    figures: list[str]


def _attack(ctx: StageContext, name: str) -> IterativeAttack:
    section = ctx.config.attacks
    if name == "fgsm":
        return make_attack(name, seed=ctx.seed)
    return make_attack(name, seed=ctx.seed, steps=section.steps, relative_step=section.relative_step)


def _model_location(ctx: StageContext, label: str) -> tuple[StageName, str]:
    if label == "teacher":
        return StageName.TEACHER, "teacher"
    if label == "pruned student":
        return StageName.PRUNING, "pruned"
    student = ctx.results(StageName.PRUNING, PruningResults).student
    return student.stage, student.name


def job_name(label: str) -> str:
    return f"attack-{label.replace(' ', '-')}"


def attack_model(ctx: StageContext, *, label: str) -> AttackedModel:
    """Every configured attack on one model, swept over the epsilons."""
    section = ctx.config.attacks
    model = ctx.load(*_model_location(ctx, label)).model
    points = ctx.test_points(section.points)
    x, y = points.floats(), points.labels
    curves, titles = [], {}
    for name in section.attacks:
        sweep = robust_accuracy(model, x, y, _attack(ctx, name), section.eps)
        titles[name] = sweep.attack
        curves.append(AttackCurve(name, label, sweep.eps, sweep.robust_accuracy, sweep.clean_accuracy,
                                  round(sweep.seconds, 2)))
    return AttackedModel(len(points), curves, titles)


def jobs(ctx: StageContext, costs: CostModel) -> list[Job]:
    section, teacher = ctx.config.attacks, ctx.config.teacher.spec
    convs = ctx.config.students.conv_specs() or [teacher]
    specs = {"teacher": teacher, "student": convs[-1], "pruned student": convs[-1]}
    steps = sum(1 if name == "fgsm" else section.steps for name in section.attacks)
    return [Job(job_name(label), attack_model, AttackedModel, {"label": label},
                cost=costs.attack(specs[label], points=section.points, steps=steps, epsilons=len(section.eps)))
            for label in MODELS]


def collect(ctx: StageContext, results: JobResults) -> AttacksResults:
    section = ctx.config.attacks
    attacked = {label: results.get(job_name(label), AttackedModel) for label in MODELS}
    rows = [curve for label in MODELS for curve in attacked[label].curves]
    figures = []
    for name in section.attacks:
        plot_robust_accuracy({r.model: r.robust_accuracy for r in rows if r.attack == name}, section.eps,
                             norm=_attack(ctx, name).norm,
                             title=f"{attacked['teacher'].titles[name]}: accuracy under attack",
                             path=ctx.out / f"{name}.png")
        figures.append(f"{name}.png")
    rows = [r for name in section.attacks for r in rows if r.attack == name]
    return AttacksResults(attacked["teacher"].n, section.steps, section.relative_step, rows, figures)


STAGE = Stage(StageName.ATTACKS, "Attacks on teacher and students", ("attacks",), jobs, collect, AttacksResults)
