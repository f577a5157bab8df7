"""The artifact store: one directory per stage under the run directory, each complete or absent.

A stage builds its artifacts in a hidden temporary directory; when it finishes, a
``manifest.json`` listing every file with its SHA-256, the stage's config fingerprint and
its wall time is written, and the directory is renamed to ``RUN_DIR/<stage>/`` in one
step. A stage is *valid* when its manifest exists, its fingerprint equals the one the
current config gives, and every listed file still has its recorded hash. Anything else
(a crash mid-stage, a changed config, a corrupted or deleted file) makes it redone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from shallowcert import atomic

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
RESULTS = "results.json"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(obj: Any) -> str:
    """A stable hash of a JSON-serialisable object (the config a stage depends on)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


class ArtifactStore:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def stage_dir(self, stage: str) -> Path:
        return self.root / stage

    def manifest(self, stage: str) -> dict[str, Any] | None:
        path = self.stage_dir(stage) / MANIFEST
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def problem(self, stage: str, expected_fingerprint: str) -> str | None:
        """Why ``stage`` cannot be reused (None when it is complete and valid)."""
        manifest = self.manifest(stage)
        if manifest is None:
            return "not built" if not self.stage_dir(stage).exists() else "no valid manifest"
        if manifest.get("fingerprint") != expected_fingerprint:
            return "its configuration changed"
        for name, digest in manifest.get("files", {}).items():
            path = self.stage_dir(stage) / name
            if not path.is_file():
                return f"{name} is missing"
            if file_sha256(path) != digest:
                return f"{name} is corrupted (hash mismatch)"
        return None

    def results(self, stage: str) -> dict[str, Any]:
        return json.loads((self.stage_dir(stage) / RESULTS).read_text())

    @contextmanager
    def building(self, stage: str, stage_fingerprint: str) -> Iterator[Path]:
        """Yield an empty work directory; on success it becomes ``RUN_DIR/<stage>`` with a manifest."""
        start = time.perf_counter()
        with atomic.atomic_directory(self.stage_dir(stage)) as work:
            yield work
            files = {str(p.relative_to(work)): file_sha256(p) for p in sorted(work.rglob("*"))
                     if p.is_file() and not p.name.startswith(".")}
            atomic.write_json(work / MANIFEST, {"stage": stage, "fingerprint": stage_fingerprint,
                                                "seconds": round(time.perf_counter() - start, 2), "files": files})

    def invalidate(self, stage: str) -> None:
        target = self.stage_dir(stage)
        if target.exists():
            log.info("discarding stage %s", stage)
            shutil.rmtree(target)
