"""Running a model without changing the caller's copy: its train/eval modes restored after
use (:func:`evaluation_mode`), or a copy cast to another floating-point dtype
(:func:`model_in_dtype`). Attacks, distillation, certification and verification all use them.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn


@contextmanager
def evaluation_mode(model: nn.Module) -> Iterator[None]:
    """Put every sub-module of ``model`` in eval mode, and restore each one's mode after."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


def model_in_dtype(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    """``model`` itself when its floating-point parameters and buffers already have ``dtype``
    (a floating-point dtype), else a deep copy cast to it (eval mode). The caller's model is
    never modified."""
    if not dtype.is_floating_point:
        raise ValueError(f"a model is cast to a floating-point dtype, not {dtype}")
    parameters = list(model.parameters()) + list(model.buffers())
    if all(p.dtype == dtype for p in parameters if p.is_floating_point()):
        return model
    return copy.deepcopy(model).to(dtype).eval()
