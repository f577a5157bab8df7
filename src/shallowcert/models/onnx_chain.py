"""The running state of an ONNX-to-torch translation (:mod:`shallowcert.models.onnx_import`).

The translator walks the graph's chain of nodes and keeps, besides the layers built so far:

* the ONNX chain value's name and shape, and its **layout**: ``index``, of that shape, gives
  where each entry lies in the model's current value flattened. Transpose and reshape nodes
  only permute ``index``; a layer that needs an image in its own layout (``Conv``, pools)
  takes the value as it is when ``index`` is the identity, and before the first layer the
  model's input is re-based to the chain value's layout (``input_order`` records the map
  from the ONNX input); a ``Linear`` absorbs any permutation into its columns;
* a **pending affine map** ``scale * x + shift`` from elementwise nodes, in the chain value's
  layout, folded into the previous layer when nothing but reshaping lies between
  (``W' = diag(s) W``, ``b' = s b + t``), else into the next ``Linear``, else emitted as a
  layer (``onnx_layers``);
* a pending zero ``Pad`` (top, left, bottom, right) for the next ``Conv`` or ``AveragePool``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

from shallowcert.errors import UserError
from shallowcert.models import onnx_layers


@dataclass
class Affine:
    """A pending elementwise map ``scale * x + shift`` in the layout of the chain value."""

    scale: np.ndarray
    shift: np.ndarray
    node: str


class Chain:
    """The running translation.

    ``value``/``shape``: the ONNX chain value's name and shape (no batch dimension when
    ``batched``). ``index`` (shape ``shape``): where each of its entries lies in the model's
    current value flattened (``model_shape``). Before the first layer the model's value is
    its input, which :meth:`image` may re-base to the chain value's layout.
    """

    def __init__(self, name: str, shape: tuple[int, ...], batched: bool, source: str) -> None:
        self.value, self.shape, self.batched, self.source = name, shape, batched, source
        self.index = np.arange(int(np.prod(shape))).reshape(shape)
        self.model_shape = self.input_shape = shape
        self.input_order = np.arange(int(np.prod(shape)))
        self.layers: list[nn.Module] = []
        self.pending: Affine | None = None
        self.pad: tuple[int, int, int, int] | None = None  # a zero Pad waiting for its Conv/AveragePool
        self.bias_open = False  # the last layer is a Linear/Conv whose output is the chain value
        self.shapes: dict[str, tuple[int, ...]] = {name: self.full(shape)}

    def fail(self, node: object, why: str) -> UserError:
        return UserError(f"{self.source}: node {label(node)}: {why}")

    def full(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return (1, *shape) if self.batched else shape

    def aligned(self) -> bool:
        """The chain value is the model's value itself (same shape, no reordering)."""
        return self.shape == self.model_shape and bool((self.index.reshape(-1) == np.arange(self.index.size)).all())

    def append(self, layer: nn.Module, shape: tuple[int, ...], *, linear: bool) -> None:
        self.layers.append(layer)
        self.model_shape = self.shape = shape
        self.index = np.arange(int(np.prod(shape))).reshape(shape)
        self.bias_open = linear

    def image(self, node: object) -> None:
        """Make the chain value a batched ``(C, H, W)`` image the next layer can take as it is."""
        if not self.batched or len(self.shape) != 3:
            raise self.fail(node, f"needs a batched image (C, H, W), gets shape {self.shape}")
        if not self.aligned():
            if self.layers:
                raise self.fail(node, "its input is a reordering (Transpose/Reshape) of the previous layer's "
                                      "output that no layer can follow; only one before the first layer or before "
                                      "a Flatten into a linear layer is supported")
            self.input_order = self.input_order[self.index.reshape(-1)]
            self.model_shape = self.input_shape = self.shape
            self.index = np.arange(self.index.size).reshape(self.shape)
        self.flush(node)

    def flush(self, node: object | None) -> None:
        """Emit the pending affine map as a layer (per channel on images, per feature on vectors)."""
        pending = self.pending
        if pending is None or self.fold_back():
            return
        scale, shift = (self.to_model(a) for a in (pending.scale, pending.shift))
        if len(self.model_shape) == 1:
            layer = onnx_layers.feature_affine(scale, shift)
        elif len(self.model_shape) == 3 and per_channel(scale, shift):
            layer = onnx_layers.channel_affine(scale[:, 0, 0], shift[:, 0, 0])
        else:
            where = f"before node {label(node)}" if node is not None else "at the end of the graph"
            raise UserError(f"{self.source}: node {pending.node}: an elementwise affine map {where} is supported "
                            "only per channel on images, on vectors, or directly before or after a linear layer")
        self.pending = None
        self.layers.append(layer)
        self.bias_open = False

    def fold_back(self) -> bool:
        """Fold the pending affine map into the last layer when nothing but reshaping follows
        it (a Linear, or a Conv with a map constant per channel); whether it did."""
        if self.pending is None or not self.bias_open:
            return False
        scale, shift = (self.to_model(a) for a in (self.pending.scale, self.pending.shift))
        layer = self.layers[-1]
        assert isinstance(layer, (nn.Linear, nn.Conv2d))  # what bias_open means
        if not onnx_layers.fold_into(layer, scale, shift):
            return False
        self.pending = None
        return True

    def to_model(self, array: np.ndarray) -> np.ndarray:
        """``array`` (the chain value's layout) in the model value's layout."""
        out = np.empty(self.index.size)
        out[self.index.reshape(-1)] = np.broadcast_to(array, self.shape).reshape(-1)
        return out.reshape(self.model_shape)


def label(node: Any) -> str:
    name = getattr(node, "name", "") or (node.output[0] if getattr(node, "output", None) else "?")
    return f"'{name}' ({getattr(node, 'op_type', '?')})"


def per_channel(scale: np.ndarray, shift: np.ndarray) -> bool:
    return all(bool(np.all(a == a[:, :1, :1])) for a in (scale, shift))
