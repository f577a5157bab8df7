"""The whole study chain on a small slice of real Fashion-MNIST, two seeds: report, executors,
kill + resume, plan.

One uninterrupted run on Ray is compared with a run on the local executor killed (SIGKILL)
once its first stage and a few jobs of the second are done, then resumed: the results must
be identical (same seeds, same numbers whichever executor) and the finished jobs not redone.
"""

from __future__ import annotations

import json
import re
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from shallowcert.report.results import correct_per_point, radii_columns, read_stage
from shallowcert.study.stage import StageName
from shallowcert.models import load_model
from shallowcert.models.spec import expand
from shallowcert.study.stages.certification import ROLES, CertificationResults
from shallowcert.study.stages.teacher import TeacherResults

TINY = """
name: tiny
seeds: [0, 1]
data: {train_limit: 400, val_size: 200, transfer_limit: 800}
teacher: {spec: "teacher-svhn:4-4-8-16", training: {epochs: 2, batch_size: 64}}
students: {snn: [8], scnn1: [2], scnn2: ["2-2"], training: {epochs: 1, batch_size: 64}}
temperature: {scnn2: ["2-2"], temperatures: [1.0, 4.0]}
attacks: {eps: [0.0, 0.05, 0.1], steps: 3, points: 30}
certification:
  teachers: [cert-teacher, distillation-teacher]
  teacher_spec: "cert-teacher:4-4-8-8-16"
  student_spec: "snn:16"
  eps: 0.02
  train_method: ibp
  method: crown
  warmup_epochs: 1
  points: 12
  radius_rtol: 0.1
  pgd_eps: [0.0, 0.02]
  exact_points: 2
  exact_time_limit: 1.0
  teacher_training: {epochs: 1, batch_size: 64}
  robust_training: {epochs: 1, batch_size: 64}
  student_training: {epochs: 1, batch_size: 64}
improvement: {retrain_epochs: 1, adversarial_steps: 2, adversarial_eps: 0.02, training: {epochs: 1, batch_size: 64}}
"""

pytestmark = pytest.mark.slow  # two runs of the study on two seeds: a minute or more on 2 cores

VOLATILE = {"seconds", "train_seconds"}
TIMED = {"radius_search", "exact"}  # cut by wall-clock limits: may differ between two runs


def study(config: Path, out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "shallowcert", "study", str(config), "--out", str(out), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def finish(process: subprocess.Popen) -> None:
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]


def job_times(run_dir: Path) -> dict[str, int]:
    return {str(p.relative_to(run_dir)): p.stat().st_mtime_ns for p in run_dir.glob("*/seed-*/jobs/*.json")}


def stable(obj):
    """Results without wall-clock fields."""
    if isinstance(obj, dict):
        return {k: stable(v) for k, v in obj.items() if k not in VOLATILE | TIMED}
    if isinstance(obj, list):
        return [stable(v) for v in obj]
    return obj


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    config = root / "tiny.yaml"
    config.write_text(TINY)
    finish(study(config, root / "straight", "--executor", "ray", "--cpus", "2"))
    # Kill the second run once its first stage and some jobs of the second are done, then resume it.
    victim = study(config, root / "killed", "--executor", "local")
    manifest = root / "killed" / "teacher" / "manifest.json"
    deadline = time.time() + 300
    while time.time() < deadline and victim.poll() is None and not (
            manifest.exists() and len(list((root / "killed" / "distillation").glob("seed-0/jobs/*.json"))) >= 2):
        time.sleep(0.05)
    assert manifest.exists(), "the first stage never finished"
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    before = job_times(root / "killed")
    finish(study(config, root / "killed", "--executor", "local", "--resume"))
    return root, before


def test_report_has_every_section(runs) -> None:
    root, _ = runs
    html = (root / "straight" / "report.html").read_text()
    markdown = (root / "straight" / "report.md").read_text()
    for heading in ("Claims of the study", "1. Teacher", "2. Logits distillation", "3. Temperature sweep",
                    "4. Pruning", "5. Attacks", "6. Certification", "7. Improving the robust student", "Run facts"):
        assert heading in markdown and heading in html
    assert "has not been run" not in markdown
    for label in ("Table 8.1", "Table 8.2", "Table 8.7", "Figure 8.11", "Table 8.9", "Table 8.19", "Table 8.20",
                  "Table 8.22", "Table E.1"):
        assert label in markdown
    assert html.count("data:image/png;base64,") >= 8  # figures are embedded: self-contained
    claims = json.loads((root / "straight" / "report.json").read_text())["claims"]
    assert len(claims) == 8 and all(c["holds"] in (True, False, None) for c in claims)  # 4 and 5 per teacher
    # every claim was tested: decided, or undecided by its test (within noise), or nothing was pruned
    assert all(c["holds"] is not None or c["test"] or "no filter" in c["evidence"] for c in claims), claims
    assert all(c["verdict"] != "undecided" or "no filter" in c["evidence"] for c in claims)


def test_certified_points_resist_the_attack(runs) -> None:
    """Soundness end to end: a point certified at eps is never broken by PGD at eps."""
    root, _ = runs
    by_seed = json.loads((root / "straight" / "certification" / "results.json").read_text())["by_seed"]
    for model, cert in [(model, cert) for cert in by_seed.values() for model in cert["models"]]:
        pgd = dict(zip(model["pgd"]["eps"], model["pgd"]["robust_accuracy"]))
        assert model["certified_accuracy"] <= pgd[cert["eps"]] + 1e-12, model["name"]


def test_the_distillation_teacher_itself_is_certified(runs) -> None:
    """``teachers: [cert-teacher, distillation-teacher]``: stage 6 certifies stage 1's max-pool
    teacher itself (the very weights distilled), its robust twin and their students."""
    run = runs[0] / "straight"
    teacher = read_stage(run, StageName.TEACHER, TeacherResults)
    certification = read_stage(run, StageName.CERTIFICATION, CertificationResults)
    assert teacher is not None and certification is not None
    for seed in certification.seeds:
        rows = {m.name: m for m in certification.by_seed[seed].models}
        assert {name: m.kind.value for name, m in rows.items()} == {
            **{role: "cert-teacher" for role in ROLES}, **{f"deep-{role}": "distillation-teacher" for role in ROLES}}
        distilled = load_model(run / "teacher" / f"seed-{seed}" / "teacher").model.state_dict()
        copied = load_model(run / "certification" / f"seed-{seed}" / "deep-teacher-normal").model.state_dict()
        assert distilled.keys() == copied.keys() and all(torch.equal(distilled[k], copied[k]) for k in distilled)
        spec = teacher.by_seed[seed].teacher.spec
        assert rows["deep-teacher-normal"].spec == rows["deep-teacher-robust"].spec == spec
        assert "mp" in expand(spec)  # a max-pool network, certified by the engine's pool relaxation
        assert rows["deep-teacher-normal"].clean_accuracy == pytest.approx(
            correct_per_point(teacher, seed, teacher.by_seed[seed].teacher)[:certification.first.n].mean())
    markdown = (run / "report.md").read_text()
    table = markdown[markdown.index("Table 8.19"):markdown.index("Table 8.20")]
    assert "| teacher |" in table and "distillation-teacher" in table and "cert-teacher" in table
    claims = json.loads((run / "report.json").read_text())["claims"]
    assert sum("distillation teacher itself" in c["statement"] for c in claims) == 2


def test_exact_radius_never_below_the_certified_one(runs) -> None:
    """Soundness end to end: the certified radius of the radii table never exceeds a point's exact
    radius, i.e. its counterexample distance (``upper``), nor its settled bracket."""
    run = runs[0] / "straight"
    certification = read_stage(run, StageName.CERTIFICATION, CertificationResults)
    assert certification is not None
    markdown = (run / "report.md").read_text()
    assert "(figures/exact-gap.png)" in markdown and (run / "figures" / "exact-gap.png").is_file()
    for seed in certification.seeds:
        results = certification.by_seed[seed]
        exact, rows = results.exact, {m.name: m for m in results.models}
        assert exact is not None and exact.points == 2 and [m.name for m in exact.models] == list(rows)
        for summary in exact.models:
            points = json.loads(certification.path(seed, summary.file).read_text())
            (radius,) = radii_columns(certification, seed, rows[summary.name], ["radius"])
            assert summary.n == len(points["lower"]) == 2 and summary.settled == sum(points["settled"])
            tolerance = 1e-6  # the radii table rounds to 6 significant digits (radii <= 1)
            for i, (low, up, settled) in enumerate(zip(points["lower"], points["upper"], points["settled"])):
                assert points["certified"][i] <= low and (up is None or low <= up)
                if up is not None:
                    assert radius[i] <= up + tolerance, (seed, summary.name, i)
                if settled:
                    assert radius[i] <= low + exact.rtol * up + tolerance, (seed, summary.name, i)


def test_resume_after_kill_matches_straight_run(runs) -> None:
    root, finished_before_kill = runs
    for stage in StageName:
        straight = json.loads((root / "straight" / stage.value / "results.json").read_text())
        resumed = json.loads((root / "killed" / stage.value / "results.json").read_text())
        assert stable(straight) == stable(resumed), stage
    assert any(name.startswith("distillation/") for name in finished_before_kill)
    after = job_times(root / "killed")
    assert {name: after[name] for name in finished_before_kill} == finished_before_kill  # not redone
    facts = json.loads((root / "killed" / "run.json").read_text())
    assert facts["stages"]["teacher"]["reused"] is True
    assert facts["stages"]["distillation"]["jobs_reused"] >= 2
    assert all(not s["reused"] for name, s in facts["stages"].items() if name != "teacher")
    straight = json.loads((root / "straight" / "run.json").read_text())
    assert straight["executor"]["kind"] == "RayExecutor"
    for run in (facts, straight):
        assert run["planned_wall_seconds"] > 0
        load = run["load"]
        assert 0 <= load["start"] <= load["peak"] and load["end"] <= load["peak"]
        assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?", run["environment"]["commit"])
    assert "actual/planned" in (root / "straight" / "report.md").read_text()


def test_seeds_give_different_models(runs) -> None:
    root, _ = runs
    teacher = json.loads((root / "straight" / "teacher" / "results.json").read_text())
    assert teacher["seeds"] == [0, 1] and set(teacher["by_seed"]) == {"0", "1"}
    weights = [(root / "straight" / "teacher" / f"seed-{s}" / "teacher" / "model.safetensors").read_bytes()
               for s in (0, 1)]
    assert weights[0] != weights[1]
    assert teacher["by_seed"]["0"]["teacher"]["spec"] == teacher["by_seed"]["1"]["teacher"]["spec"]


def test_plan_lists_every_job_and_writes_nothing(runs, tmp_path) -> None:
    root, _ = runs
    config = root / "tiny.yaml"

    def plan(out: Path) -> dict:
        result = subprocess.run([sys.executable, "-m", "shallowcert", "study", str(config), "--plan", "--out",
                                 str(out)], capture_output=True, text=True, timeout=300,
                                env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert result.returncode == 0, result.stderr[-2000:]
        return json.loads(result.stdout)

    fresh = plan(tmp_path / "new-run")
    assert not (tmp_path / "new-run").exists()
    done = job_times(root / "straight")
    assert len(fresh["jobs"]) == len(done) == fresh["jobs_to_run"]
    assert {f"{j['stage']}/seed-{j['seed']}/jobs/{j['job']}.json" for j in fresh["jobs"]} == set(done)
    assert all(j["estimated_seconds"] >= 0 for j in fresh["jobs"]) and fresh["estimated_seconds_one_thread"] > 0
    assert abs(sum(j["estimated_seconds"] for j in fresh["jobs"]) - fresh["estimated_seconds_one_thread"]) < 1
    finished = plan(root / "straight")
    assert finished["jobs_to_run"] == 0 and finished["jobs_done"] == len(done)
    assert job_times(root / "straight") == done


def test_report_command_regenerates(runs, tmp_path) -> None:
    root, _ = runs
    (root / "straight" / "report.md").unlink()
    result = subprocess.run([sys.executable, "-m", "shallowcert", "report", str(root / "straight")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and (root / "straight" / "report.md").is_file()


def test_rows_name_per_point_records_and_learning_curves(runs) -> None:
    root, _ = runs
    run = root / "straight"
    teacher = read_stage(run, StageName.TEACHER, TeacherResults)
    assert teacher is not None
    for seed in teacher.seeds:
        row = teacher.by_seed[seed].teacher
        assert correct_per_point(teacher, seed, row).mean() == pytest.approx(row.test_accuracy)
        assert row.history is not None and [h["epoch"] for h in row.history] == [1, 2]  # teacher: 2 epochs
        assert all({"train_loss", "train_accuracy", "val_loss", "val_accuracy"} <= set(h) for h in row.history)
    certification = read_stage(run, StageName.CERTIFICATION, CertificationResults)
    assert certification is not None
    for seed in certification.seeds:
        for model in certification.by_seed[seed].models:
            certified, correct = radii_columns(certification, seed, model, ["certified", "correct"])
            assert certified.mean() == pytest.approx(model.certified_accuracy)
            assert (certified <= correct).all()
            assert model.history is not None and len(model.history) >= 1
    markdown = (run / "report.md").read_text()
    for stage in ("teacher", "distillation", "temperature", "certification", "improvement"):
        assert (run / "figures" / f"learning-{stage}.png").is_file()
        assert f"(figures/learning-{stage}.png)" in markdown
