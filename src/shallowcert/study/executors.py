"""Where the study's jobs run: ``local`` (one after another in this process) or ``ray``
(in parallel on a Ray cluster: an embedded one started here, or one joined by address).

An executor takes :class:`~shallowcert.study.jobs.JobCall` objects with :meth:`submit` and
hands back finished ones with :meth:`wait`, so the runner's scheduling is the same for
both. With Ray each job gets one GPU when the study runs on CUDA, otherwise
``cpus_per_job`` CPUs (and that many torch threads); a worker that dies mid-job (killed,
out of memory) has its job retried up to :data:`RETRIES` times. The local executor gives
each job ``cpus_per_job`` torch threads too: a CPU job's numbers depend on its thread count
(the order of floating-point reductions), and this way the same seeds give the same
numbers on either executor.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from typing import Any, Protocol

from shallowcert.errors import UserError
from shallowcert.study.jobs import JobCall, JobRecord, execute

log = logging.getLogger(__name__)

EXECUTORS = ("ray", "local")
RETRIES = 3
Finished = tuple[JobCall, JobRecord]


class Executor(Protocol):
    parallelism: int  # jobs at a time
    threads: int  # torch threads per job

    def job_device(self, device: str) -> str:
        """The device a job uses where the study runs on ``device``."""

    def submit(self, call: JobCall) -> None: ...

    def wait(self) -> list[Finished]:
        """Block until at least one submitted job has finished; return those that have."""

    def close(self) -> None: ...


class LocalExecutor:
    """Runs each job in this process, in submission order; errors propagate as they are."""

    parallelism = 1

    def __init__(self, *, threads: int) -> None:
        self.threads = threads
        self._queue: deque[JobCall] = deque()

    def job_device(self, device: str) -> str:
        return device

    def submit(self, call: JobCall) -> None:
        self._queue.append(call)

    def wait(self) -> list[Finished]:
        call = self._queue.popleft()
        return [(call, execute(call))]

    def close(self) -> None:
        self._queue.clear()


def _remote_execute(call: JobCall) -> JobRecord:
    return execute(call)


class RayExecutor:
    """Runs jobs as Ray tasks: ``num_gpus=1`` each on CUDA, else ``cpus_per_job`` CPUs each."""

    def __init__(self, *, cpus: int, cpus_per_job: int, gpu: bool, address: str | None = None) -> None:
        import ray
        self._ray = ray
        self.threads = cpus_per_job
        env = {"TQDM_DISABLE": "1", "OMP_NUM_THREADS": str(cpus_per_job)}
        if address is None:
            # Ray starts its workers at nice 15; here the workers do the study's work, and on a
            # shared machine a lowered priority loses to every other process.
            os.environ.setdefault("RAY_worker_niceness", "0")
            ray.init(num_cpus=cpus, include_dashboard=False, configure_logging=False, log_to_driver=False,
                     object_store_memory=128 * 1024 ** 2, runtime_env={"env_vars": env})
        else:
            try:
                ray.init(address=address, configure_logging=False, log_to_driver=False, runtime_env={"env_vars": env})
            except ConnectionError as exc:
                raise UserError(f"cannot join the Ray cluster at {address}: {exc}") from None
        resources = ray.cluster_resources()
        self.parallelism = int(resources.get("GPU", 0)) if gpu else max(1, int(resources.get("CPU", 1)) // cpus_per_job)
        if self.parallelism < 1:
            raise UserError("the Ray cluster has no GPU, but the study asked for CUDA")
        self._task = ray.remote(num_gpus=1 if gpu else 0, num_cpus=0 if gpu else cpus_per_job, max_retries=RETRIES,
                                retry_exceptions=False)(_remote_execute)
        self._running: dict[Any, JobCall] = {}
        log.info("Ray: %s, %d job(s) at a time", resources, self.parallelism)

    def job_device(self, device: str) -> str:
        """Ray shows each GPU task only its own GPU (``CUDA_VISIBLE_DEVICES``): ``cuda`` there."""
        return "cuda" if device.startswith("cuda") else device

    def submit(self, call: JobCall) -> None:
        self._running[self._task.remote(call)] = call

    def wait(self) -> list[Finished]:
        done, _ = self._ray.wait(list(self._running), num_returns=1)
        finished = []
        for ref in done:
            call = self._running.pop(ref)
            try:
                finished.append((call, self._ray.get(ref)))
            except self._ray.exceptions.RayTaskError as exc:
                cause = exc.cause if isinstance(exc.cause, BaseException) else exc
                raise cause from None
        return finished

    def close(self) -> None:
        for ref in self._running:
            self._ray.cancel(ref, force=True)
        self._running.clear()
        self._ray.shutdown()


def make_executor(name: str, *, device: str, cpus: int | None = None, cpus_per_job: int = 1,
                  address: str | None = None) -> Executor:
    """The executor ``name`` (``ray`` or ``local``) for jobs on ``device``."""
    if name == "local":
        return LocalExecutor(threads=cpus_per_job)
    if name != "ray":
        raise UserError(f"unknown executor '{name}' (choose from {', '.join(EXECUTORS)})")
    return RayExecutor(cpus=cpus or os.cpu_count() or 1, cpus_per_job=cpus_per_job,
                       gpu=device.startswith("cuda"), address=address)
