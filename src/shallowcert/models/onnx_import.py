"""Read a feed-forward ONNX graph (VNN-COMP style) into an ``nn.Sequential`` of standard layers.

The graph must be a *chain*: every compute node takes the previous node's output (plus
constants) and nothing branches. Nodes are translated as follows (``x`` is the chain value):

==============================  =======================================================
``Gemm``                        ``alpha * x @ op(B) + beta * C`` -> ``nn.Linear`` (``transB``
                                honoured; ``transA=1`` on the data is refused)
``MatMul``                      ``x @ W`` (or ``W @ x`` for an unbatched vector) -> ``nn.Linear``
``Add`` after a linear layer    folded into its bias
``Conv``                        ``nn.Conv2d`` (``group=1``, ``dilations=1``, symmetric pads)
``Relu``                        ``nn.ReLU`` (a final ReLU is kept)
``Flatten`` / ``Reshape``       ``nn.Flatten`` when the result is ``(batch, features)``
``Sub``/``Add``/``Div``/``Mul``  elementwise ``s * x + t`` with constants: a per-channel
by constants                    ``Normalize`` on images, otherwise folded into the next
                                linear layer (``W (s * x + t) + b = (W s) x + (W t + b)``)
``Constant``, initializers      constants; ``Identity``, ``Dropout``, ``Cast`` to float pass through
==============================  =======================================================

Anything else raises :class:`UserError` naming the node and its op type. The input shape
is the graph input's shape with the batch dimension dropped: an input of rank >= 2 with a
leading dimension of 1 (or symbolic) is batched; a rank-1 input is one unbatched vector.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from shallowcert.errors import UserError
from shallowcert.models.layers import Normalize

log = logging.getLogger(__name__)

_PASS_THROUGH = {"Identity", "Dropout"}
_ELEMENTWISE = {"Add", "Sub", "Mul", "Div"}


@dataclass(frozen=True)
class ImportedModel:
    """``model`` maps ``(N, *input_shape)`` to ``(N, outputs)``; ``source`` is the file read."""

    model: nn.Sequential
    input_shape: tuple[int, ...]
    outputs: int
    source: str


@dataclass
class _Affine:
    """A pending elementwise map ``scale * x + shift`` over the activation shape (no batch)."""

    scale: np.ndarray
    shift: np.ndarray
    node: str


class _Chain:
    """The running translation: layers built so far, the chain value's name and its shape."""

    def __init__(self, name: str, shape: tuple[int, ...], batched: bool, source: str) -> None:
        self.value, self.shape, self.batched, self.source = name, shape, batched, source
        self.layers: list[nn.Module] = []
        self.pending: _Affine | None = None
        self.bias_open = False  # the last layer is linear and an Add may still fold into its bias

    def fail(self, node: object, why: str) -> UserError:
        return UserError(f"{self.source}: node {_label(node)}: {why}")


def _label(node: object) -> str:
    outputs = getattr(node, "output", None)
    name = getattr(node, "name", "") or (outputs[0] if outputs else "?")
    return f"'{name}' ({getattr(node, 'op_type', '?')})"


def import_onnx(path: str | Path) -> ImportedModel:
    """Translate the ONNX file at ``path``; float32 weights, eval mode."""
    onnx = _onnx()
    source = str(path)
    if not Path(path).is_file():
        raise UserError(f"{source}: no such file")
    try:
        graph = onnx.load(source).graph
    except Exception as exc:  # onnx raises DecodeError and others for a damaged file
        raise UserError(f"{source}: not a readable ONNX model ({str(exc).splitlines()[0] if str(exc) else exc})") \
            from None
    constants = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in constants]
    if len(inputs) != 1:
        raise UserError(f"{source}: the graph needs exactly one data input, has {len(inputs)}")
    chain = _Chain(inputs[0].name, *_input_shape(inputs[0], source), source=source)
    input_shape = chain.shape
    for node in graph.node:
        _translate(node, chain, constants, onnx)
    if len(graph.output) != 1 or graph.output[0].name != chain.value:
        raise UserError(f"{source}: the graph output is not the end of its chain of nodes")
    if chain.pending is not None:
        _materialise(chain, None)
    if len(chain.shape) != 1 or not chain.layers:
        raise UserError(f"{source}: the network must end in a vector of outputs, ends in shape {chain.shape}")
    model = nn.Sequential(*chain.layers).eval()
    log.debug("imported %s: %d layers, input %s, %d outputs", source, len(model), input_shape, chain.shape[0])
    return ImportedModel(model, input_shape, chain.shape[0], source)


def _onnx():  # noqa: ANN202 - the module
    try:
        import onnx
        import onnx.numpy_helper  # noqa: F401
    except ImportError:  # pragma: no cover - onnx is a dependency
        raise UserError("reading ONNX files needs the 'onnx' package (pip install onnx)") from None
    return onnx


def _input_shape(value_info: object, source: str) -> tuple[tuple[int, ...], bool]:
    dims = list(value_info.type.tensor_type.shape.dim)  # type: ignore[attr-defined]
    sizes = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    if not sizes:
        raise UserError(f"{source}: the graph input '{value_info.name}' has no shape")  # type: ignore[attr-defined]
    if len(sizes) == 1:
        batched, rest = False, sizes
    elif sizes[0] in (1, None):
        batched, rest = True, sizes[1:]
    else:
        raise UserError(f"{source}: the graph input has batch size {sizes[0]}; expected 1 or symbolic")
    if any(s is None or s < 1 for s in rest):
        raise UserError(f"{source}: the graph input '{value_info.name}' has a non-fixed shape {sizes}")  # type: ignore
    return tuple(int(s) for s in rest), batched  # type: ignore[arg-type]


def _attributes(node: object, onnx: object) -> dict[str, object]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}  # type: ignore[attr-defined]


def _translate(node: object, chain: _Chain, constants: dict[str, np.ndarray], onnx: object) -> None:
    op = node.op_type  # type: ignore[attr-defined]
    names = [n for n in node.input if n]  # type: ignore[attr-defined]
    attrs = _attributes(node, onnx)
    if op == "Constant":
        if "value" not in attrs:
            raise chain.fail(node, "only Constant nodes with a 'value' tensor are supported")
        constants[node.output[0]] = onnx.numpy_helper.to_array(attrs["value"])  # type: ignore[attr-defined]
        return
    data = [n for n in names if n not in constants]
    if not data:
        raise chain.fail(node, "computes on constants only; fold it before exporting")
    if data != [chain.value] or names.count(chain.value) != 1:
        raise chain.fail(node, f"the graph is not a chain (expected one input '{chain.value}', got {names})")
    if len(node.output) != 1 and op != "Dropout":  # type: ignore[attr-defined]
        raise chain.fail(node, "nodes with several outputs are not supported")
    handlers = {"Gemm": _gemm, "MatMul": _matmul, "Conv": _conv, "Relu": _relu, "Flatten": _flatten,
                "Reshape": _reshape}
    if op in _PASS_THROUGH or (op == "Cast" and attrs.get("to") == onnx.TensorProto.FLOAT):  # type: ignore
        pass
    elif op in _ELEMENTWISE:
        _elementwise(node, chain, constants, names)
    elif op in handlers:
        handlers[op](node, chain, constants, names, attrs)
    else:
        raise chain.fail(node, "this operation is not supported (supported: Gemm, MatMul, Add, Sub, Mul, Div, "
                               "Conv, Relu, Flatten, Reshape, Constant, Identity, Dropout)")
    chain.value = node.output[0]  # type: ignore[attr-defined]


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def _add_linear(node: object, chain: _Chain, weight: np.ndarray, bias: np.ndarray) -> None:
    """Append ``Linear(weight, bias)`` (``weight`` ``(out, in)``), absorbing a pending affine map."""
    if len(chain.shape) != 1 or chain.shape[0] != weight.shape[1]:
        raise chain.fail(node, f"a linear layer with {weight.shape[1]} inputs does not fit activation shape "
                               f"{chain.shape} (add a Flatten first)")
    weight, bias = weight.astype(np.float64), bias.astype(np.float64)
    if chain.pending is not None:
        scale, shift = chain.pending.scale.reshape(-1), chain.pending.shift.reshape(-1)
        weight, bias = weight * scale[None, :], weight @ shift + bias
        chain.pending = None
    layer = nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        layer.weight.copy_(_tensor(weight))
        layer.bias.copy_(_tensor(bias))
    chain.layers.append(layer)
    chain.shape = (weight.shape[0],)
    chain.bias_open = True


def _constant(node: object, chain: _Chain, constants: dict[str, np.ndarray], name: str) -> np.ndarray:
    if name not in constants:
        raise chain.fail(node, f"input '{name}' must be a constant (weights computed at run time are not supported)")
    return constants[name].astype(np.float64)


def _gemm(node: object, chain: _Chain, constants: dict[str, np.ndarray], names: list[str],
          attrs: dict[str, Any]) -> None:
    """``Y = alpha * op(A) @ op(B) + beta * C`` with the chain value as ``A``."""
    if names[0] != chain.value:
        raise chain.fail(node, "the data must be Gemm's first input A")
    if attrs.get("transA", 0):
        raise chain.fail(node, "transA=1 on the data input is not supported (the data is one row per sample)")
    b = _constant(node, chain, constants, names[1])
    if b.ndim != 2:
        raise chain.fail(node, f"B must be a matrix, has shape {b.shape}")
    alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
    weight = alpha * (b if attrs.get("transB", 0) else b.T)
    c = _constant(node, chain, constants, names[2]) if len(names) > 2 else np.zeros(1)
    try:
        bias = beta * np.broadcast_to(c.reshape(c.shape[-1:] if c.ndim else ()), (weight.shape[0],))
    except ValueError:
        raise chain.fail(node, f"C of shape {c.shape} does not broadcast to {weight.shape[0]} outputs") from None
    _add_linear(node, chain, weight, bias)


def _matmul(node: object, chain: _Chain, constants: dict[str, np.ndarray], names: list[str],
            attrs: dict[str, Any]) -> None:
    """``x @ W`` (weight ``W.T``) or, for an unbatched vector, ``W @ x`` (weight ``W``)."""
    if names[0] == chain.value:
        w = _constant(node, chain, constants, names[1])
        if w.ndim != 2:
            raise chain.fail(node, f"the weight must be a matrix, has shape {w.shape}")
        weight = w.T
    elif not chain.batched:
        weight = _constant(node, chain, constants, names[0])
        if weight.ndim != 2:
            raise chain.fail(node, f"the weight must be a matrix, has shape {weight.shape}")
    else:
        raise chain.fail(node, "W @ x is only supported for an unbatched vector input")
    _add_linear(node, chain, weight, np.zeros(weight.shape[0]))


def _conv(node: object, chain: _Chain, constants: dict[str, np.ndarray], names: list[str],
          attrs: dict[str, Any]) -> None:
    if chain.pending is not None:
        _materialise(chain, node)
    if names[0] != chain.value or len(chain.shape) != 3 or not chain.batched:
        raise chain.fail(node, f"needs a batched image (C, H, W) as its first input, gets shape {chain.shape}")
    weight = _constant(node, chain, constants, names[1])
    if weight.ndim != 4 or weight.shape[1] != chain.shape[0]:
        raise chain.fail(node, f"weight of shape {weight.shape} does not fit {chain.shape[0]} input channels")
    bias = _constant(node, chain, constants, names[2]) if len(names) > 2 else np.zeros(weight.shape[0])
    if attrs.get("group", 1) != 1 or any(d != 1 for d in attrs.get("dilations", [1, 1])):
        raise chain.fail(node, "only group=1 and dilations=1 are supported")
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise chain.fail(node, "auto_pad is not supported; give explicit pads")
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    if pads[:2] != pads[2:]:
        raise chain.fail(node, f"asymmetric pads {pads} are not supported")
    strides = tuple(attrs.get("strides", [1, 1]))
    layer = nn.Conv2d(weight.shape[1], weight.shape[0], tuple(weight.shape[2:]), stride=strides,
                      padding=tuple(pads[:2]))
    assert layer.bias is not None  # nn.Conv2d has a bias by default
    with torch.no_grad():
        layer.weight.copy_(_tensor(weight))
        layer.bias.copy_(_tensor(bias.reshape(-1)))
    chain.layers.append(layer)
    with torch.no_grad():
        chain.shape = tuple(layer(torch.zeros(1, *chain.shape)).shape[1:])
    chain.bias_open = True


def _relu(node: object, chain: _Chain, constants: dict[str, np.ndarray], names: list[str],
          attrs: dict[str, Any]) -> None:
    if chain.pending is not None:
        _materialise(chain, node)
    chain.layers.append(nn.ReLU())
    chain.bias_open = False


def _to_vector(node: object, chain: _Chain, target: tuple[int, ...]) -> None:
    """A reshape of a batched activation to ``(1, features)``: ``nn.Flatten`` (or nothing)."""
    features = int(np.prod(chain.shape))
    if not chain.batched or tuple(target) not in ((1, features), (-1, features), (1, -1), (-1, -1)) \
            or target == (-1, -1):
        raise chain.fail(node, f"only reshapes of a batched tensor to (batch, {features}) are supported, "
                               f"not {tuple(target)} of shape {chain.shape}")
    if chain.pending is not None and _per_channel(chain):
        _materialise(chain, node)
    if chain.pending is not None:
        chain.pending = _Affine(chain.pending.scale.reshape(-1), chain.pending.shift.reshape(-1), chain.pending.node)
    if len(chain.shape) != 1:
        chain.layers.append(nn.Flatten())
        chain.bias_open = False
    chain.shape = (features,)


def _flatten(node: object, chain: _Chain, constants: dict[str, np.ndarray], names: list[str],
             attrs: dict[str, Any]) -> None:
    axis = int(attrs.get("axis", 1))
    if axis != 1:
        raise chain.fail(node, f"only Flatten with axis=1 is supported, got axis={axis}")
    _to_vector(node, chain, (1, int(np.prod(chain.shape))))


def _reshape(node: object, chain: _Chain, constants: dict[str, np.ndarray], names: list[str],
             attrs: dict[str, Any]) -> None:
    target = _constant(node, chain, constants, names[1]).astype(np.int64).reshape(-1)
    full = (1, *chain.shape)
    resolved = tuple(full[i] if t == 0 and i < len(full) else int(t) for i, t in enumerate(target))
    _to_vector(node, chain, resolved)


def _elementwise(node: object, chain: _Chain, constants: dict[str, np.ndarray], names: list[str]) -> None:
    """``x + c``, ``x - c``, ``c - x``, ``x * c``, ``c * x``, ``x / c`` as ``scale * x + shift``."""
    op = node.op_type  # type: ignore[attr-defined]
    data_first = names[0] == chain.value
    c = _constant(node, chain, constants, names[1] if data_first else names[0])
    full = (1, *chain.shape) if chain.batched else chain.shape
    try:
        if np.broadcast_shapes(c.shape, full) != full:
            raise ValueError
        c = np.broadcast_to(c, full).reshape(chain.shape)
    except ValueError:
        raise chain.fail(node, f"the constant of shape {c.shape} does not broadcast to the data {full}") from None
    ones, zeros = np.ones(chain.shape), np.zeros(chain.shape)
    if op == "Add" and chain.bias_open and chain.pending is None and len(chain.shape) == 1:
        layer = chain.layers[-1]
        assert isinstance(layer, (nn.Linear, nn.Conv2d)) and layer.bias is not None  # bias_open: its bias is ours
        with torch.no_grad():
            layer.bias.add_(_tensor(c))
        return
    if op == "Div" and not data_first:
        raise chain.fail(node, "c / x is not affine")
    if op == "Div" and bool((c == 0).any()):
        raise chain.fail(node, "division by zero")
    scale: np.ndarray
    shift: np.ndarray
    if op == "Add":
        scale, shift = ones, c
    elif op == "Mul":
        scale, shift = c, zeros
    elif op == "Div":
        scale, shift = 1.0 / c, zeros
    else:
        scale, shift = (ones, -c) if data_first else (-ones, c)
    pending = chain.pending or _Affine(ones, zeros, _label(node))
    chain.pending = _Affine(pending.scale * scale, pending.shift * scale + shift, pending.node)
    chain.bias_open = False


def _materialise(chain: _Chain, node: object | None) -> None:
    """Emit the pending affine map as a per-channel ``Normalize`` (``(x - mean) / std``), or refuse."""
    pending = chain.pending
    assert pending is not None
    if not _per_channel(chain):
        where = f"before node {_label(node)}" if node is not None else "at the end of the graph"
        raise UserError(f"{chain.source}: node {pending.node}: an elementwise affine map {where} is supported "
                        "only per channel with a positive scale on images, or directly before a linear layer")
    std = 1.0 / pending.scale[:, 0, 0]
    mean = -pending.shift[:, 0, 0] * std
    chain.layers.append(Normalize(_tensor(mean), _tensor(std)))
    chain.pending = None


def _per_channel(chain: _Chain) -> bool:
    """Whether the pending map is constant over each channel of an image, with a positive scale."""
    pending = chain.pending
    if pending is None or len(chain.shape) != 3:
        return False
    uniform = all(np.all(a == a[:, :1, :1]) for a in (pending.scale, pending.shift))
    return uniform and bool((pending.scale[:, 0, 0] > 0).all())
