"""Interval arithmetic (IBP) through the engine's steps, in centre/radius form.

For an affine map ``y = A x + b`` and a box with centre ``m`` and radius ``r``:
``m' = A m + b``, ``r' = |A| r`` (exact for one map); a ReLU clamps both ends at 0; a max
pool takes the max of each end over its windows.
"""

from __future__ import annotations

import torch

from shallowcert.bounds.affine import AffineMap
from shallowcert.bounds.maxpool import MaxPoolStep
from shallowcert.bounds.network import Step


def affine_interval(steps: list[Step], lower: torch.Tensor, upper: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Propagate the box ``[lower, upper]`` (``(N, *shape)``) through ``steps``."""
    for step in steps:
        if isinstance(step, AffineMap):
            mid, rad = (upper + lower) / 2, (upper - lower) / 2
            mid = step.apply(mid) if step.bias is None else step.apply(mid) + step.bias
            rad = step.apply_abs(rad)
            lower, upper = mid - rad, mid + rad
        elif isinstance(step, MaxPoolStep):
            lower, upper = step.apply(lower), step.apply(upper)
        else:
            lower, upper = torch.relu(lower), torch.relu(upper)  # a clamp's gradient is a slow boolean where
    return lower, upper
