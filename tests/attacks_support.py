"""Shared by the tests/test_attacks_*.py files: a tiny trained model on synthetic data.

Five classes of 8x8 single-channel images (a random prototype per class plus uniform
noise); a small conv net fitted for 60 Adam steps (float32, used in float64), so that the
predictions are varied and attacks succeed at some radii and fail at others.
"""

from __future__ import annotations

import functools
from typing import Iterator

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from shallowcert.models import build

SHAPE = (1, 8, 8)
CLASSES = 5
SPEC = "layers:c4k3s2p1,relu,flat,fc16,relu,fc"


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tensors here are tiny: one intra-op thread is faster than two, and immune to OpenMP
    spinning when other processes share the cores. Import this fixture to apply it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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
    model = build(spec, SHAPE, CLASSES)
    x, y = synthetic_batch(256, seed=0)
    x = x.float()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    model.train()
    for _ in range(60):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    return {k: v.detach().double() if v.is_floating_point() else v.detach().clone()
            for k, v in model.state_dict().items()}


def trained_model(spec: str = SPEC) -> nn.Sequential:
    """A fresh copy of the tiny trained model (eval mode, float64)."""
    model = build(spec, SHAPE, CLASSES).double()
    model.load_state_dict(_trained_state(spec))
    return model.eval()
