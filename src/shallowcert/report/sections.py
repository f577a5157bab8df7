"""One function per section of the report, each reading one stage's result records over seeds.

Labels follow the thesis (chapter 8) so that a reader can put the two side by side. Every
table shows mean ± sample standard deviation over the run's seeds (plain numbers for one
seed, see :mod:`shallowcert.report.aggregate`); figures written by a stage are the first
seed's; the learning-curve figures (Figures L.*) and the certified-against-exact radius
figure (Figure E.1, :mod:`shallowcert.report.exact_gap`) are drawn here, all seeds in one figure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence, TypeVar

import yaml

from shallowcert.errors import UserError
from shallowcert.report.aggregate import Rows, seed_table
from shallowcert.report.curves import HasHistory, plot_learning_curves, stage_curves
from shallowcert.report.document import Claim, Code, Document, Figure, Heading, Paragraph, Table
from shallowcert.report.exact_gap import HEADERS as GAP_HEADERS
from shallowcert.report.exact_gap import ExactPoints, gap_row, plot_exact_gap, shown_models
from shallowcert.report.areas import plot_area_pairs
from shallowcert.report.results import RunResults, StageResults, radii_columns
from shallowcert.report.stats import signed
from shallowcert.study.record import Record
from shallowcert.study.runner import RunFacts
from shallowcert.study.stage import StageName
from shallowcert.study.stages.attacks import AttacksResults
from shallowcert.study.stages.certification import CertificationResults, CertifiedRow, ExactResults
from shallowcert.study.stages.distillation import DistillationResults
from shallowcert.study.stages.teacher import TeacherResults

T = TypeVar("T", bound=Record)
Row = TypeVar("Row", bound=HasHistory)
FAMILY_TABLES = {"snn": "Table 8.2", "scnn1": "Table 8.3", "scnn2": "Table 8.4"}
CURVE_FIGURES = {"teacher": "Figure L.1", "distillation": "Figure L.2", "temperature": "Figure L.3",
                 "certification": "Figure L.4", "improvement": "Figure L.5"}


def _open(doc: Document, heading: str, stage: StageResults[T] | None, name: StageName) -> StageResults[T] | None:
    """Start a section: its heading, and a note when stage ``name`` (``stage``) has not run."""
    doc.add(Heading(heading))
    if stage is None:
        doc.add(Paragraph(f"Stage '{name}' has not been run (or is incomplete) in this run directory."))
    return stage


def _per_seed(stage: StageResults[T], rows: Callable[[T], Rows]) -> dict[int, Rows]:
    return {seed: rows(stage.by_seed[seed]) for seed in stage.seeds}


def _stage_figure(doc: Document, stage: StageResults[Record], label: str, caption: str, name: str) -> None:
    """A figure the stage wrote (the first seed's when there are several)."""
    seed = stage.seeds[0]
    where = "" if len(stage.seeds) == 1 else f" Seed {seed}; the other seeds' are in {stage.name}/seed-<s>/."
    doc.add(Figure(label, caption + where, stage.path(seed, name)))


def learning_curves(doc: Document, stage: StageResults[T], run_dir: Path, models: Callable[[T], Sequence[Row]],
                    name_of: Callable[[Row], str]) -> None:
    """Figure L.* of ``stage``: every model's learning curves, all seeds (nothing when no row has them)."""
    curves = stage_curves(stage.over_seeds(models), name_of)
    if not curves:
        return
    label = CURVE_FIGURES[stage.name]
    path = plot_learning_curves(curves, run_dir / "figures" / f"learning-{stage.name}.png",
                                title=f"{label}: learning curves, stage {stage.name}")
    doc.add(Figure(label, f"Learning curves of the {stage.name} stage's models: cross-entropy and accuracy on the "
                   f"training split (dashed) and the validation split (solid) after each epoch; "
                   f"{len(stage.seeds)} seed(s), the first solid, the others faint.", path))


def teacher_section(doc: Document, results: RunResults, run_dir: Path) -> None:
    stage = _open(doc, "1. Teacher and hard-label controls", results.teacher, StageName.TEACHER)
    if stage is None:
        return

    def rows(r: TeacherResults) -> Rows:
        t = r.teacher
        return ([["teacher", t.spec, t.params, t.macs, t.val_accuracy, t.test_accuracy]]
                + [[f"control {c.family}", c.spec, c.params, c.macs, c.val_accuracy, c.test_accuracy]
                   for c in r.controls])

    doc.add(seed_table("Table 8.1", "Teacher and students trained on hard labels (cross-entropy, early stopping on "
                       "validation).", ["model", "spec", "params", "MACs", "val acc", "test acc"],
                       _per_seed(stage, rows)))
    learning_curves(doc, stage, run_dir, lambda r: [r.teacher, *r.controls],
                    lambda row: "teacher" if row.name == "teacher" else f"control {row.spec}")


TRANSFER_NAMES = {"train": "A (train split)", "extra": "B (transfer set)"}


def distillation_section(doc: Document, results: RunResults, run_dir: Path) -> None:
    stage = _open(doc, "2. Logits distillation over families and widths", results.distillation,
                  StageName.DISTILLATION)
    if stage is None:
        return
    first = stage.first.students
    transfers = list(dict.fromkeys(r.transfer for r in first))
    for family, label in FAMILY_TABLES.items():
        specs = list(dict.fromkeys(r.spec for r in first if r.family == family))
        if not specs:
            continue

        def rows(r: DistillationResults, specs: list[str] = specs) -> Rows:
            table = []
            for spec in specs:
                by_transfer = {s.transfer: s for s in r.students if s.spec == spec}
                one = next(iter(by_transfer.values()))
                table.append([spec, one.params, one.control_test_accuracy]
                             + [by_transfer[t].test_accuracy if t in by_transfer else None for t in transfers])
            return table

        doc.add(seed_table(label, f"{family} students: test accuracy of the hard-label control and of logits "
                           "distillation on each transfer set.",
                           ["student", "params", "control"] + [f"distilled {TRANSFER_NAMES[t]}" for t in transfers],
                           _per_seed(stage, rows)))

    def summary(r: DistillationResults) -> Rows:
        table = []
        for t in transfers:
            gains = [s.test_accuracy - s.control_test_accuracy for s in r.students if s.transfer == t]
            table.append([TRANSFER_NAMES[t], len(gains), sum(gains) / max(1, len(gains)), sum(g > 0 for g in gains)])
        return table

    doc.add(seed_table("Table 8.5", "Summary: accuracy gain of distillation over the control, per transfer set.",
                       ["transfer set", "students", "mean gain", "students improved"], _per_seed(stage, summary)))
    learning_curves(doc, stage, run_dir, lambda r: r.students, lambda row: f"{row.spec} ({row.transfer})")


def temperature_section(doc: Document, results: RunResults, run_dir: Path) -> None:
    stage = _open(doc, "3. Temperature sweep", results.temperature, StageName.TEMPERATURE)
    if stage is None:
        return
    doc.add(seed_table("Table 8.7", f"scnn2 students distilled with temperature T (teacher at T, student at 1) and "
                       f"with logits matching, transfer set '{stage.first.transfer}'.",
                       ["student", "method", "T", "val acc", "test acc"],
                       _per_seed(stage, lambda r: [[s.spec, s.method, s.temperature, s.val_accuracy, s.test_accuracy]
                                                   for s in r.students])))
    _stage_figure(doc, stage, "Figure 8.11", "Test accuracy against temperature; dashed: logits matching.",
                  stage.first.figure)
    learning_curves(doc, stage, run_dir, lambda r: r.students,
                    lambda row: f"{row.spec} logits" if row.temperature is None
                    else f"{row.spec} T={row.temperature:g}")


def pruning_section(doc: Document, results: RunResults, run_dir: Path) -> None:
    stage = _open(doc, "4. Pruning the best student", results.pruning, StageName.PRUNING)
    if stage is None:
        return
    chosen = dict.fromkeys(stage.over_seeds(lambda p: f"{p.student.spec} ({p.student.stage}/{p.student.name})"))
    evaluations = ", ".join(str(e) for e in stage.over_seeds(lambda p: p.search_evaluations))
    doc.add(Paragraph(f"Best convolutional student by validation accuracy: {'; '.join(chosen)}"
                      f"{' (differs between seeds)' if len(chosen) > 1 else ''}. Largest L1-norm filter pruning "
                      f"with validation drop <= {stage.first.max_drop} ({evaluations} validation evaluations)."))
    doc.add(seed_table("Table 8.9", "Size and accuracy before and after pruning (MACs per input).",
                       ["", "params", "MACs", "val acc", "test acc"],
                       _per_seed(stage, lambda p: [
                           ["before", p.params_before, p.flops_before, p.val_accuracy_before, p.test_accuracy_before],
                           ["after", p.params_after, p.flops_after, p.val_accuracy_after, p.test_accuracy_after]])))
    doc.add(seed_table("Table 8.10", "Filters per convolutional layer.", ["layer", "filters before", "filters kept"],
                       _per_seed(stage, lambda p: [[layer.layer, layer.filters_before, layer.filters_kept]
                                                   for layer in p.layers])))
    for i, name in enumerate(stage.first.figures):
        _stage_figure(doc, stage, f"Figure 8.{13 + i}", "L1 norms of the filters of one convolutional layer "
                      "(red: removed).", name)


def attacks_section(doc: Document, results: RunResults, run_dir: Path) -> None:
    stage = _open(doc, "5. Attacks: teacher against students", results.attacks, StageName.ATTACKS)
    if stage is None:
        return
    r = stage.first
    eps = r.curves[0].eps
    for i, attack in enumerate(dict.fromkeys(c.attack for c in r.curves)):

        def rows(res: AttacksResults, attack: str = attack) -> Rows:
            return [[c.model, c.clean_accuracy, *c.robust_accuracy] for c in res.curves if c.attack == attack]

        doc.add(seed_table(f"Table 8.{11 + i}", f"{attack.upper()} ({r.steps} steps, step "
                           f"{r.relative_step}·ε): accuracy under attack on {r.n} test points.",
                           ["model", "clean"] + [f"ε={e:g}" for e in eps], _per_seed(stage, rows)))
        _stage_figure(doc, stage, f"Figure 8.{15 + i}", f"{attack.upper()}: accuracy against ε.", f"{attack}.png")


def _cert_rows(models: list[CertifiedRow]) -> Rows:
    return [[m.kind.value, m.name, m.spec, m.clean_accuracy, m.certified_accuracy, m.robust_error_bound,
             m.mean_radius, m.mean_true_label_radius] for m in models]


CERT_HEADERS = ["teacher", "model", "spec", "clean acc", "certified acc at ε", "robust error bound", "average radius",
                "average radius, true label"]


def training_method(method: str) -> str:
    """How the robust models were trained, in words (:mod:`shallowcert.robust`)."""
    if method == "crown-ibp":
        return ("CROWN-IBP with the ramps of Zhang et al. 2020: ε from 0, natural-loss weight κ and CROWN-IBP "
                "weight β from 1 to 0, then IBP")
    if method == "dual-projected":
        return "Wong & Kolter robust loss, dual bound with random projections of its ℓ1 terms (Wong et al. 2018)"
    return f"Wong & Kolter robust loss with {method} bounds"


def certification_section(doc: Document, results: RunResults, run_dir: Path) -> None:
    stage = _open(doc, "6. Certification: teachers and their students", results.certification,
                  StageName.CERTIFICATION)
    if stage is None:
        return
    c = stage.first
    doc.add(Paragraph(f"Certificates by the '{c.method}' bound in {c.dtype} on {c.n} test points; "
                      f"input set: L∞ ball of radius ε={c.eps:g} "
                      f"{'intersected with the data domain [0, 1]' if c.domain else 'without domain clipping'}. "
                      "Radii are the largest ε at which the certificate was computed and held for the predicted "
                      "class (the thesis' certification area); the last column counts misclassified points as "
                      "radius 0."))
    kinds = c.teacher_kinds()
    doc.add(Paragraph("Teachers: " + "; ".join(f"'{k.value}' is {k.describe()}" for k in kinds) + ". The "
                      "'teacher' column says which one a row descends from."))
    doc.add(seed_table("Table 8.19", "Normally trained teachers and their distilled students.",
                       CERT_HEADERS, _per_seed(stage, lambda r: _cert_rows(
                           [m for m in r.models if m.name.endswith("normal")]))))
    doc.add(seed_table("Table 8.20", f"Robustly trained teachers ({training_method(c.train_method)}, ε={c.eps:g}) "
                       "and their distilled students.", CERT_HEADERS,
                       _per_seed(stage, lambda r: _cert_rows(
                           [m for m in r.models if m.name.endswith("robust")]))))
    area_pairs(doc, stage, run_dir)
    for i, m in enumerate(c.models):
        _stage_figure(doc, stage, f"Figure 8.{19 + i}", f"Certification area of {m.name}: radii sorted, coloured "
                      "by the running accuracy.", m.figure)
    eps = c.models[0].pgd.eps
    doc.add(seed_table("Table 8.21", "PGD accuracy of the certification models.",
                       ["model"] + [f"ε={e:g}" for e in eps],
                       _per_seed(stage, lambda r: [[m.name, *m.pgd.robust_accuracy] for m in r.models])))
    exact_gap(doc, stage, run_dir)
    learning_curves(doc, stage, run_dir, lambda r: r.models, lambda row: row.name)


def area_pairs(doc: Document, stage: StageResults[CertificationResults], run_dir: Path) -> None:
    """Figure 8.18: each teacher's certification area overlaid with its student's (:mod:`shallowcert.report.areas`)."""
    kinds = stage.first.teacher_kinds()
    rows = [[(k.model(f"teacher-{t}"), k.model(f"student-{t}")) for t in ("normal", "robust")] for k in kinds]
    radii = {name: [radii_columns(stage, seed, _model(stage, seed, name), ["radius"])[0] for seed in stage.seeds]
             for row in rows for pair in row for name in pair}
    path = run_dir / "figures" / "certification-areas.png"
    plot_area_pairs(radii, rows, path, eps=stage.first.eps)
    doc.add(Figure("Figure 8.18", "Certification areas overlaid: each teacher and the student distilled from it "
                   f"(one line of panels per teacher: {'; '.join(k.describe() for k in kinds)}), certified radii "
                   f"of the predicted class on the same {stage.first.n} test points "
                   f"sorted in decreasing order ('{stage.first.method}' bound, {stage.first.dtype}); the area under a "
                   f"curve is the mean radius; dotted: ε={stage.first.eps:g}; {len(stage.seeds)} seed(s), the first "
                   "solid.", path))


def _model(stage: StageResults[CertificationResults], seed: int, name: str) -> CertifiedRow:
    found = [m for m in stage.by_seed[seed].models if m.name == name]
    if len(found) != 1:
        raise UserError(f"{stage.name}: seed {seed} has {len(found)} models named '{name}'")
    return found[0]


def exact_gap(doc: Document, stage: StageResults[CertificationResults], run_dir: Path) -> None:
    """Table E.1 and Figure E.1: certified against exact radius (:mod:`shallowcert.report.exact_gap`)."""
    exact = stage.first.exact
    if exact is None:
        return doc.add(Paragraph("Exact radii were not computed in this run (certification.exact_points: 0)."))
    points = {seed: {m.name: ExactPoints.read(stage.path(seed, m.file)) for m in _exact(stage, seed).models}
              for seed in stage.seeds}
    doc.add(Paragraph(
        f"Exact robust radius of the predicted class on the first {exact.points} certified test points, by "
        f"bisection on the complete verifier ({exact.time_limit:g} s per point), against the certified radius "
        f"of the '{stage.first.method}' bound (float64, balls clipped to [0, 1], radii in input units). A point "
        f"is settled when its bracket lower ≤ r* ≤ upper has upper − lower ≤ {exact.rtol:g}·upper; unsettled "
        "points (the verifier did not finish in time: typical of deep or wide nets) are counted but enter no "
        "exact-radius mean. "
        "Soundness demands certified ≤ exact on every point; the gap is what the bound gives away."))
    doc.add(seed_table("Table E.1", "Certified vs exact radius: means over all points (certified) and over the "
                       "settled points (the rest); ratio = mean certified / mean exact lower. A seed without "
                       "settled points is left out of the exact-radius cells.", GAP_HEADERS,
                       {seed: [gap_row(name, p) for name, p in models.items()] for seed, models in points.items()},
                       partial=True))
    by_model = {name: {seed: points[seed][name] for seed in stage.seeds} for name in points[stage.seeds[0]]}
    path = run_dir / "figures" / "exact-gap.png"
    counts = plot_exact_gap(by_model, path, title="Figure E.1: certified against exact radius")
    shown = shown_models(by_model)
    notes = "; ".join(f"{name}: {c.settled} settled, {c.bracketed} bracketed, {c.omitted} left out (no "
                      f"counterexample){'' if name in shown else ', no panel (no point settled)'}"
                      for name, c in counts.items())
    doc.add(Figure("Figure E.1", "Per point, certified radius (y) against exact radius (x), all seeds "
                   f"({len(stage.seeds)}), dashed y = x: dots are settled points (x = the proved lower end, within "
                   f"{exact.rtol:g} relative of the exact radius), bars the brackets [lower, upper] of unsettled "
                   f"points. Counts over seeds: {notes}.", path))


def _exact(stage: StageResults[CertificationResults], seed: int) -> ExactResults:
    found = stage.by_seed[seed].exact
    if found is None:
        raise UserError(f"{stage.name}: seed {seed} has no exact radii, though seed {stage.seeds[0]} has")
    return found


def improvement_section(doc: Document, results: RunResults, run_dir: Path) -> None:
    stage = _open(doc, "7. Improving the robust student", results.improvement, StageName.IMPROVEMENT)
    if stage is None:
        return
    r = stage.first
    doc.add(seed_table("Table 8.22", f"Ways to a robust shallow student ({r.spec}), certified at ε={r.eps:g} "
                       f"({r.dtype}).", ["variant", "clean acc", "PGD acc at ε", "certified acc",
                                         "robust error bound", "average radius", "average radius, true label"],
                       _per_seed(stage, lambda res: [
                           [m.name, m.clean_accuracy, m.pgd_accuracy, m.certified_accuracy, m.robust_error_bound,
                            m.mean_radius, m.mean_true_label_radius] for m in res.models])))
    learning_curves(doc, stage, run_dir, lambda res: res.models, lambda row: row.name)


CLAIM_HEADERS = ["claim", "verdict", "effect (95% interval)", "test", "n"]


def claims_section(doc: Document, claims: list[Claim], caveats: list[str]) -> None:
    """The caveats first, then the claims as a table (claim, verdict, effect with its interval,
    test, n), then each claim's evidence."""
    doc.add(Heading("Claims of the study, checked on this run"))
    for caveat in caveats:
        doc.add(Paragraph(f"**Caveat.** {caveat}"))
    rows = []
    for i, claim in enumerate(claims, 1):
        effect = claim.effect
        rows.append([f"{i}. {claim.statement}", claim.verdict,
                     "–" if effect is None else f"{signed(effect.estimate)} [{signed(effect.low)}, {signed(effect.high)}]",
                     claim.test or "–",
                     "–" if effect is None else f"{effect.seeds} seed{'s' if effect.seeds != 1 else ''} × "
                                                f"{effect.points:,} points"])
    doc.add(Table("Table C.1", "The claims, each decided on this run; effect: the paired difference the test decides on (the "
                  "mean over the comparisons for a claim over several models).", CLAIM_HEADERS,
                  rows))
    doc.add(Heading("Evidence for each claim", level=3))
    for i, claim in enumerate(claims, 1):
        doc.add(Paragraph(f"{i}. **{claim.verdict}**. {claim.evidence}"))


def _commit(commit: str | None) -> str:
    return f", source commit {commit}" if commit else ""


def _against_plan(run: RunFacts) -> str:
    planned = run.planned_wall_seconds
    if not planned:
        return ""
    return f" (planned {planned:.0f} s: actual/planned {run.wall_seconds / planned:.2f})"


def _load(run: RunFacts) -> str:
    if run.load is None:
        return ""
    return (f"; one-minute load average {run.load.start:.2f} at the start, {run.load.peak:.2f} at most, "
            f"{run.load.end:.2f} at the end ({run.environment.cpu_count} CPUs)")


def run_facts_section(doc: Document, run: RunFacts | None) -> None:
    doc.add(Heading("Run facts"))
    if run is None:
        return doc.add(Paragraph("run.json is missing: the run has not finished."))
    env, seeds = run.environment, run.config.seeds
    doc.add(Paragraph(f"Seeds {', '.join(map(str, seeds))} (a stage's own figures show seed {seeds[0]}); "
                      f"shallowcert {env.shallowcert}, Python {env.python}, "
                      f"torch {env.torch}, numpy {env.numpy}; {env.platform}, {env.cpu_count} CPUs "
                      f"({env.torch_threads} torch threads){_commit(env.commit)}. Wall time of this invocation: "
                      f"{run.wall_seconds:.0f} s{_against_plan(run)}{_load(run)}."))
    doc.add(Table("Table R.1", "Time per stage: the sum of its jobs' seconds over every seed (reused jobs keep the "
                  "time of the run that built them).", ["stage", "title", "seconds", "reused"],
                  [[name, s.title, round(s.seconds), s.reused] for name, s in run.stages.items()]))
    doc.add(Code(yaml.safe_dump(run.config.to_json(), sort_keys=False)))


SECTIONS = (teacher_section, distillation_section, temperature_section, pruning_section, attacks_section,
            certification_section, improvement_section)
