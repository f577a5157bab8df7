"""``shallowcert study``: the whole experiment chain, once per seed, as jobs on Ray (or in
this process), resumable job by job; then the report. ``--plan`` lists the jobs first."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os

from shallowcert.cli.common import add_device_argument, device_from_args, positive_int, print_json
from shallowcert.errors import UserError
from shallowcert.report import write_report
from shallowcert.study.config import StudyConfig, load_config
from shallowcert.study.costs import wall_seconds
from shallowcert.study.executors import EXECUTORS, make_executor
from shallowcert.study.presets import PRESETS
from shallowcert.study.runner import plan_study, run_study

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("study", help="run the whole study (resumable) and write the report")
    p.add_argument("config", nargs="?", default=None, help="YAML config file (or use --preset)")
    p.add_argument("--preset", choices=sorted(PRESETS), default=None)
    p.add_argument("--out", default=None, metavar="RUN_DIR", help="run directory (needed unless --plan)")
    p.add_argument("--data-dir", default=None, help="directory of the dataset's files (overrides data.data_dir)")
    p.add_argument("--resume", action="store_true", help="reuse every finished job and complete stage of RUN_DIR")
    p.add_argument("--plan", action="store_true",
                   help="list every job with its estimated cost and the total, then stop (writes nothing)")
    p.add_argument("--executor", choices=EXECUTORS, default="ray",
                   help="ray: jobs in parallel on an embedded Ray (or --ray-address); local: one after another "
                        "in this process (debugging)")
    p.add_argument("--ray-address", default=None, metavar="ADDRESS", help="join this Ray cluster instead of "
                   "starting one")
    p.add_argument("--cpus", type=positive_int, default=None,
                   help="CPUs for the embedded Ray (default: all)")
    p.add_argument("--cpus-per-job", type=positive_int, default=1,
                   help="CPUs and torch threads per job when not on CUDA, on either executor; the numbers depend "
                        "on it, not on the executor (default 1)")
    add_device_argument(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config, preset=args.preset)
    if args.data_dir is not None:
        config = dataclasses.replace(config, data=dataclasses.replace(config.data, data_dir=args.data_dir))
    device = device_from_args(args)
    if args.plan:
        return show_plan(config, args)
    if args.out is None:
        raise UserError("--out RUN_DIR is needed to run the study")
    executor = make_executor(args.executor, device=str(device), cpus=args.cpus, cpus_per_job=args.cpus_per_job,
                             address=args.ray_address)
    facts = run_study(config, args.out, resume=args.resume, executor=executor, device=device)
    paths = write_report(args.out)
    for name, stage in facts.stages.items():
        log.info("%-13s %8.1f s in %d job(s)%s", name, stage.seconds, stage.jobs, " (reused)" if stage.reused else "")
    print(f"study finished in {facts.wall_seconds:.0f} s; report: {paths['html']}")
    return 0


def show_plan(config: StudyConfig, args: argparse.Namespace) -> int:
    """Print every job with its estimated cost (seconds on one CPU thread) and the totals."""
    jobs = plan_study(config, args.out or os.devnull)
    todo = [job for job in jobs if not job.done]
    parallel = args.cpus or os.cpu_count() or 1
    parallel = 1 if args.executor == "local" else max(1, parallel // args.cpus_per_job)
    total = sum(job.cost_seconds for job in todo)
    print_json({"jobs": [{"stage": j.stage, "seed": j.seed, "job": j.job, "estimated_seconds": j.cost_seconds,
                          "after": list(j.after), "done": j.done} for j in jobs],
                "jobs_to_run": len(todo), "jobs_done": len(jobs) - len(todo),
                "estimated_seconds_one_thread": round(total, 1),
                "parallel_jobs": parallel,
                "estimated_wall_seconds": round(wall_seconds([job.cost_seconds for job in todo], parallel), 1),
                "note": "maximum epochs, measured training-step times, rough bound-cost factors; the wall time "
                        "adds a start per job and the slowdown of jobs sharing the machine (shallowcert.study.costs)"})
    return 0
