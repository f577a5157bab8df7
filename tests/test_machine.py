"""The run facts that say what a time was measured on: source commit and load average."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from shallowcert.study import machine


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout.strip()


def test_commit_of_a_checkout_and_its_dirty_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    git(tmp_path, "init", "-q")
    (tmp_path / "module.py").write_text("x = 1\n")
    git(tmp_path, "add", "module.py")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    monkeypatch.setattr(machine, "_PACKAGE_DIR", tmp_path)
    head = git(tmp_path, "rev-parse", "HEAD")
    assert machine.source_commit() == head
    (tmp_path / "untracked.txt").write_text("not part of the source\n")
    assert machine.source_commit() == head
    (tmp_path / "module.py").write_text("x = 2\n")
    assert machine.source_commit() == head + "-dirty"


def test_no_commit_outside_a_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(machine, "_PACKAGE_DIR", tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert machine.source_commit() is None


def test_load_summary_is_start_peak_end(monkeypatch: pytest.MonkeyPatch) -> None:
    loads = iter([0.5, 3.0, 1.25, 0.75])
    monkeypatch.setattr(machine.os, "getloadavg", lambda: (next(loads), 0.0, 0.0))
    monitor = machine.LoadMonitor()
    monitor.sample()
    monitor.sample()
    assert monitor.summary() == machine.MachineLoad(start=0.5, peak=3.0, end=0.75)


def test_no_load_where_the_platform_has_none(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing() -> tuple[float, float, float]:
        raise OSError("no load average")
    monkeypatch.setattr(machine.os, "getloadavg", missing)
    assert machine.LoadMonitor().summary() is None
