"""``shallowcert certify`` and ``robust-train`` end to end on a slice of Fashion-MNIST, and errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from shallowcert.bounds import InputSet, lower_bounds, margin_spec
from shallowcert.cli import main
from shallowcert.data import load_dataset
from shallowcert.models import build, load_model, save_model
from shallowcert.training import FitConfig, fit


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """snn:16 trained one epoch on 2,000 real Fashion-MNIST training images."""
    dataset = load_dataset("fashion-mnist")
    torch.manual_seed(0)
    model = build("snn:16", dataset.input_shape, dataset.classes)
    fit(model, dataset.train.head(2000), config=FitConfig(epochs=1, batch_size=64), validate=lambda m: 0.0)
    path = tmp_path_factory.mktemp("cli") / "snn"
    save_model(path, model, spec="snn:16", input_shape=dataset.input_shape, classes=dataset.classes)
    return path


def test_certify_with_radii(model_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "cert"
    code = main(["certify", "--model", str(model_dir), "--eps", "0.01", "--radius", "--attack-radius",
                 "--limit", "24", "--dtype", "float64", "--domain-clip", "--out", str(out)])
    assert code == 0
    summary = json.loads((out / "certify.json").read_text())
    for key in ("n", "eps", "method", "dtype", "domain", "clean_accuracy", "certified_accuracy",
                "robust_error_bound", "seconds"):
        assert key in summary
    assert summary["n"] == 24 and summary["dtype"] == "float64" and summary["domain"] == [0.0, 1.0]
    assert summary["robust_error_bound"] == pytest.approx(1 - summary["certified_accuracy"])
    assert summary["radius"]["search"] == "bisect" and summary["radius"]["mean_radius"] > 0
    assert (out / "certification_area.png").read_bytes()[:4] == b"\x89PNG"
    rows = list(csv.DictReader((out / "radii.csv").open()))
    assert len(rows) == 24
    radius = torch.tensor([float(r["radius_float64"]) for r in rows], dtype=torch.float64)
    distance = torch.tensor([float(r["attack_distance"]) for r in rows], dtype=torch.float64)
    predicted = torch.tensor([int(r["predicted"]) for r in rows])
    assert bool((radius <= distance).all())  # certified radius <= closest adversarial example
    model = load_model(model_dir).model.double()
    x = load_dataset("fashion-mnist").test.head(24).floats().double()
    bounds = lower_bounds(model, InputSet(x, radius, domain=(0.0, 1.0)), margin_spec(predicted, 10).double())
    assert bool((bounds[radius > 0] > 0).all())
    assert json.loads(capsys.readouterr().out)["n"] == 24


@pytest.mark.slow
def test_certify_exact_radius(model_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "exact"
    code = main(["certify", "--model", str(model_dir), "--eps", "0.01", "--radius", "--exact",
                 "--exact-time-limit", "2", "--exact-rtol", "0.05", "--limit", "2", "--dtype", "float64",
                 "--domain-clip", "--method", "crown", "--out", str(out)])
    assert code == 0
    exact = json.loads((out / "certify.json").read_text())["radius"]["exact"]
    assert exact["n"] == 2 and exact["settled"] + exact["unsettled"] == 2
    points = zip(exact["lower"], exact["upper"], exact["certified"], exact["settled_points"])
    for low, up, certified, settled in points:
        assert certified <= low and (up is None or low <= up)
        assert not settled or up - low <= 0.05 * up
    printed = json.loads(capsys.readouterr().out)
    assert printed["exact_unsettled"] == exact["unsettled"]


def test_certify_newton_records_failures(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "newton"
    assert main(["certify", "--model", str(model_dir), "--eps", "0.0", "--radius", "--radius-search", "newton",
                 "--limit", "12", "--method", "crown", "--out", str(out)]) == 0
    summary = json.loads((out / "certify.json").read_text())
    assert 0 <= summary["radius"]["newton_failures"] <= 12 and summary["method"] == "crown"


def test_robust_train_writes_metrics(tmp_path: Path) -> None:
    out = tmp_path / "robust"
    assert main(["robust-train", "--model", "snn:8", "--eps", "0.02", "--epochs", "2", "--warmup-epochs", "2",
                 "--limit-train", "256", "--limit-val", "50", "--limit-eval", "50", "--batch-size", "64",
                 "--out", str(out)]) == 0
    test = json.loads((out / "metrics.json").read_text())["test"]
    assert test["n"] == 50 and test["eps"] == 0.02
    assert test["clean_error"] <= test["pgd_error"] <= test["robust_error_bound"] <= 1
    assert load_model(out).spec == "snn:8"


@pytest.mark.parametrize("method, extra, schedule, certificate", [
    ("dual-projected", ["--projections", "4"], "EpsilonSchedule", "dual"),
    ("crown-ibp", [], "CrownIbpSchedule", "crown-ibp"),
])
def test_robust_train_methods_certify_exactly(tmp_path: Path, method: str, extra: list[str], schedule: str,
                                              certificate: str) -> None:
    out = tmp_path / method
    assert main(["robust-train", "--model", "snn:8", "--eps", "0.02", "--epochs", "2", "--warmup-epochs", "2",
                 "--method", method, *extra, "--limit-train", "128", "--limit-val", "30", "--limit-eval", "30",
                 "--batch-size", "64", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["robust_method"] == method and metrics["schedule"]["kind"] == schedule
    assert metrics["test"]["method"] == certificate  # the reported bound is an exact certificate


@pytest.mark.parametrize("args,message", [
    (["--eps", "-0.1"], "--eps must be a finite number >= 0"),
    (["--eps", "nan"], "--eps must be a finite number >= 0"),
    (["--eps", "0.1", "--method", "lp"], "unknown bound method 'lp'"),
    (["--eps", "0.1", "--dtype", "float16"], "unknown dtype 'float16'"),
    (["--eps", "0.1", "--radius", "--radius-search", "golden"], "unknown --radius-search 'golden'"),
    (["--eps", "0.1", "--attack-radius"], "--attack-radius needs --radius"),
])
def test_certify_user_errors(model_dir: Path, tmp_path: Path, capsys, args, message) -> None:
    out = tmp_path / "out"
    assert main(["certify", "--model", str(model_dir), *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_missing_model_and_bad_robust_eps(tmp_path: Path, capsys) -> None:
    assert main(["certify", "--model", str(tmp_path / "none"), "--eps", "0.1", "--out", str(tmp_path / "o")]) == 2
    assert "not a model directory" in capsys.readouterr().err
    assert main(["robust-train", "--model", "snn:4", "--eps", "-1", "--out", str(tmp_path / "o")]) == 2
    assert "--eps must be a finite number >= 0" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
