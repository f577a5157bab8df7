"""Stage 6: the certification study — thesis tables 8.19/8.20 and the certification-area figures.

The ReLU-only certification teacher is trained twice, normally (cross-entropy) and
robustly (convex outer polytope at epsilon, with warm-up); a shallow student is distilled
(logits) from each. All four are certified on the same test points: certified accuracy at
epsilon, per-point certified radii and their average, and PGD curves.

Jobs per seed: the two teachers; each student after its teacher; each certification after
its model.
"""

from __future__ import annotations

from typing import Any

from shallowcert.distill import DistillMethod, distill_student
from shallowcert.study.context import StageContext
from shallowcert.study.costs import CostModel
from shallowcert.study.jobs import Job
from shallowcert.study.robustness import certify_job, train_robust
from shallowcert.study.stage import JobResults, Stage
from shallowcert.training import build_seeded, train_classifier

MODELS = ("teacher-normal", "teacher-robust", "student-normal", "student-robust")


def train_normal_teacher(ctx: StageContext) -> dict[str, Any]:
    section = ctx.config["certification"]
    model, fit = train_classifier(section["teacher_spec"], ctx.dataset, ctx.fit_config(section["teacher_training"]),
                                  device=ctx.device)
    return ctx.save("teacher-normal", model, spec=section["teacher_spec"], fit=fit)


def train_robust_teacher(ctx: StageContext) -> dict[str, Any]:
    section = ctx.config["certification"]
    model = build_seeded(section["teacher_spec"], ctx.dataset, ctx.seed).to(ctx.device)
    fit = train_robust(ctx, model, eps=section["eps"], method=section["train_method"],
                       warmup_epochs=section["warmup_epochs"], config=ctx.fit_config(section["robust_training"]))
    return ctx.save("teacher-robust", model, spec=section["teacher_spec"], fit=fit)


def distill_from(ctx: StageContext, *, kind: str) -> dict[str, Any]:
    """The student distilled (logits) from the ``kind`` (normal or robust) teacher of this stage."""
    section = ctx.config["certification"]
    student, fit = distill_student(ctx.load(ctx.stage, f"teacher-{kind}").model, section["student_spec"], ctx.dataset,
                                 method=DistillMethod("logits"), config=ctx.fit_config(section["student_training"]),
                                 cache_dir=ctx.cache_dir, device=ctx.device)
    return ctx.save(f"student-{kind}", student, spec=section["student_spec"], fit=fit)


def jobs(ctx: StageContext, costs: CostModel) -> list[Job]:
    section = ctx.config["certification"]
    teacher, student = section["teacher_spec"], section["student_spec"]
    found = [Job("teacher-normal", train_normal_teacher, cost=costs.training(teacher, section["teacher_training"]),
                 outputs=("teacher-normal",)),
             Job("teacher-robust", train_robust_teacher, outputs=("teacher-robust",),
                 cost=costs.robust_training(teacher, section["robust_training"], section["train_method"]))]
    found += [Job(f"student-{kind}", distill_from, {"kind": kind}, outputs=(f"student-{kind}",),
                  cost=costs.training(student, section["student_training"]), after=(f"teacher-{kind}",))
              for kind in ("normal", "robust")]
    found += [certify_job(ctx, costs, name, teacher if name.startswith("teacher") else student, section["pgd_eps"])
              for name in MODELS]
    return found


def collect(ctx: StageContext, results: JobResults) -> dict[str, Any]:
    section = ctx.config["certification"]
    rows = [{**results[f"certify-{name}"], "history": results[name].get("history")} for name in MODELS]
    return {"eps": section["eps"], "method": section["method"], "dtype": "float64", "domain": [0.0, 1.0],
            "n": rows[0]["n"], "train_method": section["train_method"], "models": rows}


STAGE = Stage("certification", "Certification of normal and robust teachers and their students",
              ("certification", "attacks"), jobs, collect)
