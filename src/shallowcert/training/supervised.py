"""Train a classifier from a spec with cross-entropy: the teacher and the hard-label controls."""

from __future__ import annotations

import torch
from torch import nn

from shallowcert.data.registry import Dataset
from shallowcert.models.spec import build
from shallowcert.training.evaluate import accuracy
from shallowcert.training.loop import FitConfig, FitData, FitResult, fit


def build_seeded(spec: str, dataset: Dataset, seed: int) -> nn.Sequential:
    """Build ``spec`` for ``dataset`` with weights initialised from ``seed``."""
    torch.manual_seed(seed)
    return build(spec, dataset.input_shape, dataset.classes)


def train_classifier(spec: str, dataset: Dataset, config: FitConfig, *,
                     device: torch.device | None = None) -> tuple[nn.Sequential, FitResult]:
    """Cross-entropy training with early stopping on validation accuracy (never on test).

    The model is initialised on the CPU (the same weights on every device), then trained on
    ``device`` (default: the CPU) and returned there.
    """
    model = build_seeded(spec, dataset, config.seed)
    result = fit(model, FitData(dataset.train, val=dataset.val), config=config,
                 validate=lambda m: accuracy(m, dataset.val), desc=spec, device=device)
    return model, result
