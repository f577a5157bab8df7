"""Validation of user-facing arguments (attacks, certification, training schedules): every
user mistake becomes one :class:`UserError` line.

Conventions checked here: inputs ``x`` are floating tensors ``(N, ...)`` with every value
in ``[0, 1]``; labels ``y`` are integer tensors of shape ``(N,)`` with values in
``[0, classes)``; a radius ``eps`` (input units) is a non-negative finite float or a
tensor of ``N`` such values.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

from shallowcert.errors import UserError


def positive_int(name: str, value: int) -> int:
    """Return ``value`` if it is an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def positive_float(name: str, value: float) -> float:
    """Return ``value`` as a float if it is finite and > 0."""
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise UserError(f"{name} must be a finite number > 0, got {value!r}")
    return number


def non_negative_float(name: str, value: float) -> float:
    """Return ``value`` as a float if it is finite and >= 0."""
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise UserError(f"{name} must be a finite number >= 0, got {value!r}")
    return number


def inputs(x: Tensor) -> None:
    """Check that ``x`` is a float batch ``(N, ...)`` with every value finite and in ``[0, 1]``."""
    if not isinstance(x, Tensor) or not x.is_floating_point() or x.dim() < 2:
        raise UserError("inputs must be a floating-point tensor of shape (N, ...)")
    if x.numel() and not bool(torch.isfinite(x).all()):
        raise UserError("inputs contain NaN or inf")
    if x.numel() and (float(x.min()) < 0.0 or float(x.max()) > 1.0):
        raise UserError(f"inputs must lie in [0, 1], got values in [{float(x.min()):.4g}, {float(x.max()):.4g}]")


def inputs_and_labels(x: Tensor, y: Tensor) -> None:
    """Check that ``x`` is a float batch in ``[0, 1]`` and ``y`` one integer label per row."""
    inputs(x)
    if not isinstance(y, Tensor) or y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise UserError("labels must be an integer tensor of shape (N,)")
    if y.dim() != 1 or y.shape[0] != x.shape[0]:
        raise UserError(f"labels have shape {tuple(y.shape)}, inputs need ({x.shape[0]},)")


def labels_within(y: Tensor, classes: int) -> None:
    """Check that every label is a valid class index for a model with ``classes`` outputs."""
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= classes):
        raise UserError(f"labels must lie in [0, {classes}), got values in [{int(y.min())}, {int(y.max())}]")


def epsilon_per_point(eps: float | Tensor, like: Tensor) -> Tensor:
    """Return the radius as a tensor ``(N,)`` with the dtype and device of ``like`` (N rows)."""
    n = like.shape[0]
    if isinstance(eps, Tensor):
        if eps.dim() > 1 or (eps.dim() == 1 and eps.shape[0] != n):
            raise UserError(f"eps has shape {tuple(eps.shape)}, expected a number or a tensor of shape ({n},)")
        radius = eps.detach().to(dtype=like.dtype, device=like.device).expand(n).clone()
    else:
        radius = torch.full((n,), float(eps), dtype=like.dtype, device=like.device)
    if radius.numel() and (not bool(torch.isfinite(radius).all()) or float(radius.min()) < 0):
        raise UserError(f"eps must be finite and >= 0 (input units), got {eps!r}")
    return radius


def increasing_grid(eps_grid: Sequence[float]) -> list[float]:
    """Return the radii as floats if they form a non-empty, non-decreasing list of values >= 0."""
    grid = [non_negative_float("every eps of the grid", value) for value in eps_grid]
    if not grid:
        raise UserError("the eps grid is empty")
    if any(b < a for a, b in zip(grid, grid[1:])):
        raise UserError(f"the eps grid must be in increasing order, got {grid}")
    return grid
