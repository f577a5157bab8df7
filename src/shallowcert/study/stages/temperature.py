"""Stage 3: temperature distillation sweep for scnn2 widths — thesis tables 8.7/8.8 and
figures 8.11/8.12 (accuracy against temperature, logits matching as the reference).

Jobs per seed: the teacher's logits on the transfer set, then one student per width and
temperature (plus logits matching per width).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shallowcert.distill import DistillMethod, distill_student
from shallowcert.figures import new_figure, save_figure
from shallowcert.study.context import ModelRow, StageContext
from shallowcert.study.costs import CostModel
from shallowcert.study.jobs import Job
from shallowcert.study.record import Record
from shallowcert.study.stage import JobResults, Stage, StageName
from shallowcert.study.stages.distillation import logits_job
from shallowcert.study.stages.teacher import model_name

FIGURE = "temperature.png"


@dataclass(frozen=True)
class TemperatureConfig(Record):
    """The ``temperature`` section: scnn2 widths, the temperatures swept, the transfer set."""

    scnn2: list[str]
    temperatures: list[float]
    transfer_set: str

    def sweep(self) -> list[tuple[str, float | None]]:
        """(spec, temperature) of every student; temperature None: logits matching."""
        return [(f"scnn2:{width}", temperature) for width in self.scnn2
                for temperature in [None, *self.temperatures]]


@dataclass(frozen=True, kw_only=True)
class TemperatureRow(ModelRow):
    """A student distilled at ``temperature`` (teacher at T, student at 1), or by logits
    matching (``method`` logits, ``temperature`` None)."""

    method: str
    transfer: str
    temperature: float | None


@dataclass(frozen=True)
class TemperatureResults(Record):
    students: list[TemperatureRow]
    transfer: str
    figure: str


def student_name(spec: str, temperature: float | None) -> str:
    return model_name("logits" if temperature is None else f"T{temperature:g}", spec)


def distill_at(ctx: StageContext, *, spec: str, temperature: float | None) -> TemperatureRow:
    """Distil ``spec`` with temperature ``temperature`` (None: logits matching)."""
    transfer = ctx.config.temperature.transfer_set
    method = DistillMethod("logits") if temperature is None else DistillMethod("temperature", temperature=temperature)
    student, fit = distill_student(ctx.load(StageName.TEACHER, "teacher").model, spec, ctx.dataset, method=method,
                                   config=ctx.fit_config(ctx.config.students.training), transfer=transfer,
                                   cache_dir=ctx.cache_dir, device=ctx.device)
    return ctx.save(student_name(spec, temperature), student, spec=spec, fit=fit).extend(
        TemperatureRow, method=method.name, transfer=transfer, temperature=temperature)


def jobs(ctx: StageContext, costs: CostModel) -> list[Job]:
    transfer = ctx.config.temperature.transfer_set
    logits = logits_job(costs, ctx.config.teacher.spec, transfer)
    training = ctx.config.students.training
    return [logits] + [Job(student_name(spec, t), distill_at, TemperatureRow, {"spec": spec, "temperature": t},
                           cost=costs.training(spec, training, transfer=transfer),
                           outputs=(student_name(spec, t),), after=(logits.name,))
                       for spec, t in ctx.config.temperature.sweep()]


def collect(ctx: StageContext, results: JobResults) -> TemperatureResults:
    rows = [results.get(student_name(spec, t), TemperatureRow) for spec, t in ctx.config.temperature.sweep()]
    plot_accuracy_against_temperature(rows, ctx.out / FIGURE)
    return TemperatureResults(rows, ctx.config.temperature.transfer_set, FIGURE)


def plot_accuracy_against_temperature(rows: list[TemperatureRow], path: Path) -> None:
    fig, ax = new_figure()
    for spec in dict.fromkeys(r.spec for r in rows):
        sweep = sorted((r.temperature, r.test_accuracy) for r in rows
                       if r.spec == spec and r.temperature is not None)
        line, = ax.plot([t for t, _ in sweep], [a for _, a in sweep], marker="o", label=f"{spec} temperature")
        logits = next(r.test_accuracy for r in rows if r.spec == spec and r.temperature is None)
        ax.axhline(logits, linestyle="--", color=line.get_color(), label=f"{spec} logits")
    ax.set_xlabel("temperature T")
    ax.set_ylabel("test accuracy")
    ax.set_title("Figure 8.11: student accuracy against distillation temperature")
    ax.legend(fontsize=8)
    save_figure(fig, path)


STAGE = Stage(StageName.TEMPERATURE, "Temperature sweep (scnn2)", ("students", "temperature"), jobs, collect,
              TemperatureResults)
