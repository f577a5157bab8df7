"""Runner, jobs and artifact store with stand-in stages: reuse, invalidation, corruption,
crashes (of a job, of the driver, of a Ray worker), seeds and the results format."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from shallowcert.errors import UserError
from shallowcert.study.config import StudyConfig, load_config
from shallowcert.study.jobs import Job
from shallowcert.study.record import Record
from shallowcert.study.runner import run_study
from shallowcert.study.stage import Stage, StageName


@dataclass(frozen=True)
class Artifact(Record):
    stage: StageName
    seed: int


def write_artifact(ctx, *, log: str, crash: str | None = None, kill_once: str | None = None) -> Artifact:
    """A stand-in job: logs its call, may crash or kill its own process once, writes one file."""
    name = f"{ctx.stage}/{ctx.seed}/{ctx.config.teacher.training.epochs}"
    with open(log, "a") as f:
        f.write(name + "\n")
    if crash is not None and crash == ctx.stage:
        (ctx.out / "half-written.bin").write_bytes(b"x")
        raise RuntimeError("crash")
    if kill_once is not None and not os.path.exists(kill_once):
        Path(kill_once).write_text("killed once")
        os.kill(os.getpid(), signal.SIGKILL)
    (ctx.out / "artifact.txt").write_text(name)
    return Artifact(ctx.stage, ctx.seed)


class Recorder:
    """Stand-in stages (one or two jobs each) whose calls are logged to a file."""

    def __init__(self, tmp_path: Path) -> None:
        self.log = tmp_path / "calls.log"
        self.options: dict = {}

    def calls(self, *, with_seed: bool = False) -> list[str]:
        """The stages (``stage/seed`` with ``with_seed``) of the jobs run since the last call."""
        calls = self.log.read_text().split() if self.log.exists() else []
        self.log.unlink(missing_ok=True)
        return ["/".join(c.split("/")[:2 if with_seed else 1]) for c in calls]

    def stage(self, name: str, sections: tuple[str, ...], *, second_job: bool = False) -> Stage:
        def jobs(ctx, costs):
            args = {"log": str(self.log), **self.options.get(name, {})}
            found = [Job("write", write_artifact, Artifact, args, outputs=("artifact.txt",))]
            if second_job:
                found.append(Job("after-write", write_artifact, Artifact, {"log": str(self.log)}, after=("write",)))
            return found
        return Stage(StageName(name), name.title(), sections, jobs, lambda ctx, results: results.get("write", Artifact),
                     Artifact)

    def stages(self) -> list[Stage]:
        return [self.stage("teacher", ("teacher",)), self.stage("distillation", ("students",)),
                self.stage("attacks", ("attacks",))]


def with_seeds(config: StudyConfig, seeds: list[int]) -> StudyConfig:
    return dataclasses.replace(config, seeds=seeds)


@pytest.fixture
def config() -> StudyConfig:
    return with_seeds(load_config(preset="quick"), [0])


def test_resume_reuses_complete_stages(tmp_path: Path, config) -> None:
    rec = Recorder(tmp_path)
    run_study(config, tmp_path / "run", stages=rec.stages(), progress=False)
    facts = run_study(config, tmp_path / "run", resume=True, stages=rec.stages(), progress=False)
    assert rec.calls() == ["teacher", "distillation", "attacks"]
    assert all(s.reused for s in facts.stages.values())


def test_results_format_has_every_seed(tmp_path: Path, config) -> None:
    config = with_seeds(config, [3, 1])
    rec = Recorder(tmp_path)
    run_study(config, tmp_path / "run", stages=rec.stages(), progress=False)
    results = json.loads((tmp_path / "run" / "teacher" / "results.json").read_text())
    assert results == {"seeds": [3, 1], "by_seed": {"3": {"stage": "teacher", "seed": 3},
                                                   "1": {"stage": "teacher", "seed": 1}}}
    for seed in (3, 1):
        seed_dir = tmp_path / "run" / "teacher" / f"seed-{seed}"
        assert (seed_dir / "artifact.txt").is_file() and (seed_dir / "jobs" / "write.json").is_file()
        assert json.loads((seed_dir / "results.json").read_text())["seed"] == seed


def test_adding_a_seed_runs_only_its_jobs(tmp_path: Path, config) -> None:
    rec = Recorder(tmp_path)
    run_study(config, tmp_path / "run", stages=rec.stages(), progress=False)
    rec.calls()
    config = with_seeds(config, [0, 1])
    run_study(config, tmp_path / "run", resume=True, stages=rec.stages(), progress=False)
    results = json.loads((tmp_path / "run" / "attacks" / "results.json").read_text())
    assert results["seeds"] == [0, 1]
    assert rec.calls(with_seed=True) == ["teacher/1", "distillation/1", "attacks/1"]


def test_non_empty_run_dir_needs_resume(tmp_path: Path, config) -> None:
    run_study(config, tmp_path / "run", stages=Recorder(tmp_path).stages(), progress=False)
    with pytest.raises(UserError, match="--resume"):
        run_study(config, tmp_path / "run", stages=Recorder(tmp_path).stages(), progress=False)


def test_changing_a_stage_config_redoes_it_and_later_stages_only(tmp_path: Path, config) -> None:
    rec = Recorder(tmp_path)
    run_study(config, tmp_path / "run", stages=rec.stages(), progress=False)
    rec.calls()
    training = dataclasses.replace(config.students.training, epochs=config.students.training.epochs + 1)
    changed = dataclasses.replace(config, students=dataclasses.replace(config.students, training=training))
    run_study(changed, tmp_path / "run", resume=True, stages=rec.stages(), progress=False)
    assert rec.calls() == ["distillation", "attacks"]


def test_changing_data_redoes_everything(tmp_path: Path, config) -> None:
    rec = Recorder(tmp_path)
    run_study(config, tmp_path / "run", stages=rec.stages(), progress=False)
    rec.calls()
    changed = dataclasses.replace(config, data=dataclasses.replace(config.data, split_seed=7))
    run_study(changed, tmp_path / "run", resume=True, stages=rec.stages(), progress=False)
    assert rec.calls() == ["teacher", "distillation", "attacks"]


@pytest.mark.parametrize("damage", ["corrupt", "delete", "manifest"])
def test_damaged_artifact_is_detected_and_redone(tmp_path: Path, config, damage: str) -> None:
    rec = Recorder(tmp_path)
    run_study(config, tmp_path / "run", stages=rec.stages(), progress=False)
    rec.calls()
    seed_dir = tmp_path / "run" / "distillation" / "seed-0"
    if damage == "corrupt":
        (seed_dir / "artifact.txt").write_text("tampered")
    elif damage == "delete":
        (seed_dir / "artifact.txt").unlink()
    else:
        (tmp_path / "run" / "distillation" / "manifest.json").write_text("{not json")
    run_study(config, tmp_path / "run", resume=True, stages=rec.stages(), progress=False)
    assert rec.calls() == ([] if damage == "manifest" else ["distillation"])
    assert (seed_dir / "artifact.txt").read_text().startswith("distillation")
    assert json.loads((tmp_path / "run" / "distillation" / "manifest.json").read_text())["files"]


def test_a_crash_keeps_finished_jobs_and_resume_redoes_only_the_rest(tmp_path: Path, config) -> None:
    """A job that fails stops the driver (a simulated driver crash): finished jobs stay recorded,
    the stage is not complete (no manifest, no results), and a resume runs only what is left."""
    rec = Recorder(tmp_path)
    stages = [rec.stage("teacher", ("teacher",)), rec.stage("distillation", ("students",), second_job=True),
              rec.stage("attacks", ("attacks",))]
    rec.options["distillation"] = {"crash": "distillation"}
    with pytest.raises(RuntimeError):
        run_study(config, tmp_path / "run", stages=stages, progress=False)
    run_dir = tmp_path / "run"
    assert (run_dir / "teacher" / "manifest.json").is_file()
    assert not (run_dir / "distillation" / "manifest.json").exists()
    assert not (run_dir / "distillation" / "seed-0" / "jobs" / "write.json").exists()
    assert not [p for p in run_dir.rglob(".*") if p.name.endswith(".tmp")]
    assert rec.calls() == ["teacher", "distillation"]
    rec.options.clear()
    run_study(config, run_dir, resume=True, stages=stages, progress=False)
    assert rec.calls() == ["distillation", "distillation", "attacks"]


@pytest.mark.slow
def test_a_killed_ray_worker_loses_nothing(tmp_path: Path, config) -> None:
    """A job kills its own worker process the first time it runs: Ray retries it on a new
    worker, the study completes, and a resume afterwards redoes nothing."""
    ray = pytest.importorskip("ray")
    from shallowcert.study.executors import RayExecutor
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    config = with_seeds(config, [0, 1])
    rec = Recorder(tmp_path)
    rec.options["distillation"] = {"kill_once": str(tmp_path / "killed.marker")}
    executor = RayExecutor(cpus=2, cpus_per_job=1, gpu=False)
    run_study(config, tmp_path / "run", stages=rec.stages(), executor=executor, progress=False)
    assert (tmp_path / "killed.marker").is_file()
    calls = rec.calls()
    assert calls.count("teacher") == 2 and calls.count("attacks") == 2
    assert calls.count("distillation") == 3  # the killed attempt, its retry and the other seed
    results = json.loads((tmp_path / "run" / "distillation" / "results.json").read_text())
    assert results["by_seed"] == {"0": {"stage": "distillation", "seed": 0}, "1": {"stage": "distillation", "seed": 1}}
    run_study(config, tmp_path / "run", resume=True, stages=rec.stages(), progress=False)
    assert rec.calls() == []


def test_a_stage_in_another_results_format_is_collected_again_without_rerunning_jobs(tmp_path: Path, config) -> None:
    """A manifest from another version (its fingerprint covers the results format) makes a
    resume re-collect the stage from its jobs' records; no job runs again."""
    rec = Recorder(tmp_path)
    run_study(config, tmp_path / "run", stages=rec.stages(), progress=False)
    rec.calls()
    manifest_path = tmp_path / "run" / "distillation" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps({**manifest, "fingerprint": "written-by-v1", "format": 1}))
    facts = run_study(config, tmp_path / "run", resume=True, stages=rec.stages(), progress=False)
    assert rec.calls() == []
    assert not facts.stages["distillation"].reused and facts.stages["distillation"].jobs_reused == 1
    assert json.loads(manifest_path.read_text())["format"] == 2


def test_a_job_record_in_another_layout_is_redone(tmp_path: Path, config) -> None:
    rec = Recorder(tmp_path)
    run_study(config, tmp_path / "run", stages=rec.stages(), progress=False)
    rec.calls()
    (tmp_path / "run" / "attacks" / "manifest.json").unlink()
    job = tmp_path / "run" / "attacks" / "seed-0" / "jobs" / "write.json"
    record = json.loads(job.read_text())
    job.write_text(json.dumps({**record, "result": {**record["result"], "written_by": "v1"}}))
    run_study(config, tmp_path / "run", resume=True, stages=rec.stages(), progress=False)
    assert rec.calls() == ["attacks"]
    assert json.loads(job.read_text())["result"] == {"stage": "attacks", "seed": 0}


def test_wall_time_adds_a_start_per_job_and_the_shared_slowdown() -> None:
    from shallowcert.study.costs import JOB_START, SHARED_SLOWDOWN, wall_seconds

    assert wall_seconds([100.0, 300.0], 1) == pytest.approx(400.0 + 2 * JOB_START)  # alone: no slowdown
    assert wall_seconds([100.0, 300.0], 2) == pytest.approx((400.0 * SHARED_SLOWDOWN + 2 * JOB_START) / 2)
    assert wall_seconds([], 2) == 0.0
