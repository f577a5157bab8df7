"""Labelled splits held as uint8 tensors, served as float batches in [0, 1]."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from shallowcert.device import batch_to


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float32 in [0, 1] (``x / 255``)."""
    return images.to(torch.float32).div_(255.0)


@dataclass(frozen=True)
class Split:
    """Images (uint8, N x C x H x W) with their labels (int64, N)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError("images must be a uint8 N x C x H x W tensor")
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError("labels must be a vector with one label per image")

    @classmethod
    def from_numpy(cls, images: np.ndarray, labels: np.ndarray) -> "Split":
        return cls(torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels.astype(np.int64)))

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def head(self, n: int | None) -> "Split":
        """The first ``n`` points (all of them when ``n`` is None)."""
        return self if n is None else Split(self.images[:n], self.labels[:n])

    def subset(self, index: torch.Tensor) -> "Split":
        return Split(self.images[index], self.labels[index])

    def floats(self) -> torch.Tensor:
        """All images as float32 in [0, 1]."""
        return to_float(self.images)

    def batches(self, batch_size: int, *, shuffle: bool = False, generator: torch.Generator | None = None,
                device: torch.device | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(x float32 in [0, 1], y int64)`` batches, optionally in a seeded random order
        (drawn on the CPU), each moved to ``device`` (default: the CPU) as uint8 and converted there."""
        order = torch.randperm(len(self), generator=generator) if shuffle else torch.arange(len(self))
        device = torch.device("cpu") if device is None else device
        for start in range(0, len(self), batch_size):
            index = order[start:start + batch_size]
            yield to_float(batch_to(self.images[index], device)), batch_to(self.labels[index], device)


def carve_validation(train: Split, val_size: int, seed: int) -> tuple[Split, Split]:
    """Split ``train`` into (train, validation) with a seeded permutation; test is never used."""
    if not 0 < val_size < len(train):
        raise ValueError(f"validation size {val_size} must be between 1 and {len(train) - 1}")
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    val_index, train_index = order[:val_size].sort().values, order[val_size:].sort().values
    return train.subset(train_index), train.subset(val_index)
