"""Stage 3: temperature distillation sweep for scnn2 widths — thesis tables 8.7/8.8 and
figures 8.11/8.12 (accuracy against temperature, logits matching as the reference).
"""

from __future__ import annotations

from typing import Any

from shallowcert.distill import DistillMethod, distill_student
from shallowcert.figures import new_figure, save_figure
from shallowcert.study.context import StageContext
from shallowcert.study.stage import Stage
from shallowcert.study.stages.teacher import model_name


def run(ctx: StageContext) -> dict[str, Any]:
    section = ctx.config["temperature"]
    teacher = ctx.load("teacher", "teacher").model
    config = ctx.fit_config(ctx.config["students"]["training"])
    transfer = section["transfer_set"]
    rows = []
    for width in section["scnn2"]:
        spec = f"scnn2:{width}"
        logits_student, fit = distill_student(teacher, spec, ctx.dataset, method=DistillMethod("logits"),
                                              config=config, transfer=transfer, cache_dir=ctx.cache_dir)
        rows.append(ctx.save(model_name("logits", spec), logits_student, spec=spec, method="logits",
                             transfer=transfer, temperature=None, fit=fit))
        for temperature in section["temperatures"]:
            student, fit = distill_student(teacher, spec, ctx.dataset,
                                           method=DistillMethod("temperature", temperature=temperature),
                                           config=config, transfer=transfer, cache_dir=ctx.cache_dir)
            rows.append(ctx.save(model_name(f"T{temperature:g}", spec), student, spec=spec, method="temperature",
                                 transfer=transfer, temperature=temperature, fit=fit))
    plot_accuracy_against_temperature(rows, ctx.out / "temperature.png")
    return {"students": rows, "transfer": transfer}


def plot_accuracy_against_temperature(rows: list[dict[str, Any]], path) -> None:
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


STAGE = Stage("temperature", "Temperature sweep (scnn2)", ("students", "temperature"), run)
