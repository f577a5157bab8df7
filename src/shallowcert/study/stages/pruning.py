"""Stage 4: L1-norm filter pruning of the best convolutional student — thesis tables
8.9/8.10 and the per-layer L1-norm histograms (figures 8.13/8.14).

The best student is the distilled convolutional student (scnn1/scnn2, any method) with
the highest *validation* accuracy; the pruning search also uses validation only. One job
per seed.
"""

from __future__ import annotations

from typing import Any

from shallowcert.prune import plot_filter_norms, pruning_report, remove_filters, search_pruning
from shallowcert.study.context import StageContext
from shallowcert.study.costs import CostModel
from shallowcert.study.jobs import Job
from shallowcert.study.stage import Stage
from shallowcert.study.stages.teacher import student_specs


def best_conv_student(ctx: StageContext) -> tuple[str, str]:
    """(stage, name) of the distilled conv student with the best validation accuracy."""
    candidates = [("distillation", row) for row in ctx.results("distillation")["students"]]
    candidates += [("temperature", row) for row in ctx.results("temperature")["students"]]
    convs = [(stage, row) for stage, row in candidates if row["spec"].startswith(("scnn1", "scnn2"))]
    stage, row = max(convs, key=lambda c: c[1]["val_accuracy"])
    return stage, row["name"]


def prune_best_student(ctx: StageContext) -> dict[str, Any]:
    stage, name = best_conv_student(ctx)
    loaded = ctx.load(stage, name)
    search = search_pruning(loaded.model, ctx.dataset.val, input_shape=ctx.dataset.input_shape,
                            max_drop=ctx.config["pruning"]["max_drop"])
    pruned = remove_filters(loaded.model, search.plan, input_shape=ctx.dataset.input_shape)
    report = pruning_report(loaded.model, pruned, search.plan, ctx.dataset)
    saved = ctx.save("pruned", pruned, spec=loaded.spec, pruned_from=f"{stage}/{name}")
    figures = [p.name for p in plot_filter_norms(loaded.model, search.plan, ctx.out / "figures")]
    return {"student": {"stage": stage, "name": name, "spec": loaded.spec, **loaded.metrics},
            "search_evaluations": search.evaluations, "max_drop": ctx.config["pruning"]["max_drop"],
            **report, "figures": [f"figures/{name}" for name in figures],
            "pruned": {"name": "pruned", "predictions": saved["predictions"]}}


def jobs(ctx: StageContext, costs: CostModel) -> list[Job]:
    convs = [spec for family, spec in student_specs(ctx.config) if family != "snn"]
    largest = convs[-1] if convs else f"scnn2:{ctx.config['temperature']['scnn2'][-1]}"
    return [Job("prune", prune_best_student, cost=costs.pruning(largest), outputs=("pruned", "figures"))]


STAGE = Stage("pruning", "L1-norm filter pruning of the best student", ("pruning",), jobs,
              lambda ctx, results: results["prune"])
