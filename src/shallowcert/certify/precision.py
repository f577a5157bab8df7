"""Floating-point precision of a certification: cast a model copy and its inputs.

A certificate is a statement about exact real arithmetic computed in floating point, so
every verdict and radius records the dtype it was computed in. ``float64`` shrinks the
rounding error of the bounds by about nine orders of magnitude relative to ``float32``.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from shallowcert.errors import UserError

DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float64": torch.float64}


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


def model_in_dtype(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    """``model`` itself when it already has ``dtype``, else a deep copy cast to it (eval mode).

    The caller's model is never modified.
    """
    dtype_name(dtype)
    parameters = list(model.parameters()) + list(model.buffers())
    if all(p.dtype == dtype for p in parameters if p.is_floating_point()):
        return model
    return copy.deepcopy(model).to(dtype).eval()
