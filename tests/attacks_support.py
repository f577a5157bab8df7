"""Shared by the tests/test_attacks_*.py files: a tiny trained model on synthetic data.

Five classes of 8x8 single-channel images (a random prototype per class plus uniform
noise); a small conv net fitted for a few hundred Adam steps in float64, so that the
predictions are varied and attacks succeed at some radii and fail at others.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from shallowcert.models import build

SHAPE = (1, 8, 8)
CLASSES = 5
SPEC = "layers:c4k3s2p1,relu,flat,fc16,relu,fc"


def synthetic_batch(n: int, *, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images in [0, 1] (float64) and their labels."""
    prototypes = torch.rand(CLASSES, *SHAPE, generator=torch.Generator().manual_seed(1234), dtype=torch.float64)
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, CLASSES, (n,), generator=g)
    noise = torch.rand(n, *SHAPE, generator=g, dtype=torch.float64)
    return (0.5 * prototypes[labels] + 0.5 * noise).clamp(0, 1), labels


@functools.lru_cache(maxsize=None)
def _trained_state(spec: str) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = build(spec, SHAPE, CLASSES).double()
    x, y = synthetic_batch(512, seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    model.train()
    for _ in range(150):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def trained_model(spec: str = SPEC) -> nn.Sequential:
    """A fresh copy of the tiny trained model (eval mode, float64)."""
    model = build(spec, SHAPE, CLASSES).double()
    model.load_state_dict(_trained_state(spec))
    return model.eval()
