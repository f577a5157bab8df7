"""Stage 5: attacks on the teacher and the best student before and after pruning:
accuracy-against-epsilon curves for each attack (thesis figures 8.15-8.17).

Iterative attacks use the thesis' settings: ``steps`` iterations of step
``relative_step * eps`` (PGD from a seeded random start), swept with early stop. One job
per model runs every attack on it; the figures are drawn when the seed's jobs are done.
"""

from __future__ import annotations

from typing import Any

from shallowcert.attacks import make_attack, plot_robust_accuracy, robust_accuracy
from shallowcert.study.context import StageContext
from shallowcert.study.costs import CostModel
from shallowcert.study.jobs import Job
from shallowcert.study.stage import JobResults, Stage
from shallowcert.study.stages.teacher import student_specs

MODELS = ("teacher", "student", "pruned student")


def _attack(ctx: StageContext, name: str):  # noqa: ANN202 (make_attack's attack)
    section = ctx.config["attacks"]
    options = {} if name == "fgsm" else {"steps": section["steps"], "relative_step": section["relative_step"]}
    return make_attack(name, seed=ctx.seed, **options)


def _model_location(ctx: StageContext, label: str) -> tuple[str, str]:
    if label == "teacher":
        return "teacher", "teacher"
    if label == "pruned student":
        return "pruning", "pruned"
    student = ctx.results("pruning")["student"]
    return student["stage"], student["name"]


def attack_model(ctx: StageContext, *, label: str) -> dict[str, Any]:
    """Every configured attack on one model, swept over the epsilons."""
    section = ctx.config["attacks"]
    model = ctx.load(*_model_location(ctx, label)).model
    points = ctx.test_points(section["points"])
    x, y = points.floats(), points.labels
    curves, titles = [], {}
    for name in section["attacks"]:
        sweep = robust_accuracy(model, x, y, _attack(ctx, name), section["eps"])
        titles[name] = sweep.attack
        curves.append({"attack": name, "model": label, "eps": sweep.eps, "robust_accuracy": sweep.robust_accuracy,
                       "clean_accuracy": sweep.clean_accuracy, "seconds": round(sweep.seconds, 2)})
    return {"n": len(points), "curves": curves, "titles": titles}


def jobs(ctx: StageContext, costs: CostModel) -> list[Job]:
    section = ctx.config["attacks"]
    convs = [spec for family, spec in student_specs(ctx.config) if family != "snn"] or [ctx.config["teacher"]["spec"]]
    specs = {"teacher": ctx.config["teacher"]["spec"], "student": convs[-1], "pruned student": convs[-1]}
    steps = sum(1 if name == "fgsm" else section["steps"] for name in section["attacks"])
    return [Job(f"attack-{label.replace(' ', '-')}", attack_model, {"label": label},
                cost=costs.attack(specs[label], points=section["points"], steps=steps, epsilons=len(section["eps"])))
            for label in MODELS]


def collect(ctx: StageContext, results: JobResults) -> dict[str, Any]:
    section = ctx.config["attacks"]
    rows = [curve for label in MODELS for curve in results[f"attack-{label.replace(' ', '-')}"]["curves"]]
    figures = []
    for name in section["attacks"]:
        plot_robust_accuracy({r["model"]: r["robust_accuracy"] for r in rows if r["attack"] == name}, section["eps"],
                             norm=_attack(ctx, name).norm,
                             title=f"{results['attack-teacher']['titles'][name]}: accuracy under attack",
                             path=ctx.out / f"{name}.png")
        figures.append(f"{name}.png")
    rows = [r for name in section["attacks"] for r in rows if r["attack"] == name]
    return {"n": results["attack-teacher"]["n"], "steps": section["steps"], "relative_step": section["relative_step"],
            "curves": rows, "figures": figures}


STAGE = Stage("attacks", "Attacks on teacher and students", ("attacks",), jobs, collect)
