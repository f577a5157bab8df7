"""Read a feed-forward ONNX graph (VNN-COMP, torch.onnx, tf2onnx, keras2onnx) into an
``nn.Sequential`` of standard layers, checked against onnxruntime.

The graph must be a *chain*: every compute node takes the previous node's output (plus
constants) and nothing branches. Nodes on constants only (``Shape`` of the data, ``Gather``,
``Concat``, ``Cast``, ... as exporters emit them for reshapes) are folded first
(:mod:`shallowcert.models.onnx_constants`). The data nodes become layers:

===================================  =====================================================
``Gemm``, ``MatMul`` (+ ``Add``)      ``nn.Linear`` (``transB`` honoured; ``W @ x`` only for
                                     an unbatched vector)
``Conv``                             ``nn.Conv2d`` (``group=1``, ``dilations=1``; asymmetric
                                     or ``auto_pad`` padding exactly, see ``onnx_layers``)
``Pad`` (zeros) before ``Conv`` or   merged into its padding
``AveragePool``
``AveragePool``, ``GlobalAveragePool``  ``nn.AvgPool2d`` (symmetric padding)
``MaxPool``                          ``nn.MaxPool2d`` (the bound engine may refuse it)
``Relu``                             ``nn.ReLU``
``Add``/``Sub``/``Mul``/``Div`` by    ``s * x + t``: folded into the layer before it when that
constants, ``BatchNormalization``     is a ``Linear`` or a ``Conv`` (per channel), else into the
                                     next ``Linear``, else ``Normalize`` / eval ``BatchNorm``
``Transpose``, ``Reshape``,           layout only: tracked as a permutation of the values, which
``Flatten``, ``Squeeze``,             the next ``Linear`` absorbs into its columns; before the
``Unsqueeze``                         first layer it becomes the model's input layout
``Identity``, ``Dropout``, ``Cast``   pass through (``Cast`` to float only)
to float
===================================  =====================================================

Anything else (``Sigmoid``, ``Concat`` of data, ...) raises :class:`UserError` naming the
node and its op type.

**Layouts.** The model may take its input in another layout than the ONNX graph: a
Keras/tf2onnx graph reads NHWC ``(1, 32, 32, 3)`` and transposes it to NCHW before its first
``Conv``; the imported model then reads NCHW ``(3, 32, 32)``. :class:`ImportedModel` keeps
the map between the two (``input_order``: the model input, flattened, is the ONNX input,
flattened, taken at ``input_order``), and converts inputs, properties (VNN-LIB variables
follow the ONNX input) and counterexamples both ways.

Unless ``check=False``, the import is compared with onnxruntime on random inputs
(:mod:`shallowcert.models.onnx_check`) and refused on any mismatch.
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
from shallowcert.models import onnx_layers, onnx_proto
from shallowcert.models.onnx_chain import Affine, Chain, label, per_channel
from shallowcert.models.onnx_constants import FOLDABLE, shape_of

log = logging.getLogger(__name__)

_PASS_THROUGH = {"Identity", "Dropout"}
_ELEMENTWISE = {"Add", "Sub", "Mul", "Div"}
_LAYOUT = {"Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze"}
SUPPORTED = ("Gemm, MatMul, Conv, Pad, AveragePool, GlobalAveragePool, MaxPool, Relu, BatchNormalization, "
             "Add, Sub, Mul, Div, Transpose, Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout, Cast, "
             "Constant, and on constants " + ", ".join(sorted({"Shape", *FOLDABLE})))


@dataclass(frozen=True)
class ImportedModel:
    """``model`` maps ``(N, *input_shape)`` to ``(N, outputs)``; ``source`` is the file read.

    ``onnx_input_shape``: the ONNX graph's input without its batch dimension (the layout of
    VNN-LIB's ``X_i``); ``input_order`` (int64, ``(prod(input_shape),)``): the model input,
    flattened, is the ONNX input, flattened, at these positions. ``max_abs_diff``: the largest
    ``|model - onnxruntime|`` over the check's random inputs (``None``: not checked).
    """

    model: nn.Sequential
    input_shape: tuple[int, ...]
    outputs: int
    source: str
    onnx_input_shape: tuple[int, ...]
    input_order: torch.Tensor
    max_abs_diff: float | None = None

    @property
    def reorders_input(self) -> bool:
        """Whether the model's input layout differs from the ONNX input's (beyond a reshape)."""
        return not bool(torch.equal(self.input_order, torch.arange(len(self.input_order))))

    def to_model_layout(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, *onnx_input_shape)`` (or flat ``(N, size)``) to ``(N, *input_shape)``."""
        flat = x.reshape(x.shape[0], -1)
        return flat[:, self.input_order.to(x.device)].reshape(x.shape[0], *self.input_shape)

    def to_onnx_layout(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, *input_shape)`` to ``(N, *onnx_input_shape)``: the inverse of :meth:`to_model_layout`."""
        flat = x.reshape(x.shape[0], -1)
        out = torch.empty_like(flat)
        out[:, self.input_order.to(x.device)] = flat
        return out.reshape(x.shape[0], *self.onnx_input_shape)

    def model_property(self, prop: Any) -> Any:
        """A :class:`~shallowcert.verify.property.Property` whose box is written in the ONNX
        input's layout (as VNN-LIB files are), with the box moved to the model's layout."""
        lower, upper = (self.to_model_layout(b.unsqueeze(0))[0] for b in (prop.lower, prop.upper))
        return type(prop)(lower, upper, prop.unsafe)


def import_onnx(path: str | Path, *, check: bool | None = None) -> ImportedModel:
    """Translate the ONNX file at ``path`` (float32 weights, eval mode).

    ``check``: compare with onnxruntime on random inputs and refuse any mismatch
    (:func:`shallowcert.models.onnx_check.compare`); ``None`` does so when onnxruntime is
    installed and logs a warning when it is not, ``True`` requires it.
    """
    source = str(path)
    graph = onnx_proto.load_model(path).graph
    constants = {t.name: onnx_proto.to_array(t) for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in constants]
    if len(inputs) != 1:
        raise UserError(f"{source}: the graph needs exactly one data input, has {len(inputs)}")
    chain = Chain(inputs[0].name, *_input_shape(inputs[0], source), source=source)
    onnx_shape = chain.shape
    for node in graph.node:
        _translate(node, chain, constants)
    if len(graph.output) != 1 or graph.output[0].name != chain.value:
        raise UserError(f"{source}: the graph output is not the end of its chain of nodes")
    _finish(chain)
    model = nn.Sequential(*chain.layers).eval()
    imported = ImportedModel(model, chain.input_shape, chain.shape[0], source, onnx_shape,
                             torch.from_numpy(chain.input_order.astype(np.int64)))
    log.debug("imported %s: %d layers, input %s (ONNX %s), %d outputs", source, len(model), chain.input_shape,
              onnx_shape, chain.shape[0])
    from shallowcert.models import onnx_check  # onnxruntime is imported only when the check runs
    return onnx_check.checked(imported, required=check)


def _finish(chain: Chain) -> None:
    if chain.pad is not None:
        raise UserError(f"{chain.source}: the graph ends in a Pad")
    chain.flush(None)
    if len(chain.shape) != 1 or not chain.layers:
        raise UserError(f"{chain.source}: the network must end in a vector of outputs, ends in shape {chain.shape}")
    if len(chain.model_shape) != 1:
        chain.layers.append(nn.Flatten())
        chain.model_shape = (int(np.prod(chain.model_shape)),)
    if not chain.aligned():
        raise UserError(f"{chain.source}: the graph reorders its outputs after the last layer")


def _input_shape(value_info: Any, source: str) -> tuple[tuple[int, ...], bool]:
    dims = list(value_info.type.tensor_type.shape.dim)
    sizes = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    if not sizes:
        raise UserError(f"{source}: the graph input '{value_info.name}' has no shape")
    if len(sizes) == 1:
        batched, rest = False, sizes
    elif sizes[0] in (1, None):
        batched, rest = True, sizes[1:]
    else:
        raise UserError(f"{source}: the graph input has batch size {sizes[0]}; expected 1 or symbolic")
    if any(s is None or s < 1 for s in rest):
        raise UserError(f"{source}: the graph input '{value_info.name}' has a non-fixed shape {sizes}")
    return tuple(int(s) for s in rest), batched  # type: ignore[arg-type]


def _translate(node: Any, chain: Chain, constants: dict[str, np.ndarray]) -> None:
    op = node.op_type
    names = list(node.input)
    attrs = onnx_proto.attributes(node)
    if node.domain not in ("", "ai.onnx"):
        raise chain.fail(node, f"operators of domain '{node.domain}' are not supported")
    if op == "Constant":
        if not isinstance(attrs.get("value"), np.ndarray):
            raise chain.fail(node, "only Constant nodes with a 'value' tensor are supported")
        constants[node.output[0]] = attrs["value"]
        return
    if op == "Shape" and names and names[0] in chain.shapes:
        constants[node.output[0]] = shape_of(chain.shapes[names[0]], attrs)
        return
    present = [n for n in names if n]
    data = [n for n in present if n not in constants]
    if not data:
        _fold(node, chain, constants, names, attrs)
        return
    if data != [chain.value] or present.count(chain.value) != 1:
        raise chain.fail(node, f"the graph is not a chain (expected one input '{chain.value}', got {present})")
    if len([o for o in node.output if o]) != 1 and op not in ("Dropout", "BatchNormalization"):
        raise chain.fail(node, "nodes with several outputs are not supported")
    if chain.pad is not None and op not in ("Conv", "AveragePool"):
        raise chain.fail(node, "a zero Pad must be followed directly by Conv or AveragePool")
    handler = _HANDLERS.get(op)
    if op in _PASS_THROUGH:
        pass
    elif op == "Cast":
        if attrs.get("to") not in (onnx_proto.FLOAT, onnx_proto.DOUBLE):
            raise chain.fail(node, "only casts of the data to float are supported")
    elif handler is not None:
        handler(node, chain, constants, names, attrs)
    else:
        raise chain.fail(node, f"this operation is not supported (supported: {SUPPORTED})")
    chain.value = node.output[0]
    chain.shapes[chain.value] = chain.full(chain.shape)


def _fold(node: Any, chain: Chain, constants: dict[str, np.ndarray], names: list[str],
          attrs: dict[str, Any]) -> None:
    if node.op_type not in FOLDABLE:
        raise chain.fail(node, f"computes on constants only, and this operation is not supported there "
                               f"(supported: {', '.join(sorted(FOLDABLE))})")
    try:
        constants[node.output[0]] = FOLDABLE[node.op_type]([constants[n] for n in names if n], attrs)
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        raise chain.fail(node, f"cannot evaluate it on its constants ({exc})") from None


def _constant(node: object, chain: Chain, constants: dict[str, np.ndarray], name: str) -> np.ndarray:
    if name not in constants:
        raise chain.fail(node, f"input '{name}' must be a constant (weights computed at run time are not supported)")
    return constants[name].astype(np.float64)


# -- linear layers ------------------------------------------------------------------------

def _add_linear(node: object, chain: Chain, weight: np.ndarray, bias: np.ndarray) -> None:
    """Append ``Linear(weight, bias)`` (``weight (out, in)`` over the chain value), absorbing a
    pending affine map and the chain value's reordering of the model's values."""
    if len(chain.shape) != 1 or chain.shape[0] != weight.shape[1]:
        raise chain.fail(node, f"a linear layer with {weight.shape[1]} inputs does not fit activation shape "
                               f"{chain.shape} (add a Flatten first)")
    chain.fold_back()
    if chain.pending is not None:
        scale, shift = (np.broadcast_to(a, chain.shape) for a in (chain.pending.scale, chain.pending.shift))
        weight, bias = weight * scale[None, :], weight @ shift + bias
        chain.pending = None
    if len(chain.model_shape) != 1:
        chain.layers.append(nn.Flatten())
        chain.model_shape = (int(np.prod(chain.model_shape)),)
    columns = np.empty_like(weight)
    columns[:, chain.index] = weight
    layer = nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        layer.weight.copy_(onnx_layers.tensor(columns))
        layer.bias.copy_(onnx_layers.tensor(bias))
    chain.append(layer, (weight.shape[0],), linear=True)


def _gemm(node: Any, chain: Chain, constants: dict[str, np.ndarray], names: list[str],
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
    c = _constant(node, chain, constants, names[2]) if len(names) > 2 and names[2] else np.zeros(1)
    try:
        bias = beta * np.broadcast_to(c.reshape(c.shape[-1:] if c.ndim else ()), (weight.shape[0],))
    except ValueError:
        raise chain.fail(node, f"C of shape {c.shape} does not broadcast to {weight.shape[0]} outputs") from None
    _add_linear(node, chain, weight, bias)


def _matmul(node: Any, chain: Chain, constants: dict[str, np.ndarray], names: list[str],
            attrs: dict[str, Any]) -> None:
    """``x @ W`` (weight ``W.T``) or, for an unbatched vector, ``W @ x`` (weight ``W``)."""
    if names[0] == chain.value:
        weight = _constant(node, chain, constants, names[1]).T
    elif not chain.batched:
        weight = _constant(node, chain, constants, names[0])
    else:
        raise chain.fail(node, "W @ x is only supported for an unbatched vector input")
    if weight.ndim != 2:
        raise chain.fail(node, f"the weight must be a matrix, has shape {weight.shape}")
    _add_linear(node, chain, weight, np.zeros(weight.shape[0]))


# -- convolutions and pools ---------------------------------------------------------------

def _pads(node: object, chain: Chain, attrs: dict[str, Any], kernel: tuple[int, int],
          strides: tuple[int, int]) -> tuple[int, int, int, int]:
    """``(top, left, bottom, right)`` from ``pads`` or ``auto_pad``, plus a pending zero Pad."""
    mode = attrs.get("auto_pad", "NOTSET")
    if mode in ("NOTSET", "VALID"):
        pads = list(attrs.get("pads", [0, 0, 0, 0])) if mode == "NOTSET" else [0, 0, 0, 0]
        pads = [pads[0], pads[1], pads[2], pads[3]]
    elif mode in ("SAME_UPPER", "SAME_LOWER"):
        pads = [0, 0, 0, 0]
        for axis in (0, 1):
            size = chain.shape[1 + axis]
            total = max((-(-size // strides[axis]) - 1) * strides[axis] + kernel[axis] - size, 0)
            small, large = total // 2, total - total // 2
            pads[axis], pads[axis + 2] = (small, large) if mode == "SAME_UPPER" else (large, small)
    else:
        raise chain.fail(node, f"auto_pad={mode} is not supported")
    if chain.pad is not None:
        pads = [p + q for p, q in zip(pads, chain.pad)]
        chain.pad = None
    return pads[0], pads[1], pads[2], pads[3]


def _window(node: object, chain: Chain, attrs: dict[str, Any], kernel: tuple[int, int] | None = None,
            ) -> tuple[tuple[int, int], tuple[int, int]]:
    kernel = kernel or tuple(attrs.get("kernel_shape", []))
    if kernel is None or len(kernel) != 2:
        raise chain.fail(node, f"only 2-D kernels are supported, got kernel_shape {kernel}")
    if any(d != 1 for d in attrs.get("dilations", [1, 1])):
        raise chain.fail(node, "only dilations=1 is supported")
    strides = tuple(attrs.get("strides", [1, 1]))
    return (int(kernel[0]), int(kernel[1])), (int(strides[0]), int(strides[1]))


def _out_shape(channels: int, chain: Chain, kernel: tuple[int, int], strides: tuple[int, int],
               pads: tuple[int, int, int, int]) -> tuple[int, int, int]:
    return (channels, onnx_layers.pooled_size(chain.shape[1], kernel[0], strides[0], pads[0], pads[2]),
            onnx_layers.pooled_size(chain.shape[2], kernel[1], strides[1], pads[1], pads[3]))


def _conv(node: Any, chain: Chain, constants: dict[str, np.ndarray], names: list[str],
          attrs: dict[str, Any]) -> None:
    chain.image(node)
    weight = _constant(node, chain, constants, names[1])
    if weight.ndim != 4 or weight.shape[1] != chain.shape[0]:
        raise chain.fail(node, f"weight of shape {weight.shape} does not fit {chain.shape[0]} input channels")
    if attrs.get("group", 1) != 1:
        raise chain.fail(node, "only group=1 is supported")
    bias = _constant(node, chain, constants, names[2]) if len(names) > 2 and names[2] else np.zeros(weight.shape[0])
    kernel, strides = _window(node, chain, attrs, tuple(weight.shape[2:]))
    pads = _pads(node, chain, attrs, kernel, strides)
    layer = onnx_layers.conv2d(weight, bias, strides, pads)
    chain.append(layer, _out_shape(weight.shape[0], chain, kernel, strides, pads), linear=True)


def _pool(node: Any, chain: Chain, constants: dict[str, np.ndarray], names: list[str],
          attrs: dict[str, Any]) -> None:
    op = node.op_type
    pad = chain.pad
    chain.image(node)
    if op == "GlobalAveragePool":
        kernel, strides = (chain.shape[1], chain.shape[2]), (1, 1)
    else:
        kernel, strides = _window(node, chain, attrs)
    own = attrs.get("pads", [0, 0, 0, 0])
    if pad is not None and any(own) and not attrs.get("count_include_pad", 0):
        raise chain.fail(node, "a zero Pad before an AveragePool that excludes its own padding from the count")
    pads = _pads(node, chain, attrs, kernel, strides)
    if attrs.get("ceil_mode", 0):
        raise chain.fail(node, "ceil_mode=1 is not supported")
    if (pads[0], pads[1]) != (pads[2], pads[3]) or pads[0] > kernel[0] // 2 or pads[1] > kernel[1] // 2:
        raise chain.fail(node, f"pads {list(pads)} must be symmetric and at most half the kernel")
    padding = (pads[0], pads[1])
    if op == "MaxPool":
        layer: nn.Module = nn.MaxPool2d(kernel, strides, padding)
    else:
        include = bool(attrs.get("count_include_pad", 0)) or pad is not None
        if any(padding) and not include:
            raise chain.fail(node, "an average over the padded border that excludes the padding "
                                   "(count_include_pad=0) is not affine per window; it is not supported")
        layer = nn.AvgPool2d(kernel, strides, padding, count_include_pad=True)
    chain.append(layer, _out_shape(chain.shape[0], chain, kernel, strides, pads), linear=False)


def _pad(node: Any, chain: Chain, constants: dict[str, np.ndarray], names: list[str],
         attrs: dict[str, Any]) -> None:
    if attrs.get("mode", "constant") != "constant":
        raise chain.fail(node, f"only constant (zero) padding is supported, not mode={attrs['mode']}")
    pads = constants[names[1]].astype(np.int64).tolist() if len(names) > 1 and names[1] else attrs.get("pads")
    value = (float(constants[names[2]].reshape(-1)[0]) if len(names) > 2 and names[2]
             else float(attrs.get("value", 0.0)))
    if value != 0.0 or pads is None:
        raise chain.fail(node, f"only zero padding is supported (value {value})")
    if len(names) > 3 and names[3]:
        raise chain.fail(node, "Pad with axes is not supported")
    if not chain.batched or len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)) or min(pads) < 0:
        raise chain.fail(node, f"only non-negative padding of H and W of an NCHW image is supported, got {pads}")
    chain.image(node)
    chain.pad = (pads[2], pads[3], pads[6], pads[7])


def _relu(node: Any, chain: Chain, constants: dict[str, np.ndarray], names: list[str],
          attrs: dict[str, Any]) -> None:
    chain.flush(node)
    chain.layers.append(nn.ReLU())
    chain.bias_open = False


# -- elementwise affine maps ---------------------------------------------------------------

def _broadcast(node: object, chain: Chain, c: np.ndarray) -> np.ndarray:
    """A constant broadcast to the chain value's shape (no batch dimension)."""
    full = chain.full(chain.shape)
    try:
        if np.broadcast_shapes(c.shape, full) != full:
            raise ValueError
    except ValueError:
        raise chain.fail(node, f"the constant of shape {c.shape} does not broadcast to the data {full}") from None
    return np.broadcast_to(c, full).reshape(chain.shape)


def _elementwise(node: Any, chain: Chain, constants: dict[str, np.ndarray], names: list[str],
                 attrs: dict[str, Any]) -> None:
    """``x + c``, ``x - c``, ``c - x``, ``x * c``, ``c * x``, ``x / c`` as ``scale * x + shift``."""
    op = node.op_type
    data_first = names[0] == chain.value
    c = _broadcast(node, chain, _constant(node, chain, constants, names[1] if data_first else names[0]))
    ones, zeros = np.ones(chain.shape), np.zeros(chain.shape)
    if op == "Div" and not data_first:
        raise chain.fail(node, "c / x is not affine")
    if op == "Div" and bool((c == 0).any()):
        raise chain.fail(node, "division by zero")
    if op == "Add":
        scale, shift = ones, c
    elif op == "Mul":
        scale, shift = c, zeros
    elif op == "Div":
        scale, shift = 1.0 / c, zeros
    else:
        scale, shift = (ones, -c) if data_first else (-ones, c)
    _affine(node, chain, scale, shift)


def _batchnorm(node: Any, chain: Chain, constants: dict[str, np.ndarray], names: list[str],
               attrs: dict[str, Any]) -> None:
    """Eval-mode ``(x - mean) / sqrt(var + epsilon) * gamma + beta`` over axis 1 (channels)."""
    if attrs.get("training_mode", 0) or len([o for o in node.output if o]) != 1:
        raise chain.fail(node, "only inference-mode BatchNormalization (one output) is supported")
    gamma, beta, mean, var = (_constant(node, chain, constants, n) for n in names[1:5])
    scale = gamma / np.sqrt(var + float(attrs.get("epsilon", 1e-5)))
    view = (-1,) + (1,) * (len(chain.shape) - 1)
    if not chain.batched or not chain.shape or chain.shape[0] != len(scale):
        raise chain.fail(node, f"{len(scale)} channels do not fit the data of shape {chain.shape}")
    _affine(node, chain, np.broadcast_to(scale.reshape(view), chain.shape),
            np.broadcast_to((beta - mean * scale).reshape(view), chain.shape))


def _affine(node: object, chain: Chain, scale: np.ndarray, shift: np.ndarray) -> None:
    """Compose ``scale * x + shift`` into the pending map (folded or emitted at the next layer)."""
    pending = chain.pending or Affine(np.ones(chain.shape), np.zeros(chain.shape), label(node))
    chain.pending = Affine(pending.scale * scale, pending.shift * scale + shift, pending.node)


# -- layout -------------------------------------------------------------------------------

def _relayout(node: Any, chain: Chain, constants: dict[str, np.ndarray], names: list[str],
              attrs: dict[str, Any]) -> None:
    """Transpose/Reshape/Flatten/Squeeze/Unsqueeze of the data: only its layout changes."""
    op = node.op_type
    full = chain.full(chain.shape)
    try:
        if op == "Transpose":
            perm = [int(p) for p in attrs.get("perm", range(len(full) - 1, -1, -1))]
            if chain.batched and perm[0] != 0:
                raise ValueError(f"perm {perm} moves the batch dimension")
            change = lambda a: np.transpose(a.reshape(full), perm)  # noqa: E731
        else:
            args = [np.empty(full)] + [constants[n] for n in names[1:] if n]
            if op == "Reshape" and len(names) > 1 and names[1] not in constants:
                raise ValueError("the target shape must be a constant")
            target = FOLDABLE[op](args, attrs).shape
            if chain.batched and (not target or target[0] != 1):
                raise ValueError(f"the result {target} does not keep the batch dimension first")
            change = lambda a: a.reshape(target)  # noqa: E731
        shape = tuple(change(np.empty(full)).shape)
    except (ValueError, IndexError, KeyError) as exc:
        raise chain.fail(node, f"unsupported reshaping of the data of shape {full} ({exc})") from None
    if chain.pending is not None and len(shape) == (2 if chain.batched else 1) and len(chain.model_shape) == 3 and \
            per_channel(*(chain.to_model(a) for a in (chain.pending.scale, chain.pending.shift))):
        chain.flush(node)  # input normalisation stays a layer of its own
    chain.shape = shape[1:] if chain.batched else shape
    chain.index = change(chain.index).reshape(chain.shape)
    if chain.pending is not None:
        pending = chain.pending
        scale, shift = (change(np.broadcast_to(a, pending.scale.shape)).reshape(chain.shape)
                        for a in (pending.scale, pending.shift))
        chain.pending = Affine(scale, shift, pending.node)


_HANDLERS = {"Gemm": _gemm, "MatMul": _matmul, "Conv": _conv, "Relu": _relu, "Pad": _pad,
             "AveragePool": _pool, "GlobalAveragePool": _pool, "MaxPool": _pool,
             "BatchNormalization": _batchnorm, **{op: _elementwise for op in _ELEMENTWISE},
             **{op: _relayout for op in _LAYOUT}}
