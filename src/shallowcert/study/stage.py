"""A stage of the study: a name, the config sections it reads, its jobs and how their results
become the stage's results for one seed.

:class:`StageName` is the one list of the study's stages, in the order they run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from shallowcert.study.record import Key, R, Record

if TYPE_CHECKING:
    from shallowcert.study.context import StageContext
    from shallowcert.study.costs import CostModel
    from shallowcert.study.jobs import Job


class StageName(Key):
    """The study's stages, in order (thesis chapter 8); the value names its directory."""

    TEACHER = "teacher"
    DISTILLATION = "distillation"
    TEMPERATURE = "temperature"
    PRUNING = "pruning"
    ATTACKS = "attacks"
    CERTIFICATION = "certification"
    IMPROVEMENT = "improvement"


class JobResults:
    """The results of one seed's jobs of a stage, by job name."""

    def __init__(self, records: Mapping[str, Record]) -> None:
        self._records = dict(records)

    def get(self, name: str, kind: type[R]) -> R:
        """Job ``name``'s result, which must be a ``kind``."""
        record = self._records[name]
        if not isinstance(record, kind):
            raise TypeError(f"job {name} returned a {type(record).__name__}, not a {kind.__name__}")
        return record


@dataclass(frozen=True)
class Stage:
    """One stage: ``collect`` runs in the driver once every job of a seed is done; it may write
    figures to ``ctx.out`` and returns the seed's results (a ``results`` record)."""

    name: StageName
    title: str
    sections: tuple[str, ...]  # config sections whose change invalidates this stage
    jobs: Callable[[StageContext, CostModel], list[Job]]  # one seed's jobs (planned before any work)
    collect: Callable[[StageContext, JobResults], Record]
    results: type[Record]  # the record ``collect`` returns
