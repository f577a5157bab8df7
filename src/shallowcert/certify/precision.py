"""Floating-point precision of a certification: cast a model copy and its inputs.

A certificate is a statement about exact real arithmetic computed in floating point, so
every verdict and radius records the dtype it was computed in. ``float64`` shrinks the
rounding error of the bounds by about nine orders of magnitude relative to ``float32``.

A margin lower bound certifies only when it exceeds :func:`rounding_margin`: the bounds are
sums of thousands of terms of about the logits' size, so a bound a few hundred ulps of that
size away from 0 could have either sign in exact arithmetic (when unsure: not certified).
This is a guard band, not a rigorous rounding analysis; use float64 where it matters.
"""

from __future__ import annotations

import torch

from shallowcert.errors import UserError

DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float64": torch.float64}
ROUNDING_ULPS = 256  # guard band, in units of the dtype's machine epsilon times the logit scale


def rounding_margin(logits: torch.Tensor) -> torch.Tensor:
    """Per point ``(N,)``: ``ROUNDING_ULPS * eps_machine * max(1, max_j |logit_j|)`` in the
    logits' dtype; a margin lower bound must exceed it to certify (module docstring).
    For float32 and logits of size 10: 3e-4; for float64: 6e-13."""
    scale = logits.detach().abs().amax(dim=1).clamp(min=1)
    return ROUNDING_ULPS * torch.finfo(logits.dtype).eps * scale


def parse_dtype(name: str) -> torch.dtype:
    """``"float32"`` / ``"float64"`` -> the torch dtype (UserError for anything else)."""
    try:
        return DTYPES[name]
    except KeyError:
        raise UserError(f"unknown dtype '{name}' (choose from {', '.join(DTYPES)})") from None


def dtype_name(dtype: torch.dtype) -> str:
    """The torch dtype -> its short name, as recorded next to every verdict."""
    for name, value in DTYPES.items():
        if value == dtype:
            return name
    raise UserError(f"certification runs in float32 or float64, not {dtype}")
