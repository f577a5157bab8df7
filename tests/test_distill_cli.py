"""``shallowcert distill`` end to end on a small slice of the real Fashion-MNIST."""

import json

import pytest
import torch

from shallowcert.cli import main
from shallowcert.data import files_found
from shallowcert.models import build, load_model, save_model

pytestmark = pytest.mark.skipif(not files_found("fashion-mnist"), reason="Fashion-MNIST files not found")


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("distill") / "teacher"
    save_model(path, build("scnn1:4", (1, 28, 28), 10), spec="scnn1:4", input_shape=(1, 28, 28), classes=10)
    return path


def test_distill_writes_a_student_directory_and_reuses_the_teacher_logits(teacher_dir, tmp_path, capsys):
    args = ["distill", "--teacher", str(teacher_dir), "--student", "scnn2:4-8", "--method", "temperature",
            "--temperature", "2.5", "--epochs", "1", "--limit-train", "300", "--out", str(tmp_path / "s")]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    metrics = json.loads((tmp_path / "s" / "metrics.json").read_text())
    assert metrics["method"] == "temperature" and metrics["temperature"] == 2.5
    assert metrics["teacher"] == str(teacher_dir) and metrics["transfer_size"] == 300
    assert 0.0 <= metrics["val_accuracy"] <= 1.0 and 0.0 <= metrics["test_accuracy"] <= 1.0
    assert summary["val_accuracy"] == metrics["val_accuracy"]
    assert load_model(tmp_path / "s").spec == "scnn2:4-8"
    (cached,) = (teacher_dir / "logits-cache").glob("*.safetensors")
    stamp = cached.stat().st_mtime_ns
    args[args.index("temperature")] = "logits"
    assert main(args[:-1] + [str(tmp_path / "s2")]) == 0
    assert cached.stat().st_mtime_ns == stamp  # same teacher and transfer set: read, not rewritten
    assert json.loads((tmp_path / "s2" / "metrics.json").read_text())["method"] == "logits"


@pytest.mark.parametrize("extra, message", [
    (["--student", "scnn9:4", "--method", "logits"], "unknown model spec"),
    (["--student", "snn:8", "--method", "hinton", "--alpha", "2"], "alpha must be in [0, 1]"),
    (["--student", "snn:8", "--method", "hinton", "--transfer", "extra", "--limit-train", "10"], "needs labels"),
])
def test_mistakes_give_one_line_errors(teacher_dir, tmp_path, capsys, extra, message):
    code = main(["distill", "--teacher", str(teacher_dir), "--out", str(tmp_path / "x"), *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and message in err
    assert not (tmp_path / "x").exists()


def test_missing_teacher_is_a_one_line_error(tmp_path, capsys):
    code = main(["distill", "--teacher", str(tmp_path / "none"), "--student", "snn:8", "--method", "logits",
                 "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "not a model directory" in err and err.count("\n") == 0
