"""Accuracy, per-class accuracy and mean cross-entropy of a classifier on a split."""

from __future__ import annotations

import torch
from torch import nn

from shallowcert.data.split import Split
from shallowcert.device import model_device


@torch.no_grad()
def predictions(model: nn.Module, split: Split, *, batch_size: int = 512) -> torch.Tensor:
    """Predicted labels (on the CPU) for every point of ``split``, computed on the model's device
    (model in eval mode, restored after)."""
    was_training = model.training
    model.eval()
    preds = [model(x).argmax(dim=1).cpu() for x, _ in split.batches(batch_size, device=model_device(model))]
    model.train(was_training)
    return torch.cat(preds) if preds else torch.empty(0, dtype=torch.long)


def accuracy(model: nn.Module, split: Split, *, batch_size: int = 512) -> float:
    """Fraction of points of ``split`` whose predicted label is the true label."""
    if len(split) == 0:
        raise ValueError("cannot compute the accuracy of an empty split")
    return float((predictions(model, split, batch_size=batch_size) == split.labels).float().mean())


def per_class_accuracy(model: nn.Module, split: Split, classes: int, *, batch_size: int = 512) -> list[float | None]:
    """Accuracy on the points of each true class (None for a class with no points)."""
    correct = predictions(model, split, batch_size=batch_size) == split.labels
    result: list[float | None] = []
    for c in range(classes):
        mask = split.labels == c
        result.append(float(correct[mask].float().mean()) if bool(mask.any()) else None)
    return result


@torch.no_grad()
def loss_and_accuracy(model: nn.Module, split: Split, *, batch_size: int = 512) -> tuple[float, float]:
    """``(mean cross-entropy in nats, accuracy)`` of ``model`` on ``split`` (eval mode, restored after).

    Cross-entropy ``-log softmax(f(x))_y`` averaged over the points; batches are moved to the
    device of the model's parameters.
    """
    if len(split) == 0:
        raise ValueError("cannot evaluate on an empty split")
    was_training = model.training
    model.eval()
    loss, correct = 0.0, 0
    for x, y in split.batches(batch_size, device=model_device(model)):
        logits = model(x)
        loss += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
        correct += int((logits.argmax(dim=1) == y).sum())
    model.train(was_training)
    return loss / len(split), correct / len(split)
