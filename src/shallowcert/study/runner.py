"""Run the study: every stage once per seed, split into jobs, on an executor; reuse whatever
is complete and valid.

Each stage's fingerprint hashes the config sections it reads, the data section and the
fingerprint of the stage before it, so changing a stage's config redoes that stage and
every later one, never an earlier one. A job's fingerprint adds its seed, name and
arguments: a finished job whose record and files are intact is never redone, so a crash of
a worker or of this driver loses at most the jobs that were running. A stage's manifest
also records the seeds, so adding a seed runs only the new seed's jobs.

Order: a job starts when the jobs it names in ``after`` have finished and the previous
stage is complete *for its seed* (seeds do not wait for each other). When a seed's jobs of
a stage are done, the stage's ``collect`` writes ``seed-<s>/results.json``; when every seed
is collected, ``results.json`` and the manifest complete the stage.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from tqdm import tqdm

from shallowcert import __version__, atomic
from shallowcert.data import data_dir_for, dataset_info, files_found
from shallowcert.errors import UserError
from shallowcert.data.registry import Dataset
from shallowcert.study.config import StudyConfig
from shallowcert.study.context import StageContext, cached_study_dataset
from shallowcert.study.costs import CostModel, wall_seconds
from shallowcert.study.executors import Executor, LocalExecutor
from shallowcert.study.jobs import Job, JobCall, JobRecord, job_fingerprint
from shallowcert.study.machine import LoadMonitor, MachineLoad, source_commit
from shallowcert.study.record import OMIT_NONE, Record, RecordError
from shallowcert.study.stage import JobResults, Stage, StageName
from shallowcert.study.store import RESULTS, RESULTS_FORMAT, ArtifactStore, fingerprint

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
CONFIG_FILE = "config.yaml"


def all_stages() -> list[Stage]:
    """Every stage of the study, in :class:`StageName` order."""
    from shallowcert.study.stages import attacks, certification, distillation, improvement, pruning, teacher, \
        temperature
    stages = {m.STAGE.name: m.STAGE for m in (teacher, distillation, temperature, pruning, attacks, certification,
                                               improvement)}
    return [stages[name] for name in StageName]


def check_data_present(config: StudyConfig) -> None:
    """Fail before any work when the dataset's files are not where they are looked for."""
    name, data_dir = config.data.dataset, config.data.data_dir
    if not files_found(name, data_dir):
        info = dataset_info(name)
        raise UserError(f"the study needs the {info.description} files ({', '.join(info.required)}) in "
                        f"{data_dir_for(name, data_dir)}; they were not found (set data.data_dir in the config, "
                        f"pass --data-dir, or set SHALLOWCERT_DATA)")


def stage_fingerprints(config: StudyConfig, stages: list[Stage]) -> dict[str, str]:
    """Per stage: the hash of its config sections, the data and the stage before (not the seeds)."""
    sections = config.to_json()
    upstream = fingerprint({"data": sections["data"]})
    prints: dict[str, str] = {}
    for stage in stages:
        upstream = fingerprint({"stage": stage.name, "upstream": upstream,
                                "config": {k: sections[k] for k in stage.sections}})
        prints[stage.name] = upstream
    return prints


def manifest_fingerprint(stage_print: str, seeds: list[int]) -> str:
    """A complete stage's fingerprint: its stage fingerprint, the seeds and the results format
    (a stage written in another format is collected again from its jobs' records)."""
    return fingerprint({"stage": stage_print, "seeds": seeds, "format": RESULTS_FORMAT})


@dataclass(frozen=True)
class Environment(Record):
    """Versions and the machine a run used."""

    shallowcert: str
    python: str
    torch: str
    numpy: str
    platform: str
    processor: str
    cpu_count: int | None
    torch_threads: int
    commit: str | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True)
class ExecutorFacts(Record):
    kind: str
    parallel_jobs: int
    threads_per_job: int
    device: str


@dataclass(frozen=True)
class StageFacts(Record):
    """One stage in one invocation: whether it was reused whole, its jobs' seconds summed
    over seeds (reused jobs keep the time of the run that built them), jobs and jobs reused."""

    title: str
    reused: bool
    seconds: float
    jobs: int
    jobs_reused: int


@dataclass(frozen=True)
class RunFacts(Record):
    """``run.json``: the config, environment, executor, stages and wall time (seconds), the
    plan's estimate of that wall time for the jobs this invocation ran
    (:func:`shallowcert.study.costs.wall_seconds`) and the machine's load while it ran."""

    config: StudyConfig
    environment: Environment
    executor: ExecutorFacts
    stages: dict[str, StageFacts]
    wall_seconds: float
    planned_wall_seconds: float | None = field(default=None, metadata=OMIT_NONE)
    load: MachineLoad | None = field(default=None, metadata=OMIT_NONE)


def environment() -> Environment:
    import numpy
    return Environment(__version__, platform.python_version(), torch.__version__, numpy.__version__,
                       platform.platform(), platform.processor(), os.cpu_count(), torch.get_num_threads(),
                       source_commit())


@dataclass
class Unit:
    """One stage for one seed: its jobs, their fingerprints and the results of those done."""

    stage: Stage
    seed: int
    jobs: dict[str, Job]
    prints: dict[str, str]
    results: dict[str, Record] = field(default_factory=dict)
    seconds: float = 0.0
    reused: set[str] = field(default_factory=set)
    collected: bool = False


@dataclass(frozen=True)
class PlannedJob:
    stage: str
    seed: int
    job: str
    cost_seconds: float
    after: tuple[str, ...]
    done: bool  # finished earlier in this run directory (would be reused)


class _Study:
    """The units of one invocation and the bookkeeping between them."""

    def __init__(self, config: StudyConfig, store: ArtifactStore, stages: list[Stage], device: torch.device) -> None:
        self.config, self.store, self.stages, self.device = config, store, stages, device
        self.prints = stage_fingerprints(config, stages)
        self.costs = CostModel(config, self.dataset)
        self.reused_stages = {s.name for s in stages
                              if store.problem(s.name, self.manifest_print(s)) is None}
        self.units: list[Unit] = []
        for stage in stages:
            for seed in config.seeds:
                jobs = stage.jobs(self.context(stage, seed), self.costs)
                _check_jobs(stage.name, jobs)
                prints = {job.name: job_fingerprint(self.prints[stage.name], seed, job) for job in jobs}
                unit = Unit(stage, seed, {job.name: job for job in jobs}, prints)
                self.units.append(unit)
                if stage.name in self.reused_stages:
                    unit.reused, unit.collected = set(unit.jobs), True
                    continue
                for job in jobs:
                    record = store.finished_job(stage.name, seed, job.name, prints[job.name])
                    result = _recorded_result(stage.name, seed, job, record)
                    if record is not None and result is not None:
                        unit.results[job.name], unit.seconds = result, unit.seconds + record["seconds"]
                        unit.reused.add(job.name)

    def dataset(self) -> Dataset:
        return cached_study_dataset(self.config.data)

    def costs_to_run(self) -> list[float]:
        """The planned one-thread seconds of each job not reused."""
        return [job.cost for unit in self.units for job in unit.jobs.values() if job.name not in unit.reused]

    def manifest_print(self, stage: Stage) -> str:
        return manifest_fingerprint(self.prints[stage.name], self.config.seeds)

    def context(self, stage: Stage, seed: int) -> StageContext:
        return StageContext(self.config, self.store, stage.name, seed, self.dataset, device=self.device)

    def earlier_collected(self, unit: Unit) -> bool:
        """Whether every earlier stage being built is complete for ``unit``'s seed."""
        index = [s.name for s in self.stages].index(unit.stage.name)
        earlier = {s.name for s in self.stages[:index]}
        return all(u.collected for u in self.units if u.seed == unit.seed and u.stage.name in earlier)

    def ready(self, unit: Unit, job: Job) -> bool:
        return self.earlier_collected(unit) and all(name in unit.results for name in job.after)

    def plan(self) -> list[PlannedJob]:
        return [PlannedJob(u.stage.name, u.seed, job.name, round(job.cost, 1), job.after, job.name in u.reused)
                for u in self.units for job in u.jobs.values()]

    def collect_ready_units(self) -> None:
        """Collect every unit whose jobs are all done (in stage order); complete finished stages."""
        for unit in self.units:
            if unit.collected or len(unit.results) < len(unit.jobs) or not self.earlier_collected(unit):
                continue
            ctx = self.context(unit.stage, unit.seed)
            ctx.out.mkdir(parents=True, exist_ok=True)
            atomic.write_json(ctx.out / RESULTS, unit.stage.collect(ctx, JobResults(unit.results)).to_json())
            unit.collected = True
            siblings = [u for u in self.units if u.stage.name == unit.stage.name]
            if all(u.collected for u in siblings):
                seeds = self.config.seeds
                self.store.finish(unit.stage.name, self.manifest_print(unit.stage),
                                  {"seeds": seeds, "by_seed": {str(s): self.store.seed_results(unit.stage.name, s)
                                                               for s in seeds}},
                                  seconds=sum(u.seconds for u in siblings))
                log.info("stage %-13s complete", unit.stage.name)


def _recorded_result(stage: StageName, seed: int, job: Job, record: JobRecord | None) -> Record | None:
    """The result of a finished job's record; None when there is none, or when it was written in
    another layout (an older version: the job is redone)."""
    if record is None:
        return None
    try:
        return job.read_result(record)
    except RecordError as exc:
        log.info("job %s/seed-%d/%s is redone: its record is in another format (%s)", stage, seed, job.name, exc)
        return None


def _check_jobs(stage: str, jobs: list[Job]) -> None:
    names = [job.name for job in jobs]
    if len(set(names)) != len(names):
        raise ValueError(f"stage {stage}: job names repeat: {names}")
    for job in jobs:
        unknown = [name for name in job.after if name not in names]
        if unknown:
            raise ValueError(f"stage {stage}: job {job.name} waits for unknown job(s) {unknown}")


def plan_study(config: StudyConfig, run_dir: str | Path, *, stages: list[Stage] | None = None,
               device: torch.device | None = None) -> list[PlannedJob]:
    """Every job the study would run (marked ``done`` when ``run_dir`` already holds it), with
    its estimated cost; writes nothing."""
    check_data_present(config)
    study = _Study(config, ArtifactStore(run_dir), stages or all_stages(), device or torch.device("cpu"))
    return study.plan()


class _Progress:
    """One bar for the whole study: jobs done / total, elapsed and the estimated time left:
    the planned cost of the jobs left, scaled by how long the finished jobs took against
    their plan, over the executor's parallel jobs."""

    def __init__(self, study: _Study, parallelism: int, enabled: bool) -> None:
        jobs = [(u, j) for u in study.units for j in u.jobs.values()]
        self.left = sum(study.costs_to_run())
        self.parallelism = parallelism
        self.planned = self.took = 0.0
        self.bar = tqdm(total=len(jobs), initial=sum(len(u.reused) for u in study.units), unit="job",
                        desc="study", disable=not enabled, dynamic_ncols=True,
                        bar_format="{desc}: {n_fmt}/{total_fmt} jobs |{bar}| {elapsed} elapsed{postfix}")
        self._show()

    def finished(self, job: Job, seconds: float) -> None:
        self.left -= job.cost
        self.planned += job.cost
        self.took += seconds
        self.bar.update(1)
        self._show()

    def _show(self) -> None:
        pace = self.took / self.planned if self.planned > 0 and self.took > 0 else 1.0
        self.bar.set_postfix_str(f"~{tqdm.format_interval(max(0.0, self.left) * pace / self.parallelism)} left")

    def close(self) -> None:
        self.bar.close()


def run_study(config: StudyConfig, run_dir: str | Path, *, resume: bool = False,
              stages: list[Stage] | None = None, executor: Executor | None = None,
              device: torch.device | None = None, progress: bool = True) -> RunFacts:
    """Run (or resume) the study on ``executor`` (default: in this process); return the run
    facts written to ``run.json``. The executor is closed at the end."""
    stages = stages or all_stages()
    device = device or torch.device("cpu")
    executor = executor or LocalExecutor(threads=torch.get_num_threads())
    root = Path(run_dir)
    try:
        if root.exists() and any(root.iterdir()) and not resume:
            raise UserError(f"{root} is not empty: pass --resume to continue that run, or choose a new --out")
        check_data_present(config)
        root.mkdir(parents=True, exist_ok=True)
        atomic.write_text(root / CONFIG_FILE, yaml.safe_dump(config.to_json(), sort_keys=False))
        start = time.perf_counter()
        study = _Study(config, ArtifactStore(root), stages, device)
        for stage in stages:
            if stage.name in study.reused_stages:
                log.info("stage %-13s complete and valid: reused", stage.name)
            else:
                study.store.begin(stage.name, study.prints[stage.name])
        planned, load = wall_seconds(study.costs_to_run(), executor.parallelism), LoadMonitor()
        _run_jobs(study, executor, _Progress(study, executor.parallelism, progress), load)
        facts = _facts(study, config, executor, time.perf_counter() - start, planned=planned, load=load.summary())
    finally:
        executor.close()
    atomic.write_json(root / RUN_FILE, facts.to_json())
    return facts


def _run_jobs(study: _Study, executor: Executor, progress: _Progress, load: LoadMonitor) -> None:
    pending = [(u, j) for u in study.units for j in u.jobs.values() if j.name not in u.reused]
    running = 0
    try:
        study.collect_ready_units()
        while pending or running:
            ready = sorted([(u, j) for u, j in pending if study.ready(u, j)], key=lambda uj: -uj[1].cost)
            for unit, job in ready:  # the longest first: they bound the wall time
                pending.remove((unit, job))
                executor.submit(JobCall(study.config, str(study.store.root), unit.stage.name, unit.seed, job,
                                        unit.prints[job.name], executor.job_device(str(study.device)),
                                        executor.threads))
                running += 1
            if not running:
                raise RuntimeError(f"no job can start: {[f'{u.stage.name}/{j.name}' for u, j in pending]}")
            for call, record in executor.wait():
                running -= 1
                unit = next(u for u in study.units if u.stage.name == call.stage and u.seed == call.seed)
                unit.results[call.job.name] = call.job.read_result(record)
                unit.seconds += record["seconds"]
                progress.finished(call.job, record["seconds"])
                load.sample()
                log.debug("job %s/seed-%d/%s done in %.1f s", call.stage, call.seed, call.job.name, record["seconds"])
            study.collect_ready_units()
    finally:
        progress.close()


def _facts(study: _Study, config: StudyConfig, executor: Executor, wall: float, *, planned: float,
           load: MachineLoad | None) -> RunFacts:
    stages: dict[str, StageFacts] = {}
    for stage in study.stages:
        manifest = study.store.manifest(stage.name) or {}
        units = [u for u in study.units if u.stage.name == stage.name]
        stages[stage.name] = StageFacts(stage.title, stage.name in study.reused_stages, manifest.get("seconds", 0.0),
                                        sum(len(u.jobs) for u in units), sum(len(u.reused) for u in units))
    return RunFacts(config, environment(),
                    ExecutorFacts(type(executor).__name__, executor.parallelism, executor.threads, str(study.device)),
                    stages, round(wall, 2), round(planned, 1), load)
