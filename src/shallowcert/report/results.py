"""A run's results over seeds, as the stages' result records, and the per-point records
their rows name.

A stage's ``results.json`` is ``{"seeds": [s0, s1, ...], "by_seed": {"<s>": results}}``,
each seed's artifacts under ``RUN_DIR/<stage>/seed-<s>/`` (paths in a seed's results are
relative to that directory); its ``manifest.json`` records the results format. A stage
written in another format (by an older version) is refused, with the advice to rerun the
study with ``--resume``, which collects it again from its jobs.

Per-point records (same test points for every model and seed, so comparisons are paired):

* ``predictions.json`` of a saved model (row field ``predictions``): ``label`` and
  ``predicted`` for every test point;
* ``<name>-radii.csv`` of a certified model (row field ``radii``): ``correct``,
  ``certified`` (correct and certified at epsilon) and ``radius`` per point.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Generic, Mapping, Protocol, Sequence, TypeVar

import numpy as np

from shallowcert.errors import UserError
from shallowcert.study.record import Record, RecordError
from shallowcert.study.robustness import RobustnessRow
from shallowcert.study.runner import RUN_FILE, RunFacts
from shallowcert.study.stage import StageName
from shallowcert.study.stages.attacks import AttacksResults
from shallowcert.study.stages.certification import CertificationResults
from shallowcert.study.stages.distillation import DistillationResults
from shallowcert.study.stages.improvement import ImprovementResults
from shallowcert.study.stages.pruning import PruningResults
from shallowcert.study.stages.teacher import TeacherResults
from shallowcert.study.stages.temperature import TemperatureResults
from shallowcert.study.store import MANIFEST, RESULTS, RESULTS_FORMAT

T = TypeVar("T", bound=Record)
T_co = TypeVar("T_co", bound=Record, covariant=True)
V = TypeVar("V")


class HasPredictions(Protocol):
    """A row that names its model's per-point test predictions."""

    @property
    def name(self) -> str: ...

    @property
    def predictions(self) -> str: ...


@dataclass(frozen=True)
class StageResults(Generic[T_co]):
    """One stage's results, per seed (in the order the run lists its seeds)."""

    name: StageName
    directory: Path
    by_seed: Mapping[int, T_co]

    @property
    def seeds(self) -> list[int]:
        return list(self.by_seed)

    @property
    def first(self) -> T_co:
        """The first seed's results (for what does not vary with the seed: settings, names)."""
        return self.by_seed[self.seeds[0]]

    def path(self, seed: int, relative: str) -> Path:
        """A file named in seed ``seed``'s results."""
        return self.directory / f"seed-{seed}" / relative

    def over_seeds(self, extract: Callable[[T_co], V]) -> list[V]:
        """``extract(results)`` for every seed."""
        return [extract(self.by_seed[s]) for s in self.seeds]


def _older(path: Path, why: str) -> UserError:
    return UserError(f"{path} was written by another version of shallowcert ({why}); rerun the study with "
                     "--resume to bring the run up to date")


def read_stage(run_dir: Path, stage: StageName, kind: type[T]) -> StageResults[T] | None:
    """``stage``'s results as ``kind`` records when it is complete (has its manifest), else None;
    UserError when the stage was written in another results format."""
    directory = run_dir / stage.value
    path, manifest = directory / RESULTS, directory / MANIFEST
    if not (path.is_file() and manifest.is_file()):
        return None
    found = json.loads(manifest.read_text()).get("format", 1)
    if found != RESULTS_FORMAT:
        raise _older(directory, f"results format {found}; this version reads {RESULTS_FORMAT}")
    data = json.loads(path.read_text())
    try:
        by_seed = {int(s): kind.from_json(data["by_seed"][str(s)]) for s in data["seeds"]}
    except (KeyError, RecordError) as exc:
        raise _older(directory, f"results.json does not have this version's layout: {exc}") from None
    return StageResults(stage, directory, by_seed)


@dataclass(frozen=True)
class RunResults:
    """Every complete stage of a run (None: not run, or not complete)."""

    teacher: StageResults[TeacherResults] | None
    distillation: StageResults[DistillationResults] | None
    temperature: StageResults[TemperatureResults] | None
    pruning: StageResults[PruningResults] | None
    attacks: StageResults[AttacksResults] | None
    certification: StageResults[CertificationResults] | None
    improvement: StageResults[ImprovementResults] | None

    def complete(self) -> list[StageName]:
        """The stages present, in order."""
        return [name for name in StageName if getattr(self, name.value) is not None]

    def stage(self, name: StageName) -> StageResults[Record] | None:
        """Stage ``name``'s results, whatever their kind."""
        found: StageResults[Record] | None = getattr(self, name.value)
        return found


def read_results(run_dir: Path) -> RunResults:
    """Every complete stage of the run."""
    return RunResults(read_stage(run_dir, StageName.TEACHER, TeacherResults),
                      read_stage(run_dir, StageName.DISTILLATION, DistillationResults),
                      read_stage(run_dir, StageName.TEMPERATURE, TemperatureResults),
                      read_stage(run_dir, StageName.PRUNING, PruningResults),
                      read_stage(run_dir, StageName.ATTACKS, AttacksResults),
                      read_stage(run_dir, StageName.CERTIFICATION, CertificationResults),
                      read_stage(run_dir, StageName.IMPROVEMENT, ImprovementResults))


def read_run_facts(run_dir: Path) -> RunFacts | None:
    """The run's ``run.json`` (None when the run has not finished)."""
    path = run_dir / RUN_FILE
    if not path.is_file():
        return None
    try:
        return RunFacts.from_json(json.loads(path.read_text()))
    except RecordError as exc:
        raise _older(path, str(exc)) from None


def need(stage: StageResults[T] | None) -> StageResults[T]:
    """A stage the caller has checked is present."""
    if stage is None:
        raise UserError("a stage this part of the report needs has not been run")
    return stage


def common_seeds(*stages: StageResults[Record]) -> list[int]:
    """The seeds every one of ``stages`` has (in the first stage's order)."""
    return [s for s in stages[0].seeds if all(s in stage.by_seed for stage in stages[1:])]


def correct_per_point(stage: StageResults[Record], seed: int, row: HasPredictions) -> np.ndarray:
    """0/1 per test point: did the model of ``row`` (seed ``seed``) classify it correctly."""
    data = json.loads(stage.path(seed, row.predictions).read_text())
    correct: np.ndarray = (np.asarray(data["predicted"]) == np.asarray(data["label"])).astype(np.float64)
    return correct


def radii_columns(stage: StageResults[Record], seed: int, row: RobustnessRow, columns: Sequence[str]) -> np.ndarray:
    """``columns`` (e.g. ``radius``, ``certified``) of the per-point radii table of ``row``:
    an array ``len(columns) x N``."""
    path = stage.path(seed, row.radii)
    if not path.is_file():
        raise UserError(f"{stage.name}: the per-point radii table {path} of '{row.name}' is missing")
    with open(path, newline="") as f:
        records = list(csv.DictReader(f))
    missing = [c for c in columns if records and c not in records[0]]
    if missing:
        raise UserError(f"{path} has no column(s) {', '.join(missing)}")
    return np.array([[float(r[c]) for r in records] for c in columns])


def stacked(values: Sequence[np.ndarray]) -> np.ndarray:
    """Per-seed vectors of the same test points as one ``seeds x points`` array."""
    lengths = {len(v) for v in values}
    if len(lengths) != 1:
        raise UserError(f"paired records have different numbers of test points across seeds: {sorted(lengths)}")
    stack: np.ndarray = np.stack(values)
    return stack
