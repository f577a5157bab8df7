"""A max-pool network through the CLI: ``certify`` with radii (re-checked, never beyond an
attack's distance) and ``export-onnx`` (onnxruntime agrees with torch)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from shallowcert.bounds import InputSet, lower_bounds, margin_spec
from shallowcert.cli import main
from shallowcert.data import load_dataset
from shallowcert.models import build, load_model, save_model
from shallowcert.training import FitConfig, fit

SPEC = "layers:c4k3p1,relu,mp2,c6k3p1,relu,mp3s2,flat,fc"


def _trained(tmp_path: Path) -> tuple[Path, torch.nn.Sequential]:
    dataset = load_dataset("fashion-mnist")
    torch.manual_seed(0)
    model = build(SPEC, dataset.input_shape, dataset.classes)
    fit(model, dataset.train.head(1000), config=FitConfig(epochs=1, batch_size=64), validate=lambda m: 0.0)
    save_model(tmp_path / "m", model, spec=SPEC, input_shape=dataset.input_shape, classes=dataset.classes)
    return tmp_path / "m", model.eval()


def test_certify_and_export_a_maxpool_model(tmp_path: Path, capsys) -> None:
    path, model = _trained(tmp_path)
    out = tmp_path / "cert"
    assert main(["certify", "--model", str(path), "--eps", "0.005", "--method", "crown", "--radius",
                 "--attack-radius", "--limit", "12", "--dtype", "float64", "--out", str(out)]) == 0
    summary = json.loads((out / "certify.json").read_text())
    assert abs(summary["robust_error_bound"] - (1 - summary["certified_accuracy"])) < 1e-12
    rows = list(csv.DictReader((out / "radii.csv").open()))
    radius = torch.tensor([float(r["radius_float64"]) for r in rows], dtype=torch.float64)
    distance = torch.tensor([float(r["attack_distance"]) for r in rows], dtype=torch.float64)
    predicted = torch.tensor([int(r["predicted"]) for r in rows])
    assert bool((radius > 0).any()) and bool((radius <= distance).all())
    x = load_dataset("fashion-mnist").test.head(12).floats().double()
    bounds = lower_bounds(model.double(), InputSet(x, radius), margin_spec(predicted, 10).double(), method="crown")
    assert bool((bounds[radius > 0] > 0).all())  # every radius it reports is certified there
    capsys.readouterr()

    assert main(["export-onnx", "--model", str(path), "--out", str(tmp_path / "m.onnx")]) == 0
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    probe = torch.rand(4, 1, 28, 28)
    (onnx_out,) = session.run(None, {"input": probe.numpy()})
    np.testing.assert_allclose(onnx_out, model.float()(probe).detach().numpy(), rtol=1e-5, atol=1e-5)


def test_pool_layers_survive_a_checkpoint(tmp_path: Path) -> None:
    """The saved architecture names each pool's own kernel and stride (not the convolution's)."""
    spec = "layers:c4k3p1,relu,mp2,c4k5s2p2,relu,ap3s1,mp2s1,flat,fc"
    model = build(spec, (1, 28, 28), 10)
    save_model(tmp_path / "m", model, spec=spec, input_shape=(1, 28, 28), classes=10)
    loaded = load_model(tmp_path / "m").model
    assert [repr(layer) for layer in loaded] == [repr(layer) for layer in model]
