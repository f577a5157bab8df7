"""Transfer sets: the inputs on which the student learns to imitate the teacher.

* ``train``: the labelled training split (thesis experiment A); its labels are kept, so
  the Hinton loss can mix in the hard targets.
* ``extra``: the dataset's unlabelled transfer set (thesis experiment B; SVHN ``extra``,
  CIFAR-100 + CIFAR-10 train for CIFAR-10, augmented copies of train for Fashion-MNIST).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch

from shallowcert.data import Dataset
from shallowcert.errors import UserError

TRANSFER_SETS = ("train", "extra")


@dataclass(frozen=True)
class TransferSet:
    """uint8 images (N x C x H x W), labels when the set has them, and where they came from."""

    dataset: str
    which: str
    images: torch.Tensor
    labels: torch.Tensor | None

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def fingerprint(self) -> str:
        """SHA-256 of the image bytes: the identity of the set's contents (seed, size, files)."""
        return hashlib.sha256(self.images.contiguous().numpy().tobytes()).hexdigest()


def transfer_set(dataset: Dataset, which: str, *, limit: int | None = None) -> TransferSet:
    """The transfer set ``which`` of ``dataset``, cut to its first ``limit`` points if given."""
    if which == "train":
        images, labels = dataset.train.images, dataset.train.labels
    elif which == "extra":
        extra = dataset.transfer()
        if extra is None:
            raise UserError(f"dataset '{dataset.name}' has no transfer set (use --transfer train)")
        images, labels = extra, None
    else:
        raise UserError(f"unknown transfer set '{which}' (choose from {', '.join(TRANSFER_SETS)})")
    if limit is not None:
        if limit < 1:
            raise UserError(f"the transfer set limit must be at least 1, got {limit}")
        images = images[:limit]
        labels = None if labels is None else labels[:limit]
    return TransferSet(dataset.name, which, images, labels)
