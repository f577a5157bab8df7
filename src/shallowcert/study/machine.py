"""What a run's times depend on besides the code: the source commit and the machine's load.

A wall time means little without the load it was measured under (another job on a 2-core
machine doubles it), so a run records the one-minute load average (runnable processes,
:func:`os.getloadavg`) when it starts, its peak as the run's jobs finish, and at the end.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from shallowcert.study.record import Record

_PACKAGE_DIR = Path(__file__).resolve().parents[1]


def source_commit() -> str | None:
    """The git commit of the package's source, ``-dirty`` appended when tracked files differ
    from it; ``None`` for an installed (non-checkout) package or without git."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(_PACKAGE_DIR), *args], capture_output=True, text=True,
                              check=True, timeout=10).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".")
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def one_minute_load() -> float | None:
    """The one-minute load average, ``None`` where the platform has none."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


@dataclass(frozen=True)
class MachineLoad(Record):
    """One-minute load averages of a run: at its start, the highest seen, at its end."""

    start: float
    peak: float
    end: float


class LoadMonitor:
    """Samples the one-minute load average whenever :meth:`sample` is called."""

    def __init__(self) -> None:
        first = one_minute_load()
        self.samples = [first] if first is not None else []

    def sample(self) -> None:
        load = one_minute_load()
        if load is not None:
            self.samples.append(load)

    def summary(self) -> MachineLoad | None:
        self.sample()
        if not self.samples:
            return None
        return MachineLoad(self.samples[0], max(self.samples), self.samples[-1])
