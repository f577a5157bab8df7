"""A stage of the study: a name, the config sections it reads, its jobs and how their results
become the stage's results for one seed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from shallowcert.study.context import StageContext
from shallowcert.study.costs import CostModel
from shallowcert.study.jobs import Job

JobResults = dict[str, dict[str, Any]]  # job name -> the dict its run returned


def gather(results: JobResults) -> dict[str, Any]:
    """The default collect step: each job's result under its name."""
    return dict(results)


@dataclass(frozen=True)
class Stage:
    name: str
    title: str
    sections: tuple[str, ...]  # config sections whose change invalidates this stage
    jobs: Callable[[StageContext, CostModel], list[Job]]  # one seed's jobs (planned before any work)
    collect: Callable[[StageContext, JobResults], dict[str, Any]] = lambda ctx, results: gather(results)
    # collect runs in the driver once every job of the seed is done: it may write figures to
    # ctx.out and returns the seed's results (the per-seed dict of results.json)
