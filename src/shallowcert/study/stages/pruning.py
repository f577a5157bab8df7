"""Stage 4: L1-norm filter pruning of the best convolutional student — thesis tables
8.9/8.10 and the per-layer L1-norm histograms (figures 8.13/8.14).

The best student is the distilled convolutional student (scnn1/scnn2, any method) with
the highest *validation* accuracy; the pruning search also uses validation only. One job
per seed.
"""

from __future__ import annotations

from dataclasses import dataclass

from shallowcert.prune import plot_filter_norms, pruning_report, remove_filters, search_pruning
from shallowcert.study.context import ModelRow, StageContext
from shallowcert.study.costs import CostModel
from shallowcert.study.jobs import Job
from shallowcert.study.record import Record
from shallowcert.study.stage import JobResults, Stage, StageName
from shallowcert.study.stages.distillation import DistillationResults, DistilledRow
from shallowcert.study.stages.temperature import TemperatureResults, TemperatureRow


@dataclass(frozen=True)
class PruningConfig(Record):
    """The ``pruning`` section."""

    max_drop: float  # largest validation accuracy drop allowed (fraction)


@dataclass(frozen=True)
class PrunedLayer(Record):
    """One convolutional layer: its index in the model, filters before and kept, those removed."""

    layer: int
    filters_before: int
    filters_kept: int
    removed: list[int]


@dataclass(frozen=True)
class PruningReport(Record):
    """Size (parameters; ``flops``: multiply-accumulates per input) and accuracies (fractions)
    before and after pruning (:func:`shallowcert.prune.pruning_report`)."""

    params_before: int
    params_after: int
    params_removed_fraction: float
    flops_before: int
    flops_after: int
    flops_removed_fraction: float
    val_accuracy_before: float
    val_accuracy_after: float
    test_accuracy_before: float
    test_accuracy_after: float
    layers: list[PrunedLayer]


@dataclass(frozen=True, kw_only=True)
class SourceStudent(ModelRow):
    """The student that was pruned: its distillation method and transfer set, and the stage
    that trained it."""

    method: str
    transfer: str
    stage: StageName


@dataclass(frozen=True)
class PrunedModel(Record):
    name: str
    predictions: str  # path of its per-point test predictions


@dataclass(frozen=True, kw_only=True)
class PruningResults(PruningReport):
    student: SourceStudent
    search_evaluations: int
    max_drop: float
    figures: list[str]
    pruned: PrunedModel


def best_conv_student(ctx: StageContext) -> SourceStudent:
    """The distilled conv student with the best validation accuracy."""
    candidates: list[tuple[StageName, DistilledRow | TemperatureRow]] = [
        (StageName.DISTILLATION, row) for row in ctx.results(StageName.DISTILLATION, DistillationResults).students]
    candidates += [(StageName.TEMPERATURE, row)
                   for row in ctx.results(StageName.TEMPERATURE, TemperatureResults).students]
    convs = [(stage, row) for stage, row in candidates if row.spec.startswith(("scnn1", "scnn2"))]
    stage, row = max(convs, key=lambda c: c[1].val_accuracy)
    return row.extend(SourceStudent, stage=stage)


def prune_best_student(ctx: StageContext) -> PruningResults:
    student = best_conv_student(ctx)
    loaded = ctx.load(student.stage, student.name)
    max_drop = ctx.config.pruning.max_drop
    search = search_pruning(loaded.model, ctx.dataset.val, input_shape=ctx.dataset.input_shape, max_drop=max_drop)
    pruned = remove_filters(loaded.model, search.plan, input_shape=ctx.dataset.input_shape)
    report = PruningReport.from_json(pruning_report(loaded.model, pruned, search.plan, ctx.dataset))
    saved = ctx.save("pruned", pruned, spec=loaded.spec)
    figures = [p.name for p in plot_filter_norms(loaded.model, search.plan, ctx.out / "figures")]
    return report.extend(PruningResults, student=student, search_evaluations=search.evaluations, max_drop=max_drop,
                         figures=[f"figures/{name}" for name in figures],
                         pruned=PrunedModel(saved.name, saved.predictions))


def jobs(ctx: StageContext, costs: CostModel) -> list[Job]:
    convs = ctx.config.students.conv_specs()
    largest = convs[-1] if convs else f"scnn2:{ctx.config.temperature.scnn2[-1]}"
    return [Job("prune", prune_best_student, PruningResults, cost=costs.pruning(largest),
                outputs=("pruned", "figures"))]


def collect(ctx: StageContext, results: JobResults) -> PruningResults:
    return results.get("prune", PruningResults)


STAGE = Stage(StageName.PRUNING, "L1-norm filter pruning of the best student", ("pruning",), jobs, collect,
              PruningResults)
