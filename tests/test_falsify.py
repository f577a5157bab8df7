"""The falsifier attacks every disjunct on its own: it finds counterexamples that descending
the property's overall violation misses, returns only re-checked ones, honours the disjunct
mask and the deadline; and on the shared Keras network (NHWC input) ``shallowcert verify``
writes a counterexample in the ONNX layout that onnxruntime confirms."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from shallowcert.cli import main
from shallowcert.verify.falsify import attack, disjunct_margins, falsify
from shallowcert.verify.property import Conjunction, Property

ROOT = Path("/work/shared/vnncomp")


def _two_disjuncts() -> tuple[nn.Module, Property]:
    """``y = (0.1, 1 - 1.5 x)`` on ``x in [0, 1]``: disjunct 0 (``y_0 <= 0``) is unreachable and
    flat, disjunct 1 (``y_1 <= 0``, from ``x >= 2/3``) is reachable. At the box centre disjunct
    0 is the closer one (0.1 < 0.25), so following ``min_k m_k`` from there never moves."""
    layer = nn.Linear(1, 2).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.0], [-1.5]]))
        layer.bias.copy_(torch.tensor([0.1, 1.0]))
    eye = torch.eye(2, dtype=torch.float64)
    unsafe = tuple(Conjunction(eye[k:k + 1], torch.zeros(1, dtype=torch.float64)) for k in range(2))
    return nn.Sequential(layer), Property(torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64),
                                          unsafe)


def test_each_disjunct_is_attacked_on_its_own() -> None:
    model, prop = _two_disjuncts()
    found = falsify(model, prop, steps=20, restarts=0)
    assert found is not None and float(found.x) >= 2 / 3
    assert bool(prop.contains(found.x.unsqueeze(0))[0]) and float(prop.violation(model(found.x.unsqueeze(0)).detach())[0]) <= 0
    torch.testing.assert_close(disjunct_margins(prop, found.output.unsqueeze(0))[0, 1], found.output[1])


def test_the_disjunct_mask_and_the_deadline_are_honoured() -> None:
    model, prop = _two_disjuncts()
    assert falsify(model, prop, steps=20, restarts=0, disjuncts=torch.tensor([True, False])) is None
    start = time.monotonic()
    assert attack(model, prop, deadline=start - 1.0, rounds=10) is None
    assert time.monotonic() - start < 1.0
    assert attack(model, prop, deadline=time.monotonic() + 10, restarts=0, disjuncts=torch.tensor([False, True]))
    centre = torch.full((1, 1), 0.5, dtype=torch.float64)  # per-start masks: each start attacks its own disjuncts
    assert falsify(model, prop, steps=20, restarts=0, starts=centre, disjuncts=torch.tensor([[True, False]])) is None
    assert falsify(model, prop, steps=20, restarts=0, starts=centre, disjuncts=torch.tensor([[False, True]]))


@pytest.mark.skipif(not (ROOT / "marabou-cifar10").exists(), reason="VNN-COMP files not present")
def test_verify_on_the_keras_network_writes_an_onnx_layout_counterexample(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    ort = pytest.importorskip("onnxruntime")
    import numpy as np

    from shallowcert.verify.vnnlib import read_vnnlib
    from shallowcert.verify.witness import read_counterexample

    with open(ROOT / "cases.csv", newline="") as handle:
        row = next(r for r in csv.DictReader(handle) if r["benchmark"] == "marabou-cifar10" and r["expected"] == "sat")
    assert main(["verify", "--onnx", str(ROOT / row["onnx"]), "--vnnlib", str(ROOT / row["vnnlib"]), "--timeout",
                 "30", "--device", "cpu", "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "sat"
    record = json.loads((tmp_path / "result.json").read_text())
    assert record["onnxruntime_max_abs_diff"] < 1e-4 and record["counterexample"]["onnxruntime_violation"] <= 0
    x, _ = read_counterexample(tmp_path / "counterexample.txt")
    written = read_vnnlib(ROOT / row["vnnlib"], input_shape=(32, 32, 3), outputs=10)
    assert bool(written.contains(x.reshape(1, 32, 32, 3))[0])
    session = ort.InferenceSession(str(ROOT / row["onnx"]), providers=["CPUExecutionProvider"])
    y = session.run(None, {session.get_inputs()[0].name: x.reshape(1, 32, 32, 3).numpy().astype(np.float32)})[0]
    assert float(written.violation(torch.from_numpy(y).double())[0]) <= 0
