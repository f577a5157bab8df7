"""Study config validation: every kind of mistake is reported, with its path and line, all at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from shallowcert.errors import UserError
from shallowcert.study.config import load_config
from shallowcert.study.presets import PRESETS


def errors_for(tmp_path: Path, text: str) -> str:
    path = tmp_path / "study.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as info:
        load_config(path)
    return str(info.value)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_is_valid(name: str) -> None:
    config = load_config(preset=name)
    assert config.name == name


def test_defaults_fill_what_the_file_omits(tmp_path: Path) -> None:
    path = tmp_path / "study.yaml"
    path.write_text("seeds: [3, 5]\nteacher:\n  training:\n    epochs: 2\n")
    config = load_config(path)
    assert config.seeds == [3, 5] and config.data.split_seed == 0 and config.teacher.training.epochs == 2
    assert config.teacher.training.optimizer == "adam" and config.teacher.spec == "teacher-svhn"


def test_unknown_key_names_its_path_and_line(tmp_path: Path) -> None:
    message = errors_for(tmp_path, "seeds: [1]\nattacks:\n  attack: [pgd]\n")
    assert "study.yaml:3 attacks.attack: unknown key" in message and "known: attacks, eps" in message


def test_wrong_type(tmp_path: Path) -> None:
    message = errors_for(tmp_path, "teacher:\n  training:\n    lr: fast\n")
    assert "study.yaml:3 teacher.training.lr: expected float, got str 'fast'" in message


def test_bool_is_not_an_int(tmp_path: Path) -> None:
    assert "seeds: item 0: expected int, got bool" in errors_for(tmp_path, "seeds: [true]\n")


def test_impossible_values(tmp_path: Path) -> None:
    message = errors_for(tmp_path, "teacher:\n  training:\n    epochs: 0\nattacks:\n  eps: [0.1, 2]\n"
                                   "temperature:\n  temperatures: [1.0, -1]\n")
    assert "teacher.training.epochs: must be >= 1, got 0" in message
    assert "attacks.eps: must be in [0, 1], got 2" in message
    assert "temperature.temperatures: must be > 0, got -1" in message


def test_bad_choice(tmp_path: Path) -> None:
    message = errors_for(tmp_path, "data:\n  dataset: imagenet\ncertification:\n  method: exact\n")
    assert "data.dataset: must be one of" in message and "certification.method: must be one of" in message


def test_bad_spec(tmp_path: Path) -> None:
    message = errors_for(tmp_path, "teacher:\n  spec: resnet:50\nstudents:\n  scnn2: ['8']\n")
    assert "teacher.spec: unknown model spec 'resnet:50'" in message
    assert "students.scnn2[0]" in message


def test_section_that_is_not_a_mapping(tmp_path: Path) -> None:
    assert "teacher: expected a mapping" in errors_for(tmp_path, "teacher: 3\n")


def test_all_mistakes_reported_at_once(tmp_path: Path) -> None:
    message = errors_for(tmp_path, "seeds: [-1]\nbogus: 1\nteacher:\n  spec: nope:1\n  training:\n    epochs: 0\n")
    assert message.startswith("4 problem(s) in the config")


def test_seeds_must_be_distinct_and_not_empty(tmp_path: Path) -> None:
    assert "seeds: every seed must appear once" in errors_for(tmp_path, "seeds: [1, 1]\n")
    assert "seeds: must not be empty" in errors_for(tmp_path, "seeds: []\n")


def test_old_seed_key_says_what_replaced_it(tmp_path: Path) -> None:
    message = errors_for(tmp_path, "name: old\nseed: 4\n")
    assert "study.yaml:2 seed: replaced by 'seeds: [4]'" in message and "data.split_seed" in message


@pytest.mark.parametrize("name, seeds", [("quick", 2), ("fashion-mnist", 3), ("thesis-svhn", 3),
                                         ("thesis-cifar10", 3)])
def test_presets_run_several_seeds(name: str, seeds: int) -> None:
    assert len(load_config(preset=name).seeds) == seeds


def test_not_yaml_and_missing_file(tmp_path: Path) -> None:
    assert "not valid YAML" in errors_for(tmp_path, "teacher: [unclosed\n")
    with pytest.raises(UserError, match="does not exist"):
        load_config(tmp_path / "none.yaml")
    with pytest.raises(UserError, match="unknown preset"):
        load_config(preset="huge")


def test_missing_dataset_files_are_reported_before_any_work(tmp_path: Path) -> None:
    import subprocess
    import sys
    result = subprocess.run([sys.executable, "-m", "shallowcert", "study", "--preset", "thesis-svhn",
                             "--data-dir", str(tmp_path / "no-svhn"), "--out", str(tmp_path / "run")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "train_32x32.mat" in result.stderr and "were not found" in result.stderr
    assert not (tmp_path / "run").exists()


def test_exact_radius_keys_are_checked(tmp_path: Path) -> None:
    message = errors_for(tmp_path, "certification:\n  exact_points: -1\n  exact_time_limit: 0\n")
    assert "certification.exact_points: must be >= 0, got -1" in message
    assert "certification.exact_time_limit: must be > 0, got 0" in message


class _FreeCosts:
    """Every estimate 0: the job list without measuring anything."""

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: 0.0


@pytest.mark.parametrize("points, exact_points, expected", [(12, 0, 0), (12, 3, 3), (2, 5, 2)])
def test_exact_jobs_follow_exact_points(tmp_path: Path, points: int, exact_points: int, expected: int) -> None:
    from shallowcert.study.context import StageContext
    from shallowcert.study.stages import certification
    from shallowcert.study.store import ArtifactStore

    path = tmp_path / "study.yaml"
    path.write_text(f"certification:\n  points: {points}\n  exact_points: {exact_points}\n")
    config = load_config(path)
    ctx = StageContext(config, ArtifactStore(tmp_path / "run"), "certification", 0, lambda: None)
    jobs = {job.name: job for job in certification.STAGE.jobs(ctx, _FreeCosts())}
    exact = sorted(name for name in jobs if name.startswith("exact-"))
    assert config.certification.exact_count() == expected
    assert exact == ([] if expected == 0 else sorted(f"exact-{m}" for m in certification.ROLES))
    assert all(jobs[name].after == (name[len("exact-"):],) for name in exact)


def test_the_distillation_teacher_adds_its_own_models(tmp_path: Path) -> None:
    from shallowcert.study.context import StageContext
    from shallowcert.study.stages import certification
    from shallowcert.study.store import ArtifactStore

    path = tmp_path / "study.yaml"
    path.write_text("certification:\n  teachers: [cert-teacher, distillation-teacher]\n  exact_points: 1\n")
    config = load_config(path)
    ctx = StageContext(config, ArtifactStore(tmp_path / "run"), "certification", 0, lambda: None)
    jobs = {job.name: job for job in certification.STAGE.jobs(ctx, _FreeCosts())}
    deep = sorted(name for name in jobs if "deep-" in name)
    assert deep == sorted(f"{step}deep-{role}" for step in ("", "certify-", "exact-") for role in certification.ROLES)
    assert jobs["deep-teacher-normal"].run is certification.copy_distillation_teacher  # stage 1's teacher, as is
    assert jobs["deep-teacher-robust"].args == {"teacher": certification.TeacherKind.DISTILLATION}
    assert jobs["teacher-robust"].args == {} and jobs["student-normal"].args == {"kind": "normal"}
    assert jobs["deep-student-robust"].after == ("deep-teacher-robust",)
    assert config.certification.spec(certification.TeacherKind.DISTILLATION, "teacher-robust",
                                     distillation_teacher=config.teacher.spec) == config.teacher.spec


@pytest.mark.parametrize("teachers, message", [("[]", "must not be empty"), ("[deep]", "must be one of"),
                                               ("[cert-teacher, cert-teacher]", "every teacher must appear once")])
def test_bad_teacher_lists_are_refused(tmp_path: Path, teachers: str, message: str) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(f"certification:\n  teachers: {teachers}\n")
    with pytest.raises(UserError, match=message):
        load_config(path)


def test_a_config_without_teachers_keeps_its_fingerprints() -> None:
    """``teachers`` left out means the certification teacher alone, and stays out of the JSON
    the stage fingerprints hash: a run made before the key existed resumes without redoing work."""
    from shallowcert.study.stages.certification import TeacherKind

    config = load_config(preset="fashion-mnist")
    assert "teachers" not in config.certification.to_json()
    assert config.certification.teacher_kinds() == [TeacherKind.CERT]
