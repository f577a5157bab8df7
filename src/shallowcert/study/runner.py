"""Run the study's stages in order, reusing every stage that is complete and valid.

Each stage's fingerprint hashes the config sections it reads, the data section, the
seed and the fingerprint of the stage before it, so changing a stage's config redoes
that stage and every later one, never an earlier one.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from pathlib import Path
from typing import Any

import yaml

from shallowcert import __version__, atomic
from shallowcert.data import data_dir_for, dataset_info, files_found
from shallowcert.errors import UserError
from shallowcert.study.context import StageContext, study_dataset
from shallowcert.study.stage import Stage
from shallowcert.study.store import RESULTS, ArtifactStore, fingerprint

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
CONFIG_FILE = "config.yaml"


def all_stages() -> list[Stage]:
    from shallowcert.study.stages import attacks, certification, distillation, improvement, pruning, teacher, \
        temperature
    return [m.STAGE for m in (teacher, distillation, temperature, pruning, attacks, certification, improvement)]


def check_data_present(config: dict[str, Any]) -> None:
    """Fail before any work when the dataset's files are not where they are looked for."""
    name, data_dir = config["data"]["dataset"], config["data"]["data_dir"]
    if not files_found(name, data_dir):
        info = dataset_info(name)
        raise UserError(f"the study needs the {info.description} files ({', '.join(info.required)}) in "
                        f"{data_dir_for(name, data_dir)}; they were not found (set data.data_dir in the config, "
                        f"pass --data-dir, or set SHALLOWCERT_DATA)")


def stage_fingerprints(config: dict[str, Any], stages: list[Stage]) -> dict[str, str]:
    upstream = fingerprint({"data": config["data"], "seed": config["seed"]})
    prints: dict[str, str] = {}
    for stage in stages:
        upstream = fingerprint({"stage": stage.name, "upstream": upstream,
                                "config": {k: config[k] for k in stage.sections}})
        prints[stage.name] = upstream
    return prints


def environment() -> dict[str, Any]:
    import numpy
    import torch
    return {"shallowcert": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "numpy": numpy.__version__, "platform": platform.platform(), "processor": platform.processor(),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()}


def run_study(config: dict[str, Any], run_dir: str | Path, *, resume: bool = False,
              stages: list[Stage] | None = None) -> dict[str, Any]:
    """Run (or resume) the study; return the run facts written to ``run.json``."""
    stages = stages or all_stages()
    store = ArtifactStore(run_dir)
    root = Path(run_dir)
    if root.exists() and any(root.iterdir()) and not resume:
        raise UserError(f"{root} is not empty: pass --resume to continue that run, or choose a new --out")
    check_data_present(config)
    root.mkdir(parents=True, exist_ok=True)
    atomic.write_text(root / CONFIG_FILE, yaml.safe_dump(config, sort_keys=False))
    prints = stage_fingerprints(config, stages)
    dataset_cache: dict[str, Any] = {}

    def dataset():
        if "d" not in dataset_cache:
            dataset_cache["d"] = study_dataset(config)
        return dataset_cache["d"]

    facts: dict[str, Any] = {"config": config, "environment": environment(), "stages": {}}
    start = time.perf_counter()
    for stage in stages:
        problem = store.problem(stage.name, prints[stage.name])
        if problem is None:
            log.info("stage %-13s complete and valid: reused", stage.name)
            facts["stages"][stage.name] = {"title": stage.title, "reused": True,
                                           "seconds": store.manifest(stage.name)["seconds"]}
            continue
        log.info("stage %-13s running (%s)", stage.name, problem)
        store.invalidate(stage.name)
        with store.building(stage.name, prints[stage.name]) as work:
            ctx = StageContext(config, store, work, dataset)
            results = stage.run(ctx)
            atomic.write_json(work / RESULTS, results)
        facts["stages"][stage.name] = {"title": stage.title, "reused": False,
                                       "seconds": store.manifest(stage.name)["seconds"]}
    facts["wall_seconds"] = round(time.perf_counter() - start, 2)
    atomic.write_json(root / RUN_FILE, facts)
    return facts
