"""One generic fit loop with early stopping, shared by every trainer.

Supervised training, distillation and certified training differ only in the loss, so
they all call :func:`fit` with their own ``loss_fn(model, x, target, epoch)``. After
each epoch ``validate(model)`` (higher is better, e.g. validation accuracy) decides
whether this is the best epoch; the best weights are restored at the end and training
stops after ``patience`` epochs without improvement.

The history (learning curves) has one entry per epoch run: ``loss``, the trainer's own
objective averaged over the epoch's batches (train mode, weights changing), ``val``, the
score ``validate`` returned, and the same two measures for every model whatever its
trainer: ``train_loss`` / ``train_accuracy``, cross-entropy (nats) and accuracy on the
labelled training split after the epoch (eval mode; the first ``curve_points`` points),
and ``val_loss`` / ``val_accuracy`` on the validation split when one is given.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

import torch
from torch import nn
from tqdm import tqdm

from shallowcert.data.split import Split, to_float
from shallowcert.device import batch_to, model_device
from shallowcert.errors import UserError
from shallowcert.training.evaluate import loss_and_accuracy

log = logging.getLogger(__name__)

OPTIMIZERS = ("adam", "sgd", "rmsprop")


class LossFn(Protocol):
    def __call__(self, model: nn.Module, x: torch.Tensor, target: torch.Tensor, epoch: int) -> torch.Tensor: ...


@dataclass(frozen=True)
class FitConfig:
    """Optimisation settings. ``patience`` = epochs without improvement before stopping."""

    epochs: int = 10
    optimizer: str = "adam"
    lr: float = 1e-3
    batch_size: int = 128
    seed: int = 0
    patience: int = 5
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd only

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise UserError(f"unknown optimizer '{self.optimizer}' (choose from {', '.join(OPTIMIZERS)})")
        for name in ("epochs", "batch_size", "patience"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise UserError(f"learning rate must be positive, got {self.lr}")


@dataclass
class FitResult:
    best_epoch: int
    best_score: float
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


def make_optimizer(model: nn.Module, config: FitConfig) -> torch.optim.Optimizer:
    params = model.parameters()
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    return torch.optim.RMSprop(params, lr=config.lr, weight_decay=config.weight_decay)


def cross_entropy_loss(model: nn.Module, x: torch.Tensor, target: torch.Tensor, epoch: int) -> torch.Tensor:
    """Supervised loss: ``CE(f(x), y) = -log softmax(f(x))_y``, averaged over the batch."""
    return nn.functional.cross_entropy(model(x), target)


def epoch_record(model: nn.Module, epoch: int, *, loss: float, score: float, train: Split,
                 val: Split | None) -> dict[str, float]:
    """One history entry: the objective and score of the epoch, and cross-entropy / accuracy
    of ``model`` on ``train`` and ``val`` (see the module docstring)."""
    record = {"epoch": epoch, "loss": loss, "val": score}
    for name, split in (("train", train), ("val", val)):
        if split is not None and len(split):
            record[f"{name}_loss"], record[f"{name}_accuracy"] = loss_and_accuracy(model, split)
    return record


@dataclass(frozen=True)
class FitData:
    """What :func:`fit` trains on and measures the learning curves on.

    ``train``: the labelled training split; ``inputs`` (uint8 images) and ``targets`` (any
    per-example tensor, e.g. teacher logits) replace ``train.images`` / ``train.labels`` when
    given, so the same loop trains on unlabelled transfer sets; the learning curves are still
    measured on ``train``'s labels, on its first ``curve_points`` points (None: all). ``val``
    (the validation split) adds ``val_loss`` / ``val_accuracy`` to the history.
    """

    train: Split
    val: Split | None = None
    inputs: torch.Tensor | None = None
    targets: torch.Tensor | None = None
    curve_points: int | None = 2_000

    def examples(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The training inputs and their targets."""
        images = self.train.images if self.inputs is None else self.inputs
        targets = self.train.labels if self.targets is None else self.targets
        if len(images) != len(targets):
            raise ValueError(f"{len(images)} inputs but {len(targets)} targets")
        return images, targets


def fit(model: nn.Module, data: FitData | Split, *, loss_fn: LossFn = cross_entropy_loss, config: FitConfig,
        validate: Callable[[nn.Module], float], desc: str = "train", device: torch.device | None = None) -> FitResult:
    """Train ``model`` in place on ``data`` (a split: its images and labels); the best epoch by
    ``validate`` is kept.

    ``device``: where to train (default: the model's device); the model is moved there in
    place, images and targets stay on the CPU and each batch is moved
    (:mod:`shallowcert.device`). The batch order is drawn on the CPU, so it does not depend
    on the device.
    """
    data = data if isinstance(data, FitData) else FitData(data)
    trainer = _Trainer(model, data, loss_fn, config, model_device(model) if device is None else device)
    best_state = copy.deepcopy(model.state_dict())
    result = FitResult(best_epoch=0, best_score=float("-inf"))
    start = time.perf_counter()
    stale = 0
    for epoch in range(config.epochs):
        loss = trainer.epoch(epoch, f"{desc} epoch {epoch + 1}/{config.epochs}")
        model.eval()
        score = float(validate(model))
        result.history.append(epoch_record(model, epoch + 1, loss=loss, score=score,
                                           train=data.train.head(data.curve_points), val=data.val))
        log.info("%s epoch %d/%d: loss %.4f, validation %.4f", desc, epoch + 1, config.epochs, loss, score)
        if score > result.best_score:
            result.best_score, result.best_epoch, stale = score, epoch + 1, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
            if stale >= config.patience:
                log.info("%s: early stop after epoch %d (best %d)", desc, epoch + 1, result.best_epoch)
                break
    model.load_state_dict(best_state)
    model.eval()
    result.seconds = time.perf_counter() - start
    return result


class _Trainer:
    """The optimisation state of one :func:`fit`: the model moved to ``device``, its optimiser
    and the generator of the batch order (seeded by ``config.seed``)."""

    def __init__(self, model: nn.Module, data: FitData, loss_fn: LossFn, config: FitConfig,
                 device: torch.device) -> None:
        self.model, self.data, self.loss_fn, self.config, self.device = model, data, loss_fn, config, device
        model.to(device)
        torch.manual_seed(config.seed)
        self.order = torch.Generator().manual_seed(config.seed)
        self.optimizer = make_optimizer(model, config)

    def epoch(self, epoch: int, desc: str) -> float:
        """One pass over the examples in a freshly drawn order; the mean objective."""
        images, targets = self.data.examples()
        self.model.train()
        order = torch.randperm(len(images), generator=self.order)
        total, count = 0.0, 0
        for i in tqdm(range(0, len(images), self.config.batch_size), desc=desc, leave=False, unit="batch"):
            index = order[i:i + self.config.batch_size]
            x, target = to_float(batch_to(images[index], self.device)), batch_to(targets[index], self.device)
            loss = self.loss_fn(self.model, x, target, epoch)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += float(loss.detach()) * len(index)
            count += len(index)
        return total / max(count, 1)
