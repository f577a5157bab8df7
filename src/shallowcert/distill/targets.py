"""Per-example targets for the fit loop when a loss needs teacher logits *and* labels.

:func:`shallowcert.training.fit` indexes one target tensor per batch, so the Hinton loss
gets a ``(N, K + 1)`` float tensor: columns ``0..K-1`` are the teacher logits and column
``K`` the integer label stored as a float (exact for labels below ``2**24``).
"""

from __future__ import annotations

import torch


def pack_logits_and_labels(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``(N, K)`` logits and ``(N,)`` labels -> one ``(N, K + 1)`` float tensor."""
    if labels.shape != (logits.shape[0],):
        raise ValueError(f"{logits.shape[0]} logits rows but labels of shape {tuple(labels.shape)}")
    return torch.cat([logits, labels.to(logits.dtype).unsqueeze(1)], dim=1)


def unpack_logits_and_labels(packed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of :func:`pack_logits_and_labels`: ``(logits (N, K), labels int64 (N,))``."""
    return packed[:, :-1], packed[:, -1].round().to(torch.int64)
