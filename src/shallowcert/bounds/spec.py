"""Specifications: matrices ``C`` whose rows are the linear functions of the logits to bound."""

from __future__ import annotations

import torch

from shallowcert.errors import UserError


def margin_spec(labels: torch.Tensor, classes: int) -> torch.Tensor:
    """Rows ``e_y - e_j`` for every ``j != y``: shape ``(N, classes - 1, classes)``.

    A lower bound ``> 0`` on every row certifies that class ``y`` wins everywhere in the set.
    """
    if labels.dim() != 1 or labels.dtype not in (torch.int64, torch.int32):
        raise UserError("labels must be a 1-D integer tensor")
    if classes < 2 or bool(((labels < 0) | (labels >= classes)).any()):
        raise UserError(f"labels must lie in [0, {classes}) with at least 2 classes")
    eye = torch.eye(classes, dtype=torch.float32, device=labels.device)
    rows = eye[labels].unsqueeze(1) - eye.unsqueeze(0)  # (N, classes, classes), row y is zero
    others = eye[labels] == 0  # (N, classes)
    return rows[others].reshape(labels.shape[0], classes - 1, classes)


def checked_spec(spec: torch.Tensor | None, *, points: int, outputs: int, dtype: torch.dtype,
                 device: torch.device) -> torch.Tensor:
    """Validate ``spec`` (``(N, K, outputs)``) or build the identity; cast to ``dtype``."""
    if spec is None:
        return torch.eye(outputs, dtype=dtype, device=device).expand(points, outputs, outputs)
    if not isinstance(spec, torch.Tensor) or spec.dim() != 3 or spec.shape[0] != points or spec.shape[2] != outputs:
        shape = tuple(spec.shape) if isinstance(spec, torch.Tensor) else type(spec).__name__
        raise UserError(f"spec must have shape ({points}, K, {outputs}), got {shape}")
    if not bool(torch.isfinite(spec).all()):
        raise UserError("spec contains NaN or infinite values")
    return spec.to(dtype=dtype, device=device)
