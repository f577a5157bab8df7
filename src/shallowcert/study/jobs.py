"""Jobs: the independent pieces of work a stage is split into (one model trained, one model
attacked or certified), each run by an executor in any process and written on its own.

A job is a module-level function ``run(ctx, **args) -> dict`` with picklable ``args``; it
writes its files (``outputs``, relative to the seed directory ``RUN_DIR/<stage>/seed-<s>/``)
atomically and returns a JSON-serialisable result. :func:`execute` then records the
result and the files' hashes in ``seed-<s>/jobs/<name>.json``, last, so a job is either
recorded whole or redone.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from shallowcert.study.context import StageContext, cached_study_dataset
from shallowcert.study.store import ArtifactStore, fingerprint, hash_files

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """One piece of a stage's work for one seed.

    ``cost`` is the estimated time in seconds on one CPU thread (see
    :mod:`shallowcert.study.costs`); ``after`` names jobs of the same stage and seed that
    must have finished first (their files are then in ``ctx.out``).
    """

    name: str
    run: Callable[..., dict[str, Any]]
    args: dict[str, Any] = field(default_factory=dict)
    cost: float = 0.0
    outputs: tuple[str, ...] = ()
    after: tuple[str, ...] = ()


@dataclass(frozen=True)
class JobCall:
    """Everything a worker needs to run one job (picklable)."""

    config: dict[str, Any]
    run_dir: str
    stage: str
    seed: int
    job: Job
    fingerprint: str
    device: str
    threads: int


def job_fingerprint(stage_fingerprint: str, seed: int, job: Job) -> str:
    return fingerprint({"stage": stage_fingerprint, "seed": seed, "job": job.name, "args": job.args})


def execute(call: JobCall) -> dict[str, Any]:
    """Run ``call.job`` with ``call.threads`` torch threads; write and return its record."""
    torch.set_num_threads(call.threads)
    store = ArtifactStore(call.run_dir)
    ctx = StageContext(call.config, store, call.stage, call.seed, lambda: cached_study_dataset(call.config),
                       device=torch.device(call.device))
    ctx.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    log.debug("job %s/seed-%d/%s started", call.stage, call.seed, call.job.name)
    result = call.job.run(ctx, **call.job.args)
    missing = [p for p in call.job.outputs if not (ctx.out / p).exists()]
    if missing:
        raise RuntimeError(f"job {call.stage}/{call.job.name} did not write {', '.join(missing)}")
    record = {"job": call.job.name, "fingerprint": call.fingerprint, "seconds": round(time.perf_counter() - start, 2),
              "result": result, "files": hash_files(ctx.out, [ctx.out / p for p in call.job.outputs])}
    store.write_job(call.stage, call.seed, call.job.name, record)
    return record

