"""VNN-COMP mnist_fc 256x2: no ``sat`` property (a counterexample exists) is ever verified.

The ONNX MLP (Flatten, Gemm/ReLU layers) is read into ``nn.Linear`` layers; each VNN-LIB
property gives a per-pixel box (an eps-ball clipped to [0, 1]) and an unsafe set
``Y_j >= Y_label for some j``, so the property holds iff every margin ``Y_label - Y_j > 0``.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from shallowcert.bounds import METHODS, InputSet, lower_bounds, margin_spec

onnx = pytest.importorskip("onnx")
from onnx import numpy_helper  # noqa: E402

ROOT = Path("/work/shared/vnncomp")
NETWORK = "mnist_fc/onnx/mnist-net_256x2.onnx"
pytestmark = pytest.mark.skipif(not (ROOT / NETWORK).exists(), reason="VNN-COMP files not present")


def _read_mlp(path: Path) -> nn.Sequential:
    graph = onnx.load(str(path)).graph
    weights = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()).double() for t in graph.initializer}
    layers: list[nn.Module] = []
    for node in graph.node:
        if node.op_type == "Gemm":
            weight, bias = weights[node.input[1]], weights[node.input[2]]
            linear = nn.Linear(weight.shape[1], weight.shape[0]).double()
            with torch.no_grad():
                linear.weight.copy_(weight)
                linear.bias.copy_(bias)
            layers.append(linear)
        elif node.op_type == "Relu":
            layers.append(nn.ReLU())
        elif node.op_type != "Flatten":
            raise AssertionError(f"unexpected ONNX node {node.op_type}")
    return nn.Sequential(*layers).eval()


def _read_property(path: Path) -> tuple[torch.Tensor, torch.Tensor, int]:
    text = path.read_text()
    bounds = {(m[0], int(m[1])): float(m[2]) for m in re.findall(r"\(assert \((<=|>=) X_(\d+) ([-\d.e]+)\)\)", text)}
    size = max(i for _, i in bounds) + 1
    upper = torch.tensor([bounds[("<=", i)] for i in range(size)], dtype=torch.float64)
    lower = torch.tensor([bounds[(">=", i)] for i in range(size)], dtype=torch.float64)
    labels = {int(m) for m in re.findall(r"\(>= Y_\d+ Y_(\d+)\)", text)}
    assert len(labels) == 1
    return lower, upper, labels.pop()


def _cases() -> list[tuple[str, str]]:
    with open(ROOT / "cases.csv", newline="") as handle:
        return [(row["vnnlib"], row["expected"]) for row in csv.DictReader(handle) if row["onnx"] == NETWORK]


def test_sat_properties_are_never_verified() -> None:
    model = _read_mlp(ROOT / NETWORK)
    cases = _cases()
    assert any(expected == "sat" for _, expected in cases)
    boxes = [_read_property(ROOT / vnnlib) for vnnlib, _ in cases]
    lower = torch.stack([b[0] for b in boxes])
    upper = torch.stack([b[1] for b in boxes])
    eps = torch.tensor([float(re.search(r"_([\d.]+)\.vnnlib$", v).group(1)) for v, _ in cases], dtype=torch.float64)
    # the box is the eps-ball around the image clipped to [0, 1]: recover its centre
    center = torch.where(lower > 0, lower + eps[:, None], upper - eps[:, None])
    input_set = InputSet(center, eps, domain=(0.0, 1.0))
    box_lower, box_upper = input_set.box()
    torch.testing.assert_close(box_lower, lower, rtol=0, atol=1e-7)
    torch.testing.assert_close(box_upper, upper, rtol=0, atol=1e-7)
    spec = margin_spec(torch.tensor([b[2] for b in boxes]), 10).double()
    sat = torch.tensor([expected == "sat" for _, expected in cases])
    verified_unsat = 0
    for method in METHODS:
        with torch.no_grad():
            verified = (lower_bounds(model, input_set, spec, method=method, alpha_steps=10) > 0).all(1)
        assert not bool(verified[sat].any()), method
        verified_unsat = max(verified_unsat, int(verified[~sat].sum()))
    assert verified_unsat > 0  # the check is not vacuous: some true properties are proved


@pytest.mark.slow
def test_complete_verifier_never_proves_a_sat_property() -> None:
    """``shallowcert.verify.verify`` on every ``sat`` row: never ``unsat``; each ``sat`` answer's
    counterexample lies in the box and is unsafe when the network is run on it."""
    from shallowcert.verify import Conjunction, Property, verify

    model = _read_mlp(ROOT / NETWORK)
    eye = torch.eye(10, dtype=torch.float64)
    answers = []
    for vnnlib, expected in _cases():
        if expected != "sat":
            continue
        lower, upper, label = _read_property(ROOT / vnnlib)
        prop = Property(lower, upper, tuple(Conjunction((eye[label] - eye[j]).unsqueeze(0), torch.zeros(1,
                                                        dtype=torch.float64)) for j in range(10) if j != label))
        result = verify(model, prop, timeout=3.0)
        assert result.status != "unsat", vnnlib
        if result.status == "sat":
            x = result.counterexample.unsqueeze(0)
            assert bool(prop.contains(x)[0])
            with torch.no_grad():
                assert float(prop.violation(model(x))[0]) <= 0
        answers.append(result.status)
    assert answers.count("sat") >= len(answers) - 2  # the check is not vacuous: the falsifier works
