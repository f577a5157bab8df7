"""The study report: every table and figure, the checked claims, and the run facts.

It only reads artifacts (``RUN_DIR/<stage>/results.json`` with each seed's results,
per-point records, figures, ``run.json``), so it can be regenerated at any time with
``shallowcert report RUN_DIR``. Outputs: ``report.html`` (self-contained), ``report.md``,
``report.json`` (claims, targets and tables), one CSV per table under ``tables/`` and the
learning-curve figures under ``figures/``. Tables show mean ± sample standard deviation
over seeds; claims are decided by paired tests (:mod:`shallowcert.report.claims`); the
targets the config sets (or ``targets`` given here) are checked in Table T.1
(:mod:`shallowcert.report.targets`), a missed one named at the head of the claims.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from shallowcert import atomic
from shallowcert.errors import UserError
from shallowcert.report.claims import caveats, check_claims
from shallowcert.report.document import Document, Table
from shallowcert.report.render import to_html, to_markdown
from shallowcert.report.results import RunResults, read_results, read_run_facts
from shallowcert.report.sections import SECTIONS, claims_section, run_facts_section
from shallowcert.report.stats import Spread
from shallowcert.report.targets import check_targets, missed_caveat, targets_section
from shallowcert.study.targets import TargetsConfig

__all__ = ["RunResults", "read_results", "table_csv", "write_report"]


def _csv_value(value: Any) -> Any:
    """A value over seeds as ``mean ± sd`` (full precision); anything else as it is."""
    if isinstance(value, Spread):
        return value.mean if value.sd is None else f"{value.mean:.6g} ± {value.sd:.3g}"
    return value


def _json_value(value: Any) -> Any:
    if isinstance(value, Spread):
        return {"mean": value.mean, "sd": value.sd, "n": value.n}
    return value


def table_csv(table: Table) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(table.headers)
    writer.writerows([[_csv_value(v) for v in row] for row in table.rows])
    return buffer.getvalue()


def write_report(run_dir: str | Path, *, targets: TargetsConfig | None = None) -> dict[str, Path]:
    """Write the report of the run in ``run_dir`` (the module docstring lists the files);
    ``targets``: check these instead of those of the run's config."""
    root = Path(run_dir)
    if not root.is_dir():
        raise UserError(f"{root} is not a run directory")
    results = read_results(root)
    if not results.complete():
        raise UserError(f"{root} holds no completed stage to report on")
    run = read_run_facts(root)
    name = run.config.name if run else root.name
    doc = Document(f"shallowcert study '{name}': can a deep network be taken into shallow waters?")
    claims = check_claims(results)
    targets = targets or (run.config.targets if run else None)
    checks = [] if targets is None else check_targets(results, targets)
    missed = missed_caveat(checks)
    claims_section(doc, claims, caveats(results, trial=run.config.trial if run else False) + ([missed] if missed else []))
    if checks:
        targets_section(doc, checks)
    for section in SECTIONS:
        section(doc, results, root)
    run_facts_section(doc, run)
    paths = {"html": root / "report.html", "markdown": root / "report.md", "json": root / "report.json"}
    for table in doc.tables():
        atomic.write_text(root / "tables" / (table.label.replace(" ", "-").replace(".", "_") + ".csv"),
                          table_csv(table))
    atomic.write_text(paths["markdown"], to_markdown(doc, relative_to=root))
    atomic.write_text(paths["html"], to_html(doc))
    atomic.write_json(paths["json"], {
        "claims": [{"statement": c.statement, "holds": c.holds, "verdict": c.verdict, "test": c.test,
                    "evidence": c.evidence,
                    "effect": None if c.effect is None else {"estimate": c.effect.estimate, "low": c.effect.low,
                                                             "high": c.effect.high, "seeds": c.effect.seeds,
                                                             "points": c.effect.points}} for c in claims],
        "targets": [{"target": c.target, "bound": c.bound, "floor": c.floor, "reached": c.reached, "met": c.met,
                     "evidence": c.evidence} for c in checks],
        "tables": [{"label": t.label, "caption": t.caption, "headers": t.headers,
                    "rows": [[_json_value(v) for v in row] for row in t.rows]} for t in doc.tables()],
    })
    return paths
