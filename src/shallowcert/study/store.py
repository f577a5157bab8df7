"""The artifact store: one directory per stage under the run directory, built job by job.

Layout of a stage (``RUN_DIR/<stage>/``)::

    stage.json                  the stage's config fingerprint (written when the stage starts)
    seed-<s>/                   one training seed's artifacts: model directories, CSV, figures
    seed-<s>/jobs/<job>.json    one finished job: fingerprint, result, hashes of the files it wrote
    seed-<s>/results.json       that seed's results (what later stages of the same seed read)
    results.json                {"seeds": [...], "by_seed": {"<s>": <seed s's results>}}
    manifest.json               every file with its SHA-256 and the results format: the stage is complete

Every file is written atomically, and a job's record is written after its files, so a crash
loses at most the jobs that were running. A stage is *complete and valid* when its manifest
exists, its fingerprint equals the one the current config gives and every listed file still
has its recorded hash; a *job* is reusable when its record's fingerprint matches and its
files still have their recorded hashes. Anything else is redone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from shallowcert import atomic

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
RESULTS_FORMAT = 2  # the layout of results.json that the result records define (recorded in each manifest)
RESULTS = "results.json"
STAGE_FILE = "stage.json"
JOBS = "jobs"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(obj: Any) -> str:
    """A stable hash of a JSON-serialisable object (the config a stage depends on)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def hash_files(root: Path, paths: list[Path]) -> dict[str, str]:
    """SHA-256 of every (non-hidden) file at or under ``paths``, keyed by path relative to ``root``."""
    files: dict[str, str] = {}
    for path in paths:
        found = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for p in found:
            if not p.name.startswith("."):
                files[str(p.relative_to(root))] = file_sha256(p)
    return files


def _hash_problem(root: Path, files: dict[str, str]) -> str | None:
    for name, digest in files.items():
        path = root / name
        if not path.is_file():
            return f"{name} is missing"
        if file_sha256(path) != digest:
            return f"{name} is corrupted (hash mismatch)"
    return None


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data


class ArtifactStore:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def stage_dir(self, stage: str) -> Path:
        return self.root / stage

    def seed_dir(self, stage: str, seed: int) -> Path:
        return self.stage_dir(stage) / f"seed-{seed}"

    def job_file(self, stage: str, seed: int, job: str) -> Path:
        return self.seed_dir(stage, seed) / JOBS / f"{job}.json"

    def manifest(self, stage: str) -> dict[str, Any] | None:
        return _read_json(self.stage_dir(stage) / MANIFEST)

    def problem(self, stage: str, expected_fingerprint: str) -> str | None:
        """Why ``stage`` cannot be reused as a whole (None when it is complete and valid)."""
        manifest = self.manifest(stage)
        if manifest is None:
            return "not built" if not self.stage_dir(stage).exists() else "not complete"
        if manifest.get("fingerprint") != expected_fingerprint:
            return "its configuration or seeds changed"
        return _hash_problem(self.stage_dir(stage), manifest.get("files", {}))

    def seed_results(self, stage: str, seed: int) -> dict[str, Any]:
        """Seed ``seed``'s results of ``stage`` (JSON)."""
        data: dict[str, Any] = json.loads((self.seed_dir(stage, seed) / RESULTS).read_text())
        return data

    def begin(self, stage: str, config_fingerprint: str) -> None:
        """Open ``stage`` for (re)building: drop its manifest; drop everything when its config changed."""
        target = self.stage_dir(stage)
        recorded = _read_json(target / STAGE_FILE)
        if target.exists() and (recorded or {}).get("fingerprint") != config_fingerprint:
            log.info("discarding stage %s (built for another configuration)", stage)
            shutil.rmtree(target)
        (target / MANIFEST).unlink(missing_ok=True)
        atomic.write_json(target / STAGE_FILE, {"stage": stage, "fingerprint": config_fingerprint})

    def finished_job(self, stage: str, seed: int, job: str, job_fingerprint: str) -> dict[str, Any] | None:
        """The record of a finished, intact job with this fingerprint (None: the job must run)."""
        record = _read_json(self.job_file(stage, seed, job))
        if record is None or record.get("fingerprint") != job_fingerprint:
            return None
        problem = _hash_problem(self.seed_dir(stage, seed), record.get("files", {}))
        if problem is not None:
            log.info("job %s/seed-%d/%s is redone: %s", stage, seed, job, problem)
            return None
        return record

    def write_job(self, stage: str, seed: int, job: str, record: dict[str, Any]) -> None:
        atomic.write_json(self.job_file(stage, seed, job), record)

    def finish(self, stage: str, manifest_fingerprint: str, results: dict[str, Any], seconds: float) -> None:
        """Write the stage's results, then its manifest (last: the stage is complete); the
        manifest records :data:`RESULTS_FORMAT`, the layout of the results."""
        root = self.stage_dir(stage)
        atomic.write_json(root / RESULTS, results)
        files = hash_files(root, [p for p in sorted(root.iterdir()) if p.name != MANIFEST])
        atomic.write_json(root / MANIFEST, {"stage": stage, "fingerprint": manifest_fingerprint,
                                            "format": RESULTS_FORMAT, "seconds": round(seconds, 2), "files": files})
