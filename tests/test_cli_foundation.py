"""CLI: train / evaluate / import / export-onnx / datasets end to end, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from conftest import make_idx_dataset
from shallowcert.cli import main
from shallowcert.models import build, load_model, save_model


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shallowcert", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return make_idx_dataset(tmp_path / "mnist", n_train=80, n_test=20)


def test_train_then_evaluate(tmp_path: Path, data_dir: Path, capsys) -> None:
    out = tmp_path / "model"
    assert main(["train", "--dataset", "mnist", "--data-dir", str(data_dir), "--model", "scnn1:2",
                 "--epochs", "2", "--out", str(out), "--seed", "1"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["val_accuracy"] <= 1.0 and 0.0 <= metrics["test_accuracy"] <= 1.0
    capsys.readouterr()
    assert main(["evaluate", "--model", str(out), "--dataset", "mnist", "--data-dir", str(data_dir),
                 "--out", str(tmp_path / "eval.json")]) == 0
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["n"] == 20 and len(report["per_class_accuracy"]) == 10
    assert report["accuracy"] == pytest.approx(metrics["test_accuracy"])


def test_import_state_dict(tmp_path: Path, capsys) -> None:
    torch.manual_seed(0)
    source = build("wong-small", (1, 28, 28), 10)
    torch.save(source.state_dict(), tmp_path / "published.pth")
    assert main(["import", "--spec", "wong-small", "--state-dict", str(tmp_path / "published.pth"),
                 "--out", str(tmp_path / "imported")]) == 0
    x = torch.rand(3, 1, 28, 28)
    assert torch.equal(load_model(tmp_path / "imported").model(x), source(x))


def test_import_refuses_pickled_objects_and_wrong_keys(tmp_path: Path) -> None:
    torch.save(build("snn:4", (1, 28, 28), 10), tmp_path / "whole_model.pth")  # a pickled module
    result = run_cli("import", "--spec", "snn:4", "--state-dict", str(tmp_path / "whole_model.pth"),
                     "--out", str(tmp_path / "o"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "not a loadable state_dict" in result.stderr
    torch.save(build("snn:4", (1, 28, 28), 10).state_dict(), tmp_path / "sd.pth")
    result = run_cli("import", "--spec", "wong-small", "--state-dict", str(tmp_path / "sd.pth"),
                     "--out", str(tmp_path / "o"))
    assert result.returncode == 2 and "keys do not match" in result.stderr
    assert not (tmp_path / "o").exists()


def test_export_onnx_matches_torch(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build("layers:norm,c4k3s2p1,relu,flat,fc8,relu,fc", (1, 28, 28), 10).eval()
    save_model(tmp_path / "m", model, spec="custom", input_shape=(1, 28, 28), classes=10)
    assert main(["export-onnx", "--model", str(tmp_path / "m"), "--out", str(tmp_path / "m.onnx")]) == 0
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    x = torch.rand(4, 1, 28, 28)
    (onnx_out,) = session.run(None, {"input": x.numpy()})
    np.testing.assert_allclose(onnx_out, model(x).detach().numpy(), rtol=1e-5, atol=1e-5)


def test_datasets_lists_found_and_missing(tmp_path: Path, data_dir: Path) -> None:
    result = run_cli("datasets", "--data-dir", str(data_dir))
    assert result.returncode == 0
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert "found" in lines["mnist"] and "missing" in lines["svhn"]


@pytest.mark.parametrize("args, message", [
    (["train", "--model", "nope:1", "--out", "X"], "unknown model spec 'nope:1'"),
    (["train", "--model", "snn:4", "--dataset", "svhn", "--data-dir", "/nonexistent", "--out", "X"],
     "does not exist"),
    (["evaluate", "--model", "/nonexistent/model"], "not a model directory"),
    (["import", "--spec", "snn:4", "--state-dict", "/nonexistent.pth", "--out", "X"], "no such file"),
])
def test_user_errors_are_one_line_with_exit_2(tmp_path: Path, args, message) -> None:
    args = [a.replace("X", str(tmp_path / "out")) for a in args]
    result = run_cli(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
