"""Stage 5: attacks on the teacher and the best student before and after pruning:
accuracy-against-epsilon curves for each attack (thesis figures 8.15-8.17).
"""

from __future__ import annotations

from typing import Any

from shallowcert.attacks import BIM, FGSM, MIM, PGD, SweepResult, robust_accuracy
from shallowcert.attacks.base import IterativeAttack
from shallowcert.figures import new_figure, save_figure
from shallowcert.study.context import StageContext
from shallowcert.study.stage import Stage


def make_attack(name: str, *, steps: int, relative_step: float, seed: int) -> IterativeAttack:
    """The thesis' settings: ``steps`` iterations with step ``relative_step * eps``."""
    if name == "fgsm":
        return FGSM()
    if name == "pgd":
        return PGD(steps=steps, relative_step=relative_step, random_start=True, seed=seed)
    if name == "bim":
        return BIM(steps=steps, relative_step=relative_step)
    return MIM(steps=steps, relative_step=relative_step)


def plot_curves(curves: dict[str, SweepResult], title: str, path) -> None:
    fig, ax = new_figure()
    for label, sweep in curves.items():
        ax.plot(sweep.eps, sweep.robust_accuracy, marker="o", label=label)
    ax.set_xlabel("epsilon (L-inf, input units)")
    ax.set_ylabel("accuracy under attack")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(fontsize=8)
    save_figure(fig, path)


def run(ctx: StageContext) -> dict[str, Any]:
    section = ctx.config["attacks"]
    pruning = ctx.store.results("pruning")
    models = {
        "teacher": ctx.load("teacher", "teacher").model,
        "student": ctx.load(pruning["student"]["stage"], pruning["student"]["name"]).model,
        "pruned student": ctx.load("pruning", "pruned").model,
    }
    points = ctx.test_points(section["points"])
    x, y = points.floats(), points.labels
    rows = []
    for attack_name in section["attacks"]:
        attack = make_attack(attack_name, steps=section["steps"], relative_step=section["relative_step"],
                             seed=ctx.seed)
        curves = {label: robust_accuracy(model, x, y, attack, section["eps"]) for label, model in models.items()}
        plot_curves(curves, f"{attack_name.upper()}-{section['steps']}: accuracy under attack",
                    ctx.out / f"{attack_name}.png")
        rows += [{"attack": attack_name, "model": label, "eps": s.eps, "robust_accuracy": s.robust_accuracy,
                  "clean_accuracy": s.clean_accuracy, "seconds": round(s.seconds, 2)} for label, s in curves.items()]
    return {"n": len(points), "steps": section["steps"], "relative_step": section["relative_step"], "curves": rows}


STAGE = Stage("attacks", "Attacks on teacher and students", ("attacks",), run)
