"""The one non-torch layer we ship: per-channel input normalisation.

Inputs to every model are in [0, 1]; a model that wants standardised inputs carries
``Normalize`` as its first layer, so that epsilon stays in input units and the
certification engine can fold the affine map ``(x - mean) / std`` into the next layer.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class Normalize(nn.Module):
    """``y[c] = (x[c] - mean[c]) / std[c]`` for each channel ``c`` of an NCHW input."""

    mean: torch.Tensor  # buffers (C, 1, 1)
    std: torch.Tensor

    def __init__(self, mean: Sequence[float] | torch.Tensor, std: Sequence[float] | torch.Tensor) -> None:
        super().__init__()
        mean_t = torch.as_tensor(mean, dtype=torch.float32).reshape(-1, 1, 1)
        std_t = torch.as_tensor(std, dtype=torch.float32).reshape(-1, 1, 1)
        if mean_t.shape != std_t.shape:
            raise ValueError("mean and std must have one value per channel")
        if bool((std_t <= 0).any()):
            raise ValueError("std must be positive")
        self.register_buffer("mean", mean_t)
        self.register_buffer("std", std_t)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        return f"channels={self.mean.numel()}"
