"""A stage's results over seeds, and the per-point records its rows name.

A stage's ``results.json`` is ``{"seeds": [s0, s1, ...], "by_seed": {"<s>": results}}``,
each seed's artifacts under ``RUN_DIR/<stage>/seed-<s>/`` (paths in a seed's results are
relative to that directory). A run written before seeds existed has the results
themselves in ``results.json`` and its artifacts in the stage directory: it is read as
one seed (the config's seed).

Per-point records (same test points for every model and seed, so comparisons are paired):

* ``predictions.json`` of a saved model (row key ``predictions``): ``label`` and
  ``predicted`` for every test point;
* ``<name>-radii.csv`` of a certified model (row key ``radii``): ``correct``,
  ``certified`` (correct and certified at epsilon) and ``radius`` per point.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import yaml

from shallowcert.errors import UserError

STAGE_NAMES = ("teacher", "distillation", "temperature", "pruning", "attacks", "certification", "improvement")


@dataclass(frozen=True)
class StageResults:
    """One stage's results, per seed (in the order the run lists its seeds)."""

    name: str
    directory: Path
    by_seed: dict[int, dict[str, Any]]
    seed_dirs: dict[int, Path]

    @property
    def seeds(self) -> list[int]:
        return list(self.by_seed)

    @property
    def first(self) -> dict[str, Any]:
        """The first seed's results (for what does not vary with the seed: settings, names)."""
        return self.by_seed[self.seeds[0]]

    def path(self, seed: int, relative: str) -> Path:
        """A file named in seed ``seed``'s results."""
        return self.seed_dirs[seed] / relative

    def over_seeds(self, extract: Callable[[dict[str, Any]], Any]) -> list[Any]:
        """``extract(results)`` for every seed."""
        return [extract(self.by_seed[s]) for s in self.seeds]


def _config_seed(run_dir: Path) -> int:
    config = run_dir / "config.yaml"
    if config.is_file():
        return int((yaml.safe_load(config.read_text()) or {}).get("seed", 0))
    return 0


def read_stage(run_dir: Path, stage: str) -> StageResults | None:
    """``stage``'s results when it is complete (has its manifest), else None."""
    directory = run_dir / stage
    path = directory / "results.json"
    if not (path.is_file() and (directory / "manifest.json").is_file()):
        return None
    data = json.loads(path.read_text())
    if "by_seed" not in data:
        seed = _config_seed(run_dir)
        return StageResults(stage, directory, {seed: data}, {seed: directory})
    seeds = [int(s) for s in data["seeds"]]
    return StageResults(stage, directory, {s: data["by_seed"][str(s)] for s in seeds},
                        {s: directory / f"seed-{s}" for s in seeds})


def read_results(run_dir: Path) -> dict[str, StageResults]:
    """Every complete stage of the run."""
    results = {}
    for stage in STAGE_NAMES:
        if (found := read_stage(run_dir, stage)) is not None:
            results[stage] = found
    return results


def common_seeds(*stages: StageResults) -> list[int]:
    """The seeds every one of ``stages`` has (in the first stage's order)."""
    return [s for s in stages[0].seeds if all(s in stage.by_seed for stage in stages[1:])]


def correct_per_point(stage: StageResults, seed: int, row: dict[str, Any]) -> np.ndarray:
    """0/1 per test point: did the model of ``row`` (seed ``seed``) classify it correctly."""
    if "predictions" not in row:
        raise UserError(f"{stage.name}: the row of '{row.get('name')}' names no per-point predictions "
                        "(a run from before they were recorded)")
    data = json.loads(stage.path(seed, row["predictions"]).read_text())
    return (np.asarray(data["predicted"]) == np.asarray(data["label"])).astype(np.float64)


def radii_columns(stage: StageResults, seed: int, row: dict[str, Any], columns: Sequence[str]) -> np.ndarray:
    """``columns`` (e.g. ``radius``, ``certified``) of the per-point radii table of ``row``:
    an array ``len(columns) x N``."""
    if "radii" not in row or not stage.path(seed, row["radii"]).is_file():
        raise UserError(f"{stage.name}: no per-point radii table for '{row.get('name')}' "
                        "(a run from before it was recorded)")
    with open(stage.path(seed, row["radii"]), newline="") as f:
        records = list(csv.DictReader(f))
    missing = [c for c in columns if records and c not in records[0]]
    if missing:
        raise UserError(f"{stage.path(seed, row['radii'])} has no column(s) {', '.join(missing)}")
    return np.array([[float(r[c]) for r in records] for c in columns])


def stacked(values: Sequence[np.ndarray]) -> np.ndarray:
    """Per-seed vectors of the same test points as one ``seeds x points`` array."""
    lengths = {len(v) for v in values}
    if len(lengths) != 1:
        raise UserError(f"paired records have different numbers of test points across seeds: {sorted(lengths)}")
    return np.stack(values)
