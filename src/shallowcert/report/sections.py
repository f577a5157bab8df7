"""One function per section of the report, each reading one stage's results.

Labels follow the thesis (chapter 8) so that a reader can put the two side by side.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from shallowcert.report.document import Document, Figure, Heading, Paragraph, Table, Code, Claim

Results = dict[str, dict[str, Any]]
FAMILY_TABLES = {"snn": "Table 8.2", "scnn1": "Table 8.3", "scnn2": "Table 8.4"}


def seed_dir(run_dir: Path, stage: str) -> Path:
    """The directory of the first seed's files of ``stage`` (the seed whose tables are shown)."""
    seeds = json.loads((run_dir / stage / "results.json").read_text())["seeds"]
    return run_dir / stage / f"seed-{seeds[0]}"


def _not_run(doc: Document, stage: str) -> None:
    doc.add(Paragraph(f"Stage '{stage}' has not been run (or is incomplete) in this run directory."))


def teacher_section(doc: Document, results: Results, run_dir: Path) -> None:
    doc.add(Heading("1. Teacher and hard-label controls"))
    if "teacher" not in results:
        return _not_run(doc, "teacher")
    r = results["teacher"]
    t = r["teacher"]
    rows = [["teacher", t["spec"], t["params"], t["macs"], t["val_accuracy"], t["test_accuracy"]]]
    rows += [[f"control {c['family']}", c["spec"], c["params"], c["macs"], c["val_accuracy"], c["test_accuracy"]]
             for c in r["controls"]]
    doc.add(Table("Table 8.1", "Teacher and students trained on hard labels (cross-entropy, early stopping on "
                  "validation).", ["model", "spec", "params", "MACs", "val acc", "test acc"], rows))


def distillation_section(doc: Document, results: Results, run_dir: Path) -> None:
    doc.add(Heading("2. Logits distillation over families and widths"))
    if "distillation" not in results:
        return _not_run(doc, "distillation")
    rows = results["distillation"]["students"]
    transfers = list(dict.fromkeys(r["transfer"] for r in rows))
    names = {"train": "A (train split)", "extra": "B (transfer set)"}
    for family, label in FAMILY_TABLES.items():
        specs = list(dict.fromkeys(r["spec"] for r in rows if r["family"] == family))
        if not specs:
            continue
        table_rows = []
        for spec in specs:
            by_transfer = {r["transfer"]: r for r in rows if r["spec"] == spec}
            first = next(iter(by_transfer.values()))
            table_rows.append([spec, first["params"], first["control_test_accuracy"]]
                              + [by_transfer[t]["test_accuracy"] if t in by_transfer else None for t in transfers])
        doc.add(Table(label, f"{family} students: test accuracy of the hard-label control and of logits "
                      "distillation on each transfer set.",
                      ["student", "params", "control"] + [f"distilled {names[t]}" for t in transfers], table_rows))
    gains = [r["test_accuracy"] - r["control_test_accuracy"] for r in rows]
    doc.add(Table("Table 8.5", "Summary: accuracy gain of distillation over the control, per transfer set.",
                  ["transfer set", "students", "mean gain", "students improved"],
                  [[names[t], sum(1 for r in rows if r["transfer"] == t),
                    sum(g for g, r in zip(gains, rows) if r["transfer"] == t)
                    / max(1, sum(1 for r in rows if r["transfer"] == t)),
                    sum(1 for g, r in zip(gains, rows) if r["transfer"] == t and g > 0)] for t in transfers]))


def temperature_section(doc: Document, results: Results, run_dir: Path) -> None:
    doc.add(Heading("3. Temperature sweep"))
    if "temperature" not in results:
        return _not_run(doc, "temperature")
    r = results["temperature"]
    rows = [[s["spec"], s["method"], s["temperature"], s["val_accuracy"], s["test_accuracy"]] for s in r["students"]]
    doc.add(Table("Table 8.7", f"scnn2 students distilled with temperature T (teacher at T, student at 1) and with "
                  f"logits matching, transfer set '{r['transfer']}'.",
                  ["student", "method", "T", "val acc", "test acc"], rows))
    doc.add(Figure("Figure 8.11", "Test accuracy against temperature; dashed: logits matching.",
                   seed_dir(run_dir, "temperature") / r["figure"]))


def pruning_section(doc: Document, results: Results, run_dir: Path) -> None:
    doc.add(Heading("4. Pruning the best student"))
    if "pruning" not in results:
        return _not_run(doc, "pruning")
    p = results["pruning"]
    doc.add(Paragraph(f"Best convolutional student by validation accuracy: {p['student']['spec']} "
                      f"({p['student']['stage']}/{p['student']['name']}). Largest L1-norm filter pruning with "
                      f"validation drop <= {p['max_drop']} ({p['search_evaluations']} validation evaluations)."))
    doc.add(Table("Table 8.9", "Size and accuracy before and after pruning (MACs per input).",
                  ["", "params", "MACs", "val acc", "test acc"],
                  [["before", p["params_before"], p["flops_before"], p["val_accuracy_before"], p["test_accuracy_before"]],
                   ["after", p["params_after"], p["flops_after"], p["val_accuracy_after"], p["test_accuracy_after"]]]))
    doc.add(Table("Table 8.10", "Filters per convolutional layer.", ["layer", "filters before", "filters kept"],
                  [[layer["layer"], layer["filters_before"], layer["filters_kept"]] for layer in p["layers"]]))
    for i, name in enumerate(p["figures"]):
        doc.add(Figure(f"Figure 8.{13 + i}", "L1 norms of the filters of one convolutional layer (red: removed).",
                       seed_dir(run_dir, "pruning") / name))


def attacks_section(doc: Document, results: Results, run_dir: Path) -> None:
    doc.add(Heading("5. Attacks: teacher against students"))
    if "attacks" not in results:
        return _not_run(doc, "attacks")
    r = results["attacks"]
    eps = r["curves"][0]["eps"]
    for i, attack in enumerate(dict.fromkeys(c["attack"] for c in r["curves"])):
        curves = [c for c in r["curves"] if c["attack"] == attack]
        doc.add(Table(f"Table 8.{11 + i}", f"{attack.upper()} ({r['steps']} steps, step {r['relative_step']}·ε): "
                      f"accuracy under attack on {r['n']} test points.",
                      ["model", "clean"] + [f"ε={e:g}" for e in eps],
                      [[c["model"], c["clean_accuracy"]] + c["robust_accuracy"] for c in curves]))
        doc.add(Figure(f"Figure 8.{15 + i}", f"{attack.upper()}: accuracy against ε.", seed_dir(run_dir, "attacks") / f"{attack}.png"))


def _cert_rows(models: list[dict[str, Any]]) -> list[list[Any]]:
    return [[m["name"], m["spec"], m["clean_accuracy"], m["certified_accuracy"], m["robust_error_bound"],
             m["mean_radius"], m["mean_true_label_radius"]] for m in models]


CERT_HEADERS = ["model", "spec", "clean acc", "certified acc at ε", "robust error bound", "average radius",
                "average radius, true label"]


def certification_section(doc: Document, results: Results, run_dir: Path) -> None:
    doc.add(Heading("6. Certification: teachers and their students"))
    if "certification" not in results:
        return _not_run(doc, "certification")
    c = results["certification"]
    doc.add(Paragraph(f"Certificates by the '{c['method']}' bound in {c['dtype']} on {c['n']} test points; "
                      f"input set: L∞ ball of radius ε={c['eps']:g} "
                      f"{'intersected with the data domain [0, 1]' if c['domain'] else 'without domain clipping'}. "
                      "Radii are the largest ε at which the certificate was computed and held for the predicted "
                      "class (the thesis' certification area); the last column counts misclassified points as "
                      "radius 0."))
    normal = [m for m in c["models"] if m["name"].endswith("normal")]
    robust = [m for m in c["models"] if m["name"].endswith("robust")]
    doc.add(Table("Table 8.19", "Normally trained certification teacher and its distilled student.", CERT_HEADERS,
                  _cert_rows(normal)))
    doc.add(Table("Table 8.20", f"Robustly trained teacher (Wong & Kolter robust loss with "
                  f"{c['train_method']} bounds, ε={c['eps']:g}) and its distilled student.", CERT_HEADERS, _cert_rows(robust)))
    for i, m in enumerate(c["models"]):
        doc.add(Figure(f"Figure 8.{19 + i}", f"Certification area of {m['name']}: radii sorted, coloured by the "
                       "running accuracy.", seed_dir(run_dir, "certification") / m["figure"]))
    eps = c["models"][0]["pgd"]["eps"]
    doc.add(Table("Table 8.21", "PGD accuracy of the certification models.", ["model"] + [f"ε={e:g}" for e in eps],
                  [[m["name"]] + m["pgd"]["robust_accuracy"] for m in c["models"]]))


def improvement_section(doc: Document, results: Results, run_dir: Path) -> None:
    doc.add(Heading("7. Improving the robust student"))
    if "improvement" not in results:
        return _not_run(doc, "improvement")
    r = results["improvement"]
    doc.add(Table("Table 8.22", f"Ways to a robust shallow student ({r['spec']}), certified at ε={r['eps']:g} "
                  f"({r['dtype']}).", ["variant", "clean acc", "PGD acc at ε", "certified acc", "robust error bound",
                                        "average radius", "average radius, true label"],
                  [[m["name"], m["clean_accuracy"], m["pgd_accuracy"], m["certified_accuracy"],
                    m["robust_error_bound"], m["mean_radius"], m["mean_true_label_radius"]] for m in r["models"]]))


def claims_section(doc: Document, claims: list[Claim]) -> None:
    doc.add(Heading("Claims of the study, checked on this run"))
    words = {True: "holds", False: "does not hold", None: "undecided"}
    for i, claim in enumerate(claims, 1):
        doc.add(Paragraph(f"{i}. {claim.statement} — **{words[claim.holds]}**. {claim.evidence}"))


def run_facts_section(doc: Document, run: dict[str, Any] | None) -> None:
    doc.add(Heading("Run facts"))
    if run is None:
        return doc.add(Paragraph("run.json is missing: the run has not finished."))
    env = run["environment"]
    seeds = run["config"]["seeds"]
    doc.add(Paragraph(f"Seeds {', '.join(map(str, seeds))} (tables show seed {seeds[0]}); "
                      f"shallowcert {env['shallowcert']}, Python {env['python']}, "
                      f"torch {env['torch']}, numpy {env['numpy']}; {env['platform']}, {env['cpu_count']} CPUs "
                      f"({env['torch_threads']} torch threads). Wall time of this invocation: {run['wall_seconds']:.0f} s."))
    doc.add(Table("Table R.1", "Time per stage: the sum of its jobs' seconds over every seed (reused jobs keep the time of the run that built them).",
                  ["stage", "title", "seconds", "reused"],
                  [[name, s["title"], s["seconds"], s["reused"]] for name, s in run["stages"].items()]))
    doc.add(Code(yaml.safe_dump(run["config"], sort_keys=False)))


SECTIONS = (teacher_section, distillation_section, temperature_section, pruning_section, attacks_section,
            certification_section, improvement_section)
