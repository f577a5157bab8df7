"""Runner and artifact store with stand-in stages: reuse, invalidation, corruption, crashes."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from shallowcert.errors import UserError
from shallowcert.study.config import load_config
from shallowcert.study.runner import run_study
from shallowcert.study.stage import Stage


class Recorder:
    """Stand-in stages that record when they run and write one artifact each."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.fail: str | None = None

    def stage(self, name: str, sections: tuple[str, ...]) -> Stage:
        def run(ctx):
            self.calls.append(name)
            if self.fail == name:
                (ctx.out / "half-written.bin").write_bytes(b"x")
                raise RuntimeError("crash")
            (ctx.out / "artifact.txt").write_text(f"{name} epochs={ctx.config['teacher']['training']['epochs']}")
            return {"stage": name}
        return Stage(name, name.title(), sections, run)

    def stages(self) -> list[Stage]:
        return [self.stage("teacher", ("teacher",)), self.stage("distillation", ("students",)),
                self.stage("attacks", ("attacks",))]


@pytest.fixture
def config():
    return load_config(preset="quick")


def test_resume_reuses_complete_stages(tmp_path: Path, config) -> None:
    rec = Recorder()
    run_study(config, tmp_path / "run", stages=rec.stages())
    facts = run_study(config, tmp_path / "run", resume=True, stages=rec.stages())
    assert rec.calls == ["teacher", "distillation", "attacks"]
    assert all(s["reused"] for s in facts["stages"].values())
    assert json.loads((tmp_path / "run" / "teacher" / "results.json").read_text()) == {"stage": "teacher"}


def test_non_empty_run_dir_needs_resume(tmp_path: Path, config) -> None:
    run_study(config, tmp_path / "run", stages=Recorder().stages())
    with pytest.raises(UserError, match="--resume"):
        run_study(config, tmp_path / "run", stages=Recorder().stages())


def test_changing_a_stage_config_redoes_it_and_later_stages_only(tmp_path: Path, config) -> None:
    run_study(config, tmp_path / "run", stages=Recorder().stages())
    changed = copy.deepcopy(config)
    changed["students"]["training"]["epochs"] += 1
    rec = Recorder()
    run_study(changed, tmp_path / "run", resume=True, stages=rec.stages())
    assert rec.calls == ["distillation", "attacks"]


def test_changing_data_redoes_everything(tmp_path: Path, config) -> None:
    run_study(config, tmp_path / "run", stages=Recorder().stages())
    changed = copy.deepcopy(config)
    changed["seed"] = 7
    rec = Recorder()
    run_study(changed, tmp_path / "run", resume=True, stages=rec.stages())
    assert rec.calls == ["teacher", "distillation", "attacks"]


@pytest.mark.parametrize("damage", ["corrupt", "delete", "manifest"])
def test_damaged_artifact_is_detected_and_redone(tmp_path: Path, config, damage: str) -> None:
    run_study(config, tmp_path / "run", stages=Recorder().stages())
    stage_dir = tmp_path / "run" / "distillation"
    if damage == "corrupt":
        (stage_dir / "artifact.txt").write_text("tampered")
    elif damage == "delete":
        (stage_dir / "artifact.txt").unlink()
    else:
        (stage_dir / "manifest.json").write_text("{not json")
    rec = Recorder()
    run_study(config, tmp_path / "run", resume=True, stages=rec.stages())
    assert rec.calls == ["distillation"]
    assert (stage_dir / "artifact.txt").read_text().startswith("distillation")


def test_a_crash_leaves_no_half_written_stage(tmp_path: Path, config) -> None:
    rec = Recorder()
    rec.fail = "distillation"
    with pytest.raises(RuntimeError):
        run_study(config, tmp_path / "run", stages=rec.stages())
    run_dir = tmp_path / "run"
    assert (run_dir / "teacher" / "manifest.json").is_file()
    assert not (run_dir / "distillation").exists()
    assert not [p.name for p in run_dir.iterdir() if p.name.startswith(".")]
    rec = Recorder()
    run_study(config, run_dir, resume=True, stages=rec.stages())
    assert rec.calls == ["distillation", "attacks"]
