"""ONNX import: outputs equal onnxruntime's (1e-5) on the VNN-COMP nets and on tiny graphs
built here; unsupported graphs are refused naming the node; import --onnx round trips."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from shallowcert.cli import main
from shallowcert.errors import UserError
from shallowcert.models import Normalize, load_model
from shallowcert.models.onnx_import import import_onnx

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

ROOT = Path("/work/shared/vnncomp")
RNG = np.random.default_rng(0)


def _reference(path: Path, x: np.ndarray, batched: bool) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.stack([session.run(None, {name: (row[None] if batched else row).astype(np.float32)})[0].reshape(-1)
                     for row in x])


def _assert_matches(path: Path, *, batched: bool = True) -> torch.nn.Sequential:
    imported = import_onnx(path)
    x = RNG.uniform(-1, 1, size=(4, *imported.input_shape)).astype(np.float32)
    with torch.no_grad():
        ours = imported.model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours, _reference(path, x, batched), rtol=0, atol=1e-5)
    return imported.model


def _save(tmp_path: Path, nodes: list, inits: dict[str, np.ndarray], shape: list[int],
          name: str = "net.onnx") -> Path:
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v if v.dtype == np.int64 else v.astype(np.float32), k) for k, v in inits.items()])
    path = tmp_path / name
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


@pytest.mark.skipif(not ROOT.exists(), reason="VNN-COMP files not present")
@pytest.mark.parametrize("net", ["test/onnx/test_nano.onnx", "test/onnx/test_small.onnx", "test/onnx/test_sat.onnx",
                                 "mnist_fc/onnx/mnist-net_256x2.onnx", "eran/onnx/mnist_relu_9_200.onnx"])
def test_vnncomp_networks_match_onnxruntime(net: str) -> None:
    model = _assert_matches(ROOT / net, batched="nano" not in net and "small" not in net)
    if "eran" in net:  # Sub/Div by constants became the normalisation layer; the final ReLU is kept
        assert isinstance(model[0], Normalize) and isinstance(model[-1], torch.nn.ReLU)


def test_gemm_attributes_and_elementwise_folding(tmp_path: Path) -> None:
    w1, b1 = RNG.normal(size=(6, 12)), RNG.normal(size=(6,))
    w2, b2 = RNG.normal(size=(6, 3)), RNG.normal(size=(3,))
    w3 = RNG.normal(size=(3, 2))
    nodes = [
        helper.make_node("Sub", ["x", "mean"], ["s"]),             # per pixel: folded into the Gemm
        helper.make_node("Mul", ["s", "scale"], ["m"]),
        helper.make_node("Reshape", ["m", "shape"], ["f"]),
        helper.make_node("Gemm", ["f", "w1", "b1"], ["g1"], transB=1, alpha=0.5, beta=2.0),
        helper.make_node("Relu", ["g1"], ["r1"]),
        helper.make_node("Gemm", ["r1", "w2", "b2"], ["g2"], alpha=1.5, beta=0.25),
        helper.make_node("Identity", ["g2"], ["i"]),
        helper.make_node("MatMul", ["i", "w3"], ["mm"]),
        helper.make_node("Constant", [], ["bias"], value=numpy_helper.from_array(np.float32([0.5, -1.0]))),
        helper.make_node("Add", ["mm", "bias"], ["y"]),
    ]
    inits = {"mean": RNG.normal(size=(1, 1, 3, 4)), "scale": RNG.uniform(0.5, 2, size=(1, 1, 3, 4)),
             "shape": np.array([1, 12], dtype=np.int64), "w1": w1, "b1": b1, "w2": w2, "b2": b2, "w3": w3}
    path = _save(tmp_path, nodes, inits, [1, 1, 3, 4])
    model = _assert_matches(path)
    assert [type(m).__name__ for m in model] == ["Flatten", "Linear", "ReLU", "Linear", "Linear"]


def test_conv_with_per_channel_normalisation(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Sub", ["x", "mean"], ["s"]),
        helper.make_node("Div", ["s", "std"], ["n"]),
        helper.make_node("Conv", ["n", "w", "b"], ["c"], strides=[2, 2], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Flatten", ["r"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "w2", "b2"], ["y"], transB=1),
    ]
    inits = {"mean": np.float32([0.1, 0.2]).reshape(1, 2, 1, 1), "std": np.float32([0.3, 0.5]).reshape(1, 2, 1, 1),
             "w": RNG.normal(scale=0.2, size=(4, 2, 3, 3)), "b": RNG.normal(size=(4,)),
             "w2": RNG.normal(scale=0.2, size=(3, 4 * 4 * 4)), "b2": RNG.normal(size=(3,))}
    model = _assert_matches(_save(tmp_path, nodes, inits, [1, 2, 8, 8]))
    assert isinstance(model[0], Normalize)
    torch.testing.assert_close(model[0].std.reshape(-1), torch.tensor([0.3, 0.5]))


def test_exported_model_round_trips(tmp_path: Path) -> None:
    """Our own export-onnx (TorchScript exporter) reads back to the same function."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3, stride=2, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(3 * 4 * 4, 5)).eval()
    path = tmp_path / "exported.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 1, 8, 8),), str(path), input_names=["x"], dynamo=False,
                          dynamic_axes={"x": {0: "batch"}})
    imported = _assert_matches(path)
    x = torch.rand(3, 1, 8, 8)
    torch.testing.assert_close(imported(x), model(x), rtol=0, atol=1e-5)


@pytest.mark.parametrize("nodes, inits, message", [
    ([helper.make_node("Sigmoid", ["x"], ["y"], name="squash")], {}, r"node 'squash' \(Sigmoid\)"),
    ([helper.make_node("Add", ["x", "x"], ["y"], name="twice")], {}, r"'twice' \(Add\).*not a chain"),
    ([helper.make_node("Gemm", ["x", "w"], ["y"], name="g", transA=1)], {"w": np.ones((4, 2))}, "transA"),
    ([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], {"w": np.ones((5, 2))}, "does not fit"),
    ([helper.make_node("Div", ["c", "x"], ["y"], name="inv")], {"c": np.ones((1, 4))}, r"'inv' \(Div\).*not affine"),
])
def test_unsupported_graphs_are_refused_naming_the_node(tmp_path: Path, nodes: list, inits: dict,
                                                        message: str) -> None:
    with pytest.raises(UserError, match=message):
        import_onnx(_save(tmp_path, nodes, inits, [1, 4]))


def test_import_cli_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nodes = [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("Gemm", ["f", "w", "b"], ["g"], transB=1),
             helper.make_node("Relu", ["g"], ["y"])]
    path = _save(tmp_path, nodes, {"w": RNG.normal(size=(3, 6)), "b": RNG.normal(size=(3,))}, [1, 6, 1])
    assert main(["import", "--onnx", str(path), "--out", str(tmp_path / "model")]) == 0
    loaded = load_model(tmp_path / "model")
    assert loaded.input_shape == (6, 1) and loaded.classes == 3
    x = RNG.uniform(-1, 1, size=(5, 6, 1)).astype(np.float32)
    with torch.no_grad():
        ours = loaded.model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours, _reference(path, x, True), rtol=0, atol=1e-5)
    bad = _save(tmp_path, [helper.make_node("Tanh", ["x"], ["y"], name="t")], {}, [1, 4], "bad.onnx")
    capsys.readouterr()
    assert main(["import", "--onnx", str(bad), "--out", str(tmp_path / "bad")]) == 2
    assert "'t' (Tanh)" in capsys.readouterr().err and not (tmp_path / "bad").exists()
