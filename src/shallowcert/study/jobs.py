"""Jobs: the independent pieces of work a stage is split into (one model trained, one model
attacked or certified), each run by an executor in any process and written on its own.

A job is a module-level function ``run(ctx, **args) -> Record`` with picklable ``args``; it
writes its files (``outputs``, relative to the seed directory ``RUN_DIR/<stage>/seed-<s>/``)
atomically and returns a record of type ``result``. :func:`execute` then records the
result (as JSON) and the files' hashes in ``seed-<s>/jobs/<name>.json``, last, so a job is
either recorded whole or redone; :meth:`Job.read_result` reads the result back.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import torch

from shallowcert.study.context import StageContext, cached_study_dataset
from shallowcert.study.record import Json, Record
from shallowcert.study.stage import StageName
from shallowcert.study.store import ArtifactStore, fingerprint, hash_files

if TYPE_CHECKING:
    from shallowcert.study.config import StudyConfig

log = logging.getLogger(__name__)

JobRecord = dict[str, Json]  # job, fingerprint, seconds, result (JSON), files (path -> SHA-256)


@dataclass(frozen=True)
class Job:
    """One piece of a stage's work for one seed.

    ``cost`` is the estimated time in seconds on one CPU thread (see
    :mod:`shallowcert.study.costs`); ``after`` names jobs of the same stage and seed that
    must have finished first (their files are then in ``ctx.out``).
    """

    name: str
    run: Callable[..., Record]
    result: type[Record]
    args: dict[str, Any] = field(default_factory=dict)
    cost: float = 0.0
    outputs: tuple[str, ...] = ()
    after: tuple[str, ...] = ()

    def read_result(self, record: JobRecord) -> Record:
        """The result held by a job record (written by :func:`execute`)."""
        return self.result.from_json(record["result"])


@dataclass(frozen=True)
class JobCall:
    """Everything a worker needs to run one job (picklable)."""

    config: StudyConfig
    run_dir: str
    stage: StageName
    seed: int
    job: Job
    fingerprint: str
    device: str
    threads: int


def job_fingerprint(stage_fingerprint: str, seed: int, job: Job) -> str:
    return fingerprint({"stage": stage_fingerprint, "seed": seed, "job": job.name, "args": job.args})


def execute(call: JobCall) -> JobRecord:
    """Run ``call.job`` with ``call.threads`` torch threads; write and return its record."""
    torch.set_num_threads(call.threads)
    store = ArtifactStore(call.run_dir)
    ctx = StageContext(call.config, store, call.stage, call.seed, lambda: cached_study_dataset(call.config.data),
                       device=torch.device(call.device))
    ctx.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    log.debug("job %s/seed-%d/%s started", call.stage, call.seed, call.job.name)
    result = call.job.run(ctx, **call.job.args)
    if not isinstance(result, call.job.result):
        raise TypeError(f"job {call.stage}/{call.job.name} returned {type(result).__name__}, "
                        f"not {call.job.result.__name__}")
    missing = [p for p in call.job.outputs if not (ctx.out / p).exists()]
    if missing:
        raise RuntimeError(f"job {call.stage}/{call.job.name} did not write {', '.join(missing)}")
    record = {"job": call.job.name, "fingerprint": call.fingerprint, "seconds": round(time.perf_counter() - start, 2),
              "result": result.to_json(), "files": hash_files(ctx.out, [ctx.out / p for p in call.job.outputs])}
    store.write_job(call.stage, call.seed, call.job.name, record)
    return record

