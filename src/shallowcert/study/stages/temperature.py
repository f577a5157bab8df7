"""Stage 3: temperature distillation sweep for scnn2 widths — thesis tables 8.7/8.8 and
figures 8.11/8.12 (accuracy against temperature, logits matching as the reference).

Jobs per seed: the teacher's logits on the transfer set, then one student per width and
temperature (plus logits matching per width).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shallowcert.distill import DistillMethod, distill_student
from shallowcert.figures import new_figure, save_figure
from shallowcert.study.context import StageContext
from shallowcert.study.costs import CostModel
from shallowcert.study.jobs import Job
from shallowcert.study.stage import JobResults, Stage
from shallowcert.study.stages.distillation import logits_job
from shallowcert.study.stages.teacher import model_name

FIGURE = "temperature.png"


def student_name(spec: str, temperature: float | None) -> str:
    return model_name("logits" if temperature is None else f"T{temperature:g}", spec)


def distill_at(ctx: StageContext, *, spec: str, temperature: float | None) -> dict[str, Any]:
    """Distil ``spec`` with temperature ``temperature`` (None: logits matching)."""
    transfer = ctx.config["temperature"]["transfer_set"]
    method = DistillMethod("logits") if temperature is None else DistillMethod("temperature", temperature=temperature)
    student, fit = distill_student(ctx.load("teacher", "teacher").model, spec, ctx.dataset, method=method,
                                 config=ctx.fit_config(ctx.config["students"]["training"]), transfer=transfer,
                                 cache_dir=ctx.cache_dir, device=ctx.device)
    return ctx.save(student_name(spec, temperature), student, spec=spec, method=method.name, transfer=transfer,
                    temperature=temperature, fit=fit)


def _sweep(config: dict[str, Any]) -> list[tuple[str, float | None]]:
    section = config["temperature"]
    return [(f"scnn2:{width}", temperature) for width in section["scnn2"]
            for temperature in [None, *section["temperatures"]]]


def jobs(ctx: StageContext, costs: CostModel) -> list[Job]:
    transfer = ctx.config["temperature"]["transfer_set"]
    logits = logits_job(costs, ctx.config["teacher"]["spec"], transfer)
    training = ctx.config["students"]["training"]
    return [logits] + [Job(student_name(spec, t), distill_at, {"spec": spec, "temperature": t},
                           cost=costs.training(spec, training, transfer=transfer),
                           outputs=(student_name(spec, t),), after=(logits.name,)) for spec, t in _sweep(ctx.config)]


def collect(ctx: StageContext, results: JobResults) -> dict[str, Any]:
    rows = [results[student_name(spec, t)] for spec, t in _sweep(ctx.config)]
    plot_accuracy_against_temperature(rows, ctx.out / FIGURE)
    return {"students": rows, "transfer": ctx.config["temperature"]["transfer_set"], "figure": FIGURE}


def plot_accuracy_against_temperature(rows: list[dict[str, Any]], path: Path) -> None:
    fig, ax = new_figure()
    for spec in dict.fromkeys(r["spec"] for r in rows):
        sweep = sorted((r["temperature"], r["test_accuracy"]) for r in rows
                       if r["spec"] == spec and r["method"] == "temperature")
        line, = ax.plot([t for t, _ in sweep], [a for _, a in sweep], marker="o", label=f"{spec} temperature")
        logits = next(r["test_accuracy"] for r in rows if r["spec"] == spec and r["method"] == "logits")
        ax.axhline(logits, linestyle="--", color=line.get_color(), label=f"{spec} logits")
    ax.set_xlabel("temperature T")
    ax.set_ylabel("test accuracy")
    ax.set_title("Figure 8.11: student accuracy against distillation temperature")
    ax.legend(fontsize=8)
    save_figure(fig, path)


STAGE = Stage("temperature", "Temperature sweep (scnn2)", ("students", "temperature"), jobs, collect)
