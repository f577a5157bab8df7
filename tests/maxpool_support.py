"""Shared by the max-pool tests: the exact minimum of a small network with max pools (HiGHS)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import Bounds, LinearConstraint, milp
from torch import nn


def _windows(step_shape: tuple[int, int, int], pool: nn.MaxPool2d) -> np.ndarray:
    """Indices (flat, into the pool's input) of every output's window inputs: ``(outputs, k)``; -1 pads."""
    index = torch.arange(np.prod(step_shape), dtype=torch.float64).reshape(1, *step_shape)
    k, s, p = pool.kernel_size, pool.stride, pool.padding
    padded = F.pad(index, (p, p, p, p), value=-1.0)
    columns = F.unfold(padded, k, stride=s).reshape(step_shape[0], k * k, -1)  # (C, k, L)
    return columns.permute(0, 2, 1).reshape(-1, k * k).long().numpy()


def milp_minimum_with_pools(model: nn.Sequential, lower: np.ndarray, upper: np.ndarray, row: np.ndarray,
                            in_shape: tuple[int, ...]) -> float:
    """Exact ``min row · f(x)`` over the box for a Conv/Linear/ReLU/MaxPool2d/Flatten network.

    Each affine stretch becomes a dense matrix; ReLU: the usual big-M; max pool ``y = max_i z_i``
    with window bounds ``l_i <= z_i <= u_i``, ``M = max u``: ``y >= z_i``,
    ``y <= z_i + (M - l_i)(1 - d_i)``, ``sum_i d_i = 1`` (``d_i = 1`` forces ``y = z_i``)."""
    columns: list[list[tuple[int, float]]] = []  # constraint rows as sparse lists
    row_lower: list[float] = []
    row_upper: list[float] = []
    var_lower, var_upper, integer = list(lower), list(upper), [0] * lower.size
    current = list(range(lower.size))  # variable index of every value of the activation
    box = (lower.copy(), upper.copy())
    shape = tuple(in_shape)
    affine: tuple[np.ndarray, np.ndarray] | None = None

    def new(lo: float, hi: float, binary: int = 0) -> int:
        var_lower.append(lo), var_upper.append(hi), integer.append(binary)
        return len(var_lower) - 1

    def flush() -> None:
        nonlocal current, box, affine
        if affine is None:
            return
        w, b = affine
        mid, rad = (box[1] + box[0]) / 2, (box[1] - box[0]) / 2
        lo, hi = w @ mid + b - np.abs(w) @ rad - 1e-7, w @ mid + b + np.abs(w) @ rad + 1e-7
        outputs = []
        for j in range(w.shape[0]):
            z = new(lo[j], hi[j])
            columns.append([(z, 1.0)] + [(current[i], -w[j, i]) for i in np.nonzero(w[j])[0]])
            row_lower.append(b[j]), row_upper.append(b[j])
            outputs.append(z)
        current, box, affine = outputs, (lo, hi), None

    for layer in model:
        if isinstance(layer, (nn.Conv2d, nn.Linear, nn.Flatten)):
            size = int(np.prod(shape))
            with torch.no_grad():
                eye = torch.eye(size, dtype=torch.float64).reshape(size, *shape)
                out = layer(eye)
                bias = layer(torch.zeros(1, *shape, dtype=torch.float64))
            w = (out - bias).reshape(size, -1).T.numpy()
            b = bias.reshape(-1).numpy()
            shape = tuple(out.shape[1:])
            affine = (w, b) if affine is None else (w @ affine[0], w @ affine[1] + b)
            continue
        flush()
        lo, hi = box
        if isinstance(layer, nn.ReLU):
            outputs = []
            for j, z in enumerate(current):
                a = new(max(lo[j], 0.0), max(hi[j], 0.0))
                outputs.append(a)
                if lo[j] >= 0:
                    columns.append([(a, 1.0), (z, -1.0)]), row_lower.append(0.0), row_upper.append(0.0)
                elif hi[j] > 0:
                    d = new(0.0, 1.0, 1)
                    columns.append([(a, 1.0), (z, -1.0)]), row_lower.append(0.0), row_upper.append(np.inf)
                    columns.append([(a, 1.0), (z, -1.0), (d, -lo[j])]), row_lower.append(-np.inf)
                    row_upper.append(-lo[j])
                    columns.append([(a, 1.0), (d, -hi[j])]), row_lower.append(-np.inf), row_upper.append(0.0)
            current, box = outputs, (np.maximum(lo, 0), np.maximum(hi, 0))
        elif isinstance(layer, nn.MaxPool2d):
            windows = _windows(shape, layer)
            outputs, new_lo, new_hi = [], [], []
            for window in windows:
                real = window[window >= 0]
                top = float(hi[real].max())
                y = new(float(lo[real].max()), top)
                picks = []
                for i in real:
                    d = new(0.0, 1.0, 1)
                    picks.append((d, 1.0))
                    columns.append([(y, 1.0), (current[i], -1.0)]), row_lower.append(0.0), row_upper.append(np.inf)
                    columns.append([(y, 1.0), (current[i], -1.0), (d, top - lo[i])]), row_lower.append(-np.inf)
                    row_upper.append(top - lo[i])
                columns.append(picks), row_lower.append(1.0), row_upper.append(1.0)
                outputs.append(y), new_lo.append(var_lower[y]), new_hi.append(top)
            k, s, p = layer.kernel_size, layer.stride, layer.padding
            shape = (shape[0], (shape[1] + 2 * p - k) // s + 1, (shape[2] + 2 * p - k) // s + 1)
            current, box = outputs, (np.array(new_lo), np.array(new_hi))
        else:
            raise TypeError(type(layer).__name__)
    w, b = affine if affine is not None else (np.eye(len(current)), np.zeros(len(current)))
    total = len(var_lower)
    matrix = np.zeros((len(columns), total))
    for r, entries in enumerate(columns):
        for c, value in entries:
            matrix[r, c] += value
    objective = np.zeros(total)
    objective[current] = row @ w
    result = milp(objective, constraints=LinearConstraint(matrix, row_lower, row_upper), integrality=np.array(integer),
                  bounds=Bounds(np.array(var_lower), np.array(var_upper)), options={"mip_rel_gap": 1e-9})
    assert result.success, result.message
    return float(result.fun + row @ b)
