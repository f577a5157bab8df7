"""Stage 5: attacks on the teacher and the best student before and after pruning:
accuracy-against-epsilon curves for each attack (thesis figures 8.15-8.17).

Iterative attacks use the thesis' settings: ``steps`` iterations of step
``relative_step * eps`` (PGD from a seeded random start), swept with early stop.
"""

from __future__ import annotations

from typing import Any

from shallowcert.attacks import make_attack, plot_robust_accuracy, robust_accuracy
from shallowcert.study.context import StageContext
from shallowcert.study.stage import Stage


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
    for name in section["attacks"]:
        options = {} if name == "fgsm" else {"steps": section["steps"], "relative_step": section["relative_step"]}
        attack = make_attack(name, seed=ctx.seed, **options)
        curves = {label: robust_accuracy(model, x, y, attack, section["eps"]) for label, model in models.items()}
        plot_robust_accuracy({label: s.robust_accuracy for label, s in curves.items()}, section["eps"],
                             norm=attack.norm, title=f"{curves['teacher'].attack}: accuracy under attack",
                             path=ctx.out / f"{name}.png")
        rows += [{"attack": name, "model": label, "eps": s.eps, "robust_accuracy": s.robust_accuracy,
                  "clean_accuracy": s.clean_accuracy, "seconds": round(s.seconds, 2)} for label, s in curves.items()]
    return {"n": len(points), "steps": section["steps"], "relative_step": section["relative_step"], "curves": rows}


STAGE = Stage("attacks", "Attacks on teacher and students", ("attacks",), run)
