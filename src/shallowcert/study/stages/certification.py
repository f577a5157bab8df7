"""Stage 6: the certification study — thesis tables 8.19/8.20 and the certification-area figures.

The ReLU-only certification teacher is trained twice, normally (cross-entropy) and
robustly (convex outer polytope at epsilon, with warm-up); a shallow student is distilled
(logits) from each. All four are certified on the same test points: certified accuracy at
epsilon, per-point certified radii and their average, and PGD curves.
"""

from __future__ import annotations

from typing import Any

from shallowcert.distill import DistillMethod, distill_student
from shallowcert.study.context import StageContext
from shallowcert.study.robustness import robustness_row, train_robust
from shallowcert.study.stage import Stage
from shallowcert.training import build_seeded, train_classifier


def run(ctx: StageContext) -> dict[str, Any]:
    section = ctx.config["certification"]
    teacher_spec, student_spec = section["teacher_spec"], section["student_spec"]
    normal, normal_fit = train_classifier(teacher_spec, ctx.dataset, ctx.fit_config(section["teacher_training"]))
    robust = build_seeded(teacher_spec, ctx.dataset, ctx.seed)
    robust_fit = train_robust(ctx, robust, eps=section["eps"], method=section["train_method"],
                              warmup_epochs=section["warmup_epochs"], config=ctx.fit_config(section["robust_training"]))
    models = {"teacher-normal": (teacher_spec, normal, normal_fit),
              "teacher-robust": (teacher_spec, robust, robust_fit)}
    for kind, teacher in (("normal", normal), ("robust", robust)):
        student, fit = distill_student(teacher, student_spec, ctx.dataset, method=DistillMethod("logits"),
                                       config=ctx.fit_config(section["student_training"]), cache_dir=ctx.cache_dir)
        models[f"student-{kind}"] = (student_spec, student, fit)
    rows = []
    for name, (spec, model, fit) in models.items():
        ctx.save(name, model, spec=spec, fit=fit)
        rows.append({**robustness_row(ctx, model, name=name, spec=spec, pgd_eps=section["pgd_eps"]),
                     "history": fit.history})
    return {"eps": section["eps"], "method": section["method"], "dtype": "float64", "domain": [0.0, 1.0],
            "n": rows[0]["n"], "train_method": section["train_method"], "models": rows}


STAGE = Stage("certification", "Certification of normal and robust teachers and their students",
              ("certification", "attacks"), run)
