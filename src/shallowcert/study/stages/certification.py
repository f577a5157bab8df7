"""Stage 6: the certification study — thesis tables 8.19/8.20 and the certification-area figures.

The ReLU-only certification teacher is trained twice, normally (cross-entropy) and
robustly (convex outer polytope at epsilon, with warm-up); a shallow student is distilled
(logits) from each. All four are certified on the same test points: certified accuracy at
epsilon, per-point certified radii and their average, and PGD curves. On the first
``exact_points`` of those points the complete verifier also brackets each model's exact
robust radius (:mod:`shallowcert.study.exact_gap`), so the report can show how much radius
the certificate gives away; the teachers' points often stay unsettled within
``exact_time_limit``, and are reported as such.

Jobs per seed: the two teachers; each student after its teacher; each certification after
its model; each exact-radius job (``exact-<model>``, none when ``exact_points`` is 0) after
its model.

Results per seed: ``models`` (one robustness row per model, see
:mod:`shallowcert.study.robustness`) and ``exact`` (``None`` without exact radii, else
``points``, ``time_limit``, ``rtol`` and one summary row per model naming its
``<model>-exact.json``).
"""

from __future__ import annotations

from typing import Any

from shallowcert.distill import DistillMethod, distill_student
from shallowcert.study.context import StageContext
from shallowcert.study.costs import CostModel
from shallowcert.study.exact_gap import exact_job, exact_points
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
    if exact_points(ctx.config):
        found += [exact_job(ctx, costs, name) for name in MODELS]
    return found


def collect(ctx: StageContext, results: JobResults) -> dict[str, Any]:
    section = ctx.config["certification"]
    rows = [{**results[f"certify-{name}"], "history": results[name].get("history")} for name in MODELS]
    exact = ({"points": exact_points(ctx.config), "time_limit": section["exact_time_limit"],
              "rtol": section["radius_rtol"], "models": [results[f"exact-{name}"] for name in MODELS]}
             if exact_points(ctx.config) else None)
    return {"eps": section["eps"], "method": section["method"], "dtype": "float64", "domain": [0.0, 1.0],
            "n": rows[0]["n"], "train_method": section["train_method"], "models": rows, "exact": exact}


STAGE = Stage("certification", "Certification of normal and robust teachers and their students",
              ("certification", "attacks"), jobs, collect)
