"""VNN-LIB reader: boxes and unsafe sets from small files, one-line errors with the line
number, every shared VNN-COMP property read, and the shared counterexamples are unsafe
under our reading (checked with onnxruntime)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from shallowcert.errors import UserError
from shallowcert.verify.vnnlib import read_vnnlib
from shallowcert.verify.witness import format_counterexample, read_counterexample

ROOT = Path("/work/shared/vnncomp")
HEADER = "(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n(declare-const Y_1 Real)\n"
BOX = "(assert (>= X_0 -1))\n(assert (<= X_0 1))\n(assert (>= X_1 0.5))\n(assert (<= X_1 2))\n"


def _read(tmp_path: Path, text: str, shape: tuple[int, ...] = (2,)):
    path = tmp_path / "p.vnnlib"
    path.write_text(text)
    return read_vnnlib(path, input_shape=shape, outputs=2)


def test_box_and_disjunction(tmp_path: Path) -> None:
    prop = _read(tmp_path, HEADER + "; comment\n" + BOX +
                 "(assert (or (and (<= Y_0 Y_1) (>= Y_0 -3)) (and (<= (+ Y_0 (* 2 Y_1)) (- 4 1)))))\n", (1, 2))
    assert prop.lower.shape == (1, 2)
    torch.testing.assert_close(prop.lower, torch.tensor([[-1.0, 0.5]], dtype=torch.float64))
    torch.testing.assert_close(prop.upper, torch.tensor([[1.0, 2.0]], dtype=torch.float64))
    assert len(prop.unsafe) == 2
    torch.testing.assert_close(prop.unsafe[0].matrix, torch.tensor([[1.0, -1.0], [-1.0, 0.0]], dtype=torch.float64))
    torch.testing.assert_close(prop.unsafe[0].bound, torch.tensor([0.0, 3.0], dtype=torch.float64))
    torch.testing.assert_close(prop.unsafe[1].matrix, torch.tensor([[1.0, 2.0]], dtype=torch.float64))
    torch.testing.assert_close(prop.unsafe[1].bound, torch.tensor([3.0], dtype=torch.float64))


def test_top_level_asserts_are_one_conjunction_and_shared_input_bounds_are_hoisted(tmp_path: Path) -> None:
    conj = _read(tmp_path, HEADER + BOX + "(assert (<= Y_0 Y_1))\n(assert (>= Y_1 5))\n")
    assert len(conj.unsafe) == 1 and conj.unsafe[0].matrix.shape == (2, 2)
    inner = _read(tmp_path, HEADER + "(assert (or (and (>= X_0 0) (<= X_0 1) (>= X_1 0) (<= X_1 1) (>= Y_0 100))))")
    assert inner.upper.tolist() == [1.0, 1.0] and inner.unsafe[0].bound.tolist() == [-100.0]


@pytest.mark.parametrize("body, line, message", [
    (BOX + "(assert (<= Y_0 Y_1)", 9, "unbalanced '\\('"),
    (BOX + "(assert (<= Y_0 Y_1)))", 9, "unbalanced '\\)'"),
    (BOX + "(assert (<= Y_0 Y_7))", 9, "unknown variable Y_7"),
    ("(assert (>= X_0 -1))\n(assert (<= X_0 1))\n(assert (<= X_1 2))\n(assert (<= Y_0 Y_1))", None, "X_1 is unbounded"),
    (BOX + "(assert (<= (* Y_0 Y_1) 1))", 9, "needs a number"),
    (BOX + "(assert (<= (+ X_0 X_1) 1))", 9, "bound one variable"),
    (BOX + "(assert (<= X_0 Y_1))", 9, "mixing inputs"),
    (BOX + "(assert (=> (<= Y_0 1) (<= Y_1 1)))", 9, "unsupported construct '=>'"),
    (BOX + "(assert (or (and (<= X_0 0) (<= Y_0 1)) (and (<= Y_1 1))))", None, "bound the inputs differently"),
])
def test_mistakes_are_one_line_errors_with_the_line(tmp_path: Path, body: str, line: int | None, message: str) -> None:
    with pytest.raises(UserError, match=message) as info:
        _read(tmp_path, HEADER + body)
    text = str(info.value)
    assert "\n" not in text and text.startswith(str(tmp_path / "p.vnnlib"))
    if line is not None:
        assert text.startswith(f"{tmp_path / 'p.vnnlib'}:{line}:")


def test_counterexample_text_round_trips(tmp_path: Path) -> None:
    x, y = torch.tensor([[0.1, 1 / 3]], dtype=torch.float64), torch.tensor([-2.5, 1e-17], dtype=torch.float64)
    (tmp_path / "ce.txt").write_text(format_counterexample(x, y))
    x_read, y_read = read_counterexample(tmp_path / "ce.txt")
    assert torch.equal(x_read, x.reshape(-1)) and torch.equal(y_read, y)


@pytest.mark.skipif(not ROOT.exists(), reason="VNN-COMP files not present")
def test_every_shared_property_reads_and_shared_counterexamples_are_unsafe() -> None:
    ort = pytest.importorskip("onnxruntime")
    from shallowcert.models.onnx_import import import_onnx

    with open(ROOT / "cases.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    networks, props = {}, {}
    for row in rows:
        if row["onnx"] not in networks:
            networks[row["onnx"]] = import_onnx(ROOT / row["onnx"])
        net = networks[row["onnx"]]
        key = (row["vnnlib"], net.onnx_input_shape, net.outputs)
        if key not in props:  # X_i follow the ONNX input's layout (NHWC for marabou-cifar10)
            props[key] = read_vnnlib(ROOT / row["vnnlib"], input_shape=net.onnx_input_shape, outputs=net.outputs)
        prop = props[key]
        assert bool((prop.lower <= prop.upper).all())
        if row["benchmark"] in ("mnist_fc", "eran"):  # robustness of one label: nine single-row disjuncts
            assert len(prop.unsafe) == 9 and all(c.matrix.shape == (1, 10) for c in prop.unsafe)
        if row["expected"] == "sat":
            x, _ = read_counterexample(ROOT / row["counterexample"])
            session = ort.InferenceSession(str(ROOT / row["onnx"]), providers=["CPUExecutionProvider"])
            shape = [d if isinstance(d, int) else 1 for d in session.get_inputs()[0].shape]
            feed = x.reshape(shape).numpy().astype(np.float32)
            y = torch.from_numpy(session.run(None, {session.get_inputs()[0].name: feed})[0].reshape(1, -1))
            assert float(prop.violation(y.double())[0]) <= 1e-6, row["vnnlib"]
            with torch.no_grad():  # the imported model, on the counterexample moved to its layout, agrees
                ours = net.model(net.to_model_layout(x.float().unsqueeze(0)))
            assert float(prop.violation(ours.double())[0]) <= 1e-5, row["vnnlib"]
            assert bool(((x >= prop.lower.reshape(-1) - 1e-6) & (x <= prop.upper.reshape(-1) + 1e-6)).all())
    assert len(props) >= 50
