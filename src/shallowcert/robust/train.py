"""Certified training: the generic fit loop with the robust loss and the epsilon warm-up."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from shallowcert.certify.verdict import Domain, certify_points, check_method
from shallowcert.data.split import Split
from shallowcert.robust.loss import robust_loss
from shallowcert.robust.schedule import EpsilonSchedule
from shallowcert.training.loop import FitConfig, FitData, FitResult, LossFn, fit


def robust_loss_fn(schedule: EpsilonSchedule, *, method: str = "dual", domain: Domain = None) -> LossFn:
    """``loss_fn(model, x, y, epoch) = mean CE(-J(eps(epoch)), y)`` for :func:`shallowcert.training.fit`."""
    check_method(method)

    def loss_fn(model: nn.Module, x: torch.Tensor, target: torch.Tensor, epoch: int) -> torch.Tensor:
        return robust_loss(model, x, target, schedule(epoch), method=method, domain=domain).loss

    return loss_fn


def robust_fit(model: nn.Module, train: Split, *, schedule: EpsilonSchedule, config: FitConfig,
               validate: Callable[[nn.Module], float], method: str = "dual", domain: Domain = None,
               val: Split | None = None, device: torch.device | None = None) -> FitResult:
    """Train ``model`` in place on the robust loss (Wong & Kolter) with the warm-up ``schedule``;
    ``validate(model)`` (higher is better) picks the epoch kept, as in every other trainer.
    ``val`` adds clean validation loss and accuracy to the learning curves; ``device`` as in
    :func:`shallowcert.training.fit` (default: the model's device)."""
    return fit(model, FitData(train, val=val), loss_fn=robust_loss_fn(schedule, method=method, domain=domain),
               config=config, validate=validate, desc=f"robust-{method}", device=device)


def certified_accuracy_on(split: Split, eps: float, *, method: str = "dual",
                          domain: Domain = None) -> Callable[[nn.Module], float]:
    """``validate(model)`` for :func:`robust_fit`: certified accuracy at ``eps`` on ``split``,
    so the epoch kept is the most provably robust one, not the most accurate one (computed on
    the model's device)."""
    x, y = split.floats(), split.labels

    def validate(model: nn.Module) -> float:
        return certify_points(model, x, y, eps, method=method, domain=domain).certified_accuracy

    return validate
