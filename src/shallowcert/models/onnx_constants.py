"""Evaluate the ONNX nodes that compute on constants only, the way exporters build shapes.

``x.view(x.size(0), -1)`` exported by torch.onnx becomes ``Shape -> Gather -> Unsqueeze ->
Concat -> Reshape``; tf2onnx and keras2onnx emit similar chains and ``Cast`` of constants.
Every input of these nodes is a constant (``Shape`` reads only the static shape of its
input, with batch size 1), so the translator folds them here, in numpy, before any layer
is built. Only the ops listed in :data:`FOLDABLE` are evaluated; any other op on constants
is refused by the translator.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from shallowcert.models.onnx_proto import DOUBLE, FLOAT, FLOAT16

_CAST = {FLOAT: np.float32, DOUBLE: np.float64, FLOAT16: np.float16, 6: np.int32, 7: np.int64, 9: np.bool_}


def _axes(arrays: list[np.ndarray], attrs: dict[str, Any]) -> list[int]:
    """The ``axes`` of Squeeze/Unsqueeze/Slice: an input from opset 13, an attribute before."""
    if len(arrays) > 1:
        return [int(a) for a in arrays[1].reshape(-1)]
    return [int(a) for a in attrs.get("axes", [])]


def _unsqueeze(arrays: list[np.ndarray], attrs: dict[str, Any]) -> np.ndarray:
    x, axes = arrays[0], _axes(arrays, attrs)
    rank = x.ndim + len(axes)
    return np.expand_dims(x, tuple(sorted(a % rank for a in axes)))


def _squeeze(arrays: list[np.ndarray], attrs: dict[str, Any]) -> np.ndarray:
    axes = _axes(arrays, attrs)
    return np.squeeze(arrays[0], tuple(a % arrays[0].ndim for a in axes) if axes else None)


def _reshape(arrays: list[np.ndarray], attrs: dict[str, Any]) -> np.ndarray:
    return arrays[0].reshape(resolve_reshape(arrays[0].shape, arrays[1], allowzero=bool(attrs.get("allowzero", 0))))


def _slice(arrays: list[np.ndarray], attrs: dict[str, Any]) -> np.ndarray:
    x = arrays[0]
    if len(arrays) > 1:  # opset 10+: starts, ends, axes, steps as inputs
        starts, ends = arrays[1].reshape(-1), arrays[2].reshape(-1)
        axes = arrays[3].reshape(-1) if len(arrays) > 3 else np.arange(len(starts))
        steps = arrays[4].reshape(-1) if len(arrays) > 4 else np.ones(len(starts), dtype=np.int64)
    else:
        starts, ends = np.asarray(attrs["starts"]), np.asarray(attrs["ends"])
        axes = np.asarray(attrs.get("axes", range(len(starts))))
        steps = np.ones(len(starts), dtype=np.int64)
    index = [slice(None)] * x.ndim
    for start, end, axis, step in zip(starts, ends, axes, steps):
        index[int(axis) % x.ndim] = slice(int(start), int(end), int(step))
    return x[tuple(index)]


def _cast(arrays: list[np.ndarray], attrs: dict[str, Any]) -> np.ndarray:
    target = int(attrs["to"])
    if target not in _CAST:
        raise ValueError(f"cast to data type {target} is not supported")
    return arrays[0].astype(_CAST[target])


def _binary(function: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable[..., np.ndarray]:
    def apply(arrays: list[np.ndarray], attrs: dict[str, Any]) -> np.ndarray:
        a, b = arrays
        result = function(a, b)
        return result.astype(a.dtype) if np.issubdtype(a.dtype, np.integer) else result
    return apply


def _divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a // b if np.issubdtype(a.dtype, np.integer) else a / b


FOLDABLE: dict[str, Callable[[list[np.ndarray], dict[str, Any]], np.ndarray]] = {
    "Identity": lambda arrays, attrs: arrays[0],
    "Cast": _cast,
    "Gather": lambda arrays, attrs: np.take(arrays[0], arrays[1].astype(np.int64), axis=int(attrs.get("axis", 0))),
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Concat": lambda arrays, attrs: np.concatenate(arrays, axis=int(attrs["axis"])),
    "Reshape": _reshape,
    "Flatten": lambda arrays, attrs: arrays[0].reshape(
        int(np.prod(arrays[0].shape[:int(attrs.get("axis", 1))])), -1),
    "Transpose": lambda arrays, attrs: np.transpose(arrays[0], attrs.get("perm")),
    "Slice": _slice,
    "Neg": lambda arrays, attrs: -arrays[0],
    "ConstantOfShape": lambda arrays, attrs: np.full(arrays[0].astype(np.int64).reshape(-1),
                                                     attrs.get("value", np.zeros(1, np.float32)).reshape(-1)[0]),
    "Add": _binary(np.add),
    "Sub": _binary(np.subtract),
    "Mul": _binary(np.multiply),
    "Div": _binary(_divide),
}


def shape_of(full_shape: tuple[int, ...], attrs: dict[str, Any]) -> np.ndarray:
    """ONNX ``Shape`` (with its opset-15 ``start``/``end``) of a tensor of ``full_shape``."""
    rank = len(full_shape)
    start, end = int(attrs.get("start", 0)), attrs.get("end")
    stop = rank if end is None else int(end)
    return np.asarray(full_shape, dtype=np.int64)[slice(start % rank if start < 0 else start,
                                                        stop % rank if stop < 0 else stop)]


def resolve_reshape(shape: tuple[int, ...], target: np.ndarray, *, allowzero: bool = False) -> tuple[int, ...]:
    """ONNX ``Reshape``'s output shape for an input of ``shape``: ``0`` copies the input's
    dimension (unless ``allowzero``), one ``-1`` takes what is left."""
    dims = [int(t) for t in np.asarray(target).reshape(-1)]
    resolved = [shape[i] if d == 0 and not allowzero and i < len(shape) else d for i, d in enumerate(dims)]
    if resolved.count(-1) > 1:
        raise ValueError(f"reshape target {dims} has more than one -1")
    total = int(np.prod(shape, dtype=np.int64))
    if -1 in resolved:
        known = int(np.prod([d for d in resolved if d != -1], dtype=np.int64))
        if known == 0 or total % known:
            raise ValueError(f"cannot reshape {tuple(shape)} to {dims}")
        resolved[resolved.index(-1)] = total // known
    if int(np.prod(resolved, dtype=np.int64)) != total:
        raise ValueError(f"cannot reshape {tuple(shape)} to {dims}")
    return tuple(resolved)
