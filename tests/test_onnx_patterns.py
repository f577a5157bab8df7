"""ONNX import of what exporters emit: torch.onnx graphs and a hand-made tf2onnx/Keras-style
graph (NHWC input, Transposes, Pad, BatchNormalization, pools, Shape-derived reshapes) match
onnxruntime; the layout map moves boxes and counterexamples between the ONNX input and the
model; a wrong translation and a missing onnxruntime are handled as documented."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from shallowcert.errors import UserError
from shallowcert.models import onnx_chain, onnx_import
from shallowcert.models.onnx_import import import_onnx
from shallowcert.verify.property import Conjunction, Property

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

RNG = np.random.default_rng(1)


def _reference(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.stack([session.run(None, {name: row[None].astype(np.float32)})[0].reshape(-1) for row in x])


def _assert_matches(path: Path) -> onnx_import.ImportedModel:
    """Our import equals onnxruntime on random inputs given in the ONNX input's layout."""
    imported = import_onnx(path, check=False)
    x = RNG.uniform(-1, 1, size=(5, *imported.onnx_input_shape)).astype(np.float32)
    with torch.no_grad():
        ours = imported.model(imported.to_model_layout(torch.from_numpy(x))).numpy()
    np.testing.assert_allclose(ours, _reference(path, x), rtol=0, atol=2e-5)
    return imported


def _export(model: nn.Module, shape: tuple[int, ...], path: Path) -> Path:
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.rand(1, *shape),), str(path), input_names=["x"], output_names=["y"],
                          dynamo=False, dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    return path


class _ViewFlatten(nn.Module):
    """``x.view(x.size(0), -1)``: torch.onnx emits Shape -> Gather -> Unsqueeze -> Concat -> Reshape."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.size(0), -1)


class _Standardise(nn.Module):
    """``(x - mean) / std`` written in the forward pass: Sub and Div nodes on constants."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.rand(1, channels, 1, 1))
        self.register_buffer("std", torch.rand(1, channels, 1, 1) + 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def _randomise_batchnorm(model: nn.Module) -> None:
    for layer in model.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            with torch.no_grad():
                layer.running_mean.normal_()
                layer.running_var.uniform_(0.5, 2.0)
                layer.weight.normal_()
                layer.bias.normal_()


TORCH_MODELS = {
    "conv-bn-avgpool-maxpool-view-bn1d": (lambda: nn.Sequential(
        _Standardise(3), nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.ReLU(), nn.MaxPool2d(2), _ViewFlatten(), nn.Linear(24, 8),
        nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3)), (3, 16, 16)),
    "asymmetric-zero-pad-conv-global-pool": (lambda: nn.Sequential(
        nn.ZeroPad2d((1, 2, 0, 1)), nn.Conv2d(2, 5, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(5, 4)), (2, 9, 9)),
    "mlp-flatten-bn1d-dropout": (lambda: nn.Sequential(
        nn.Flatten(), nn.Linear(12, 7), nn.ReLU(), nn.Dropout(0.5), nn.Linear(7, 7), nn.BatchNorm1d(7), nn.ReLU(),
        nn.Linear(7, 2)), (1, 3, 4)),
}


@pytest.mark.parametrize("name", sorted(TORCH_MODELS))
def test_torch_onnx_exports_match_onnxruntime(tmp_path: Path, name: str) -> None:
    torch.manual_seed(0)
    build, shape = TORCH_MODELS[name]
    model = build()
    _randomise_batchnorm(model)
    imported = _assert_matches(_export(model, shape, tmp_path / "net.onnx"))
    assert imported.input_shape == shape and not imported.reorders_input
    kinds = {type(m).__name__ for m in imported.model}
    assert "Sequential" not in kinds and kinds <= {"Conv2d", "Linear", "ReLU", "Flatten", "AvgPool2d", "MaxPool2d",
                                                  "Normalize", "BatchNorm1d", "BatchNorm2d"}
    if name.startswith("conv-bn"):  # the BatchNorms right after a Conv and a Linear are folded into them
        assert "BatchNorm2d" not in kinds and "BatchNorm1d" not in kinds


def _tf2onnx_style(tmp_path: Path) -> Path:
    """A Keras-like CNN as tf2onnx writes it: NHWC input with a symbolic batch, normalisation
    in NHWC, Transpose to NCHW, explicit and SAME padding, BatchNormalization after a Conv
    (foldable) and after a pool (not), pools, Transpose back to NHWC before a
    Shape-derived Reshape, Dense layers as MatMul + Add, and Squeeze/Unsqueeze/Cast."""
    def init(name: str, value: np.ndarray) -> TensorProto:
        return numpy_helper.from_array(value if value.dtype != np.float64 else value.astype(np.float32), name)

    inits = [
        init("mean", RNG.uniform(0, 1, size=(3,))), init("std", RNG.uniform(0.5, 2, size=(3,))),
        init("pads", np.array([0, 0, 0, 0, 0, 0, 1, 1], dtype=np.int64)),
        init("w1", RNG.normal(scale=0.3, size=(4, 3, 3, 3))), init("b1", RNG.normal(size=(4,))),
        init("g1", RNG.normal(size=(4,))), init("be1", RNG.normal(size=(4,))), init("m1", RNG.normal(size=(4,))),
        init("v1", RNG.uniform(0.5, 2, size=(4,))),
        init("g2", np.array([1.5, -0.5, 0.7, -2.0])), init("be2", RNG.normal(size=(4,))),
        init("m2", RNG.normal(size=(4,))), init("v2", RNG.uniform(0.5, 2, size=(4,))),
        init("w2", RNG.normal(scale=0.3, size=(6, 4, 3, 3))), init("b2", RNG.normal(size=(6,))),
        init("minus_one", np.array([-1], dtype=np.int32)), init("zero", np.array(0, dtype=np.int64)),
        init("w3", RNG.normal(scale=0.3, size=(24, 5))), init("b3", RNG.normal(size=(5,))),
        init("axes", np.array([2], dtype=np.int64)),
        init("w4", RNG.normal(scale=0.3, size=(5, 3))), init("b4", RNG.normal(size=(3,))),
    ]
    node = helper.make_node
    nodes = [
        node("Sub", ["x", "mean"], ["s"], name="normalization/sub"),
        node("Div", ["s", "std"], ["n"], name="normalization/truediv"),
        node("Transpose", ["n"], ["t"], perm=[0, 3, 1, 2], name="sequential/conv2d/BiasAdd__6"),
        node("Pad", ["t", "pads"], ["p"], mode="constant", name="sequential/zero_padding2d/Pad"),
        node("Conv", ["p", "w1", "b1"], ["c1"], strides=[2, 2], kernel_shape=[3, 3], name="conv1"),
        node("BatchNormalization", ["c1", "g1", "be1", "m1", "v1"], ["bn1"], epsilon=1e-3, name="bn1"),
        node("Relu", ["bn1"], ["r1"]),
        node("AveragePool", ["r1"], ["a1"], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1],
             count_include_pad=1, name="avg"),
        node("BatchNormalization", ["a1", "g2", "be2", "m2", "v2"], ["bn2"], epsilon=1e-3, name="bn2"),
        node("Conv", ["bn2", "w2", "b2"], ["c2"], strides=[2, 2], kernel_shape=[3, 3], auto_pad="SAME_UPPER",
             name="conv2"),
        node("Relu", ["c2"], ["r2"]),
        node("MaxPool", ["r2"], ["mp"], kernel_shape=[2, 2], strides=[1, 1], name="max"),
        node("Transpose", ["mp"], ["nhwc"], perm=[0, 2, 3, 1], name="sequential/flatten/Reshape__20"),
        node("Shape", ["nhwc"], ["shape"]),
        node("Gather", ["shape", "zero"], ["batch"], axis=0),
        node("Unsqueeze", ["batch", "zero_axes"], ["batch1"]),
        node("Cast", ["minus_one"], ["minus_one64"], to=TensorProto.INT64),
        node("Concat", ["batch1", "minus_one64"], ["target"], axis=0),
        node("Reshape", ["nhwc", "target"], ["flat"], name="sequential/flatten/Reshape"),
        node("MatMul", ["flat", "w3"], ["d1"]), node("Add", ["d1", "b3"], ["d1b"]), node("Relu", ["d1b"], ["r3"]),
        node("Unsqueeze", ["r3", "axes"], ["u"]), node("Squeeze", ["u", "axes"], ["q"]),
        node("MatMul", ["q", "w4"], ["d2"]), node("Add", ["d2", "b4"], ["d2b"]),
        node("Cast", ["d2b"], ["y"], to=TensorProto.FLOAT),
    ]
    inits.append(init("zero_axes", np.array([0], dtype=np.int64)))
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["unk__1", 12, 12, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["unk__2", 3])
    model = helper.make_model(helper.make_graph(nodes, "tf2onnx", [x], [y], inits), producer_name="tf2onnx",
                              opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    path = tmp_path / "keras.onnx"
    onnx.save(model, str(path))
    return path


def test_tf2onnx_style_graph_matches_onnxruntime(tmp_path: Path) -> None:
    imported = _assert_matches(_tf2onnx_style(tmp_path))
    assert imported.onnx_input_shape == (12, 12, 3) and imported.input_shape == (3, 12, 12)
    assert imported.reorders_input
    kinds = [type(m).__name__ for m in imported.model]
    assert kinds == ["Normalize", "Conv2d", "ReLU", "AvgPool2d", "BatchNorm2d", "Conv2d", "ReLU", "MaxPool2d",
                     "Flatten", "Linear", "ReLU", "Linear"]
    checked = import_onnx(_tf2onnx_style(tmp_path), check=True)
    assert checked.max_abs_diff is not None and checked.max_abs_diff < 1e-4


def test_layout_maps_boxes_and_counterexamples(tmp_path: Path) -> None:
    imported = import_onnx(_tf2onnx_style(tmp_path), check=False)
    onnx_x = torch.rand(2, 12, 12, 3)
    model_x = imported.to_model_layout(onnx_x)
    torch.testing.assert_close(model_x, onnx_x.permute(0, 3, 1, 2), rtol=0, atol=0)
    torch.testing.assert_close(imported.to_onnx_layout(model_x), onnx_x, rtol=0, atol=0)
    lower = torch.rand(12, 12, 3, dtype=torch.float64)
    written = Property(lower, lower + 0.1, (Conjunction(torch.ones(1, 3, dtype=torch.float64),
                                                        torch.zeros(1, dtype=torch.float64)),))
    moved = imported.model_property(written)
    assert moved.lower.shape == (3, 12, 12) and float(moved.lower[2, 5, 7]) == float(lower[5, 7, 2])
    torch.testing.assert_close(moved.upper, written.upper.permute(2, 0, 1), rtol=0, atol=0)


def test_a_wrong_translation_is_refused_by_the_onnxruntime_check(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = _tf2onnx_style(tmp_path)

    def leaky(node: object, chain: onnx_chain.Chain, *args: object) -> None:
        chain.flush(node)
        chain.layers.append(nn.LeakyReLU(0.1))  # not what Relu means
        chain.bias_open = False

    monkeypatch.setitem(onnx_import._HANDLERS, "Relu", leaky)
    with pytest.raises(UserError, match="disagrees with onnxruntime"):
        import_onnx(path)


def test_without_onnxruntime_the_check_warns_or_refuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    path = _tf2onnx_style(tmp_path)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    with pytest.raises(UserError, match="needs onnxruntime"):
        import_onnx(path, check=True)
    imported = import_onnx(path)
    assert imported.max_abs_diff is None and "without checking" in caplog.text


def _graph(tmp_path: Path, nodes: list, inits: dict[str, np.ndarray], shape: list[int]) -> Path:
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v if v.dtype == np.int64 else v.astype(np.float32), k) for k, v in inits.items()])
    path = tmp_path / "bad.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


W = RNG.normal(size=(2, 2, 3, 3))


@pytest.mark.parametrize("nodes, inits, message", [
    ([helper.make_node("Sigmoid", ["x"], ["y"], name="act/Sigmoid")], {}, r"'act/Sigmoid' \(Sigmoid\)"),
    ([helper.make_node("Concat", ["x", "x"], ["y"], name="cat", axis=1)], {}, r"'cat' \(Concat\).*not a chain"),
    ([helper.make_node("Pad", ["x", "pads"], ["p"], name="pad"), helper.make_node("MaxPool", ["p"], ["y"],
      name="mp", kernel_shape=[2, 2])], {"pads": np.array([0, 0, 1, 1, 0, 0, 1, 1])},
     r"'mp' \(MaxPool\).*Pad must be followed"),
    ([helper.make_node("AveragePool", ["x"], ["y"], name="ap", kernel_shape=[3, 3], pads=[1, 1, 1, 1])], {},
     r"'ap' \(AveragePool\).*count_include_pad"),
    ([helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Transpose", ["c"], ["t"], perm=[0, 1, 3, 2]),
      helper.make_node("Conv", ["t", "w"], ["y"], name="second")], {"w": W}, r"'second' \(Conv\).*reordering"),
    ([helper.make_node("Mul", ["x", "noise"], ["m"], name="pixelwise"), helper.make_node("Conv", ["m", "w"], ["y"])],
     {"noise": RNG.uniform(0.5, 1, size=(1, 2, 6, 6)), "w": W}, r"'pixelwise' \(Mul\).*per channel"),
    ([helper.make_node("Conv", ["x", "w"], ["y"], name="grouped", group=2)], {"w": RNG.normal(size=(2, 1, 3, 3))},
     r"'grouped' \(Conv\)"),
])
def test_unsupported_nodes_are_refused_with_their_name(tmp_path: Path, nodes: list, inits: dict,
                                                       message: str) -> None:
    with pytest.raises(UserError, match=message):
        import_onnx(_graph(tmp_path, nodes, inits, [1, 2, 6, 6]), check=False)


def test_a_model_directory_keeps_the_onnx_input_layout(tmp_path: Path) -> None:
    import argparse

    from shallowcert.cli import main
    from shallowcert.cli.verify import load_network

    node = helper.make_node
    nodes = [node("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2]), node("Conv", ["t", "w", "b"], ["c"], strides=[2, 2],
                                                                       kernel_shape=[4, 4]),
             node("Relu", ["c"], ["r"]), node("Transpose", ["r"], ["nhwc"], perm=[0, 2, 3, 1]),
             node("Reshape", ["nhwc", "shape"], ["f"]), node("MatMul", ["f", "w2"], ["m"]),
             node("Add", ["m", "b2"], ["y"])]
    inits = [numpy_helper.from_array(RNG.normal(scale=0.3, size=(4, 3, 4, 4)).astype(np.float32), "w"),
             numpy_helper.from_array(RNG.normal(size=(4,)).astype(np.float32), "b"),
             numpy_helper.from_array(np.array([-1, 36], dtype=np.int64), "shape"),
             numpy_helper.from_array(RNG.normal(size=(36, 5)).astype(np.float32), "w2"),
             numpy_helper.from_array(RNG.normal(size=(5,)).astype(np.float32), "b2")]
    graph = helper.make_graph(nodes, "keras", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 8, 8, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 5])], inits)
    path = tmp_path / "small.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    assert main(["import", "--onnx", str(path), "--out", str(tmp_path / "model")]) == 0
    direct = import_onnx(path)
    loaded = load_network(argparse.Namespace(onnx=None, model=str(tmp_path / "model"), onnxruntime_check=True))
    assert loaded.onnx_input_shape == (8, 8, 3) and loaded.input_shape == (3, 8, 8)
    assert torch.equal(loaded.input_order, direct.input_order) and direct.reorders_input
    x = torch.rand(3, 8, 8, 3)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(loaded.to_model_layout(x)), direct.model(direct.to_model_layout(x)))
