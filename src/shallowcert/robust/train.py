"""Certified training: the generic fit loop with a bound-based loss and its schedule.

Training methods (:data:`TRAIN_METHODS`): every bound method of the engine with the loss of
Wong & Kolter (:mod:`shallowcert.robust.loss`) and an :class:`EpsilonSchedule`;
``dual-projected``, the same loss with the dual's ℓ1 terms estimated by random projections
(:mod:`shallowcert.robust.projected`); and ``crown-ibp`` with a :class:`CrownIbpSchedule`,
the mixed loss of Zhang et al. (:mod:`shallowcert.robust.crown_ibp`). Whatever the training
method, the epoch kept is chosen by an exact certificate (:func:`certificate_method`).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from shallowcert.bounds import METHODS
from shallowcert.certify.verdict import Domain, certify_points, check_method
from shallowcert.data.split import Split
from shallowcert.errors import UserError
from shallowcert.robust.crown_ibp import CrownIbpSchedule, crown_ibp_loss
from shallowcert.robust.loss import robust_loss
from shallowcert.robust.projected import DEFAULT_PROJECTIONS, projected_robust_loss
from shallowcert.robust.schedule import EpsilonSchedule
from shallowcert.training.loop import FitConfig, FitData, FitResult, LossFn, fit

PROJECTED = "dual-projected"
TRAIN_METHODS = (*METHODS, PROJECTED)


def check_train_method(method: str) -> str:
    """Return ``method`` if it is a training method, else raise a UserError naming the choices."""
    if method not in TRAIN_METHODS:
        raise UserError(f"unknown training method '{method}' (choose from {', '.join(TRAIN_METHODS)})")
    return method


def certificate_method(train_method: str) -> str:
    """The exact bound method that certifies for ``train_method``: ``dual`` for ``dual-projected``
    (an estimate is never a certificate), the method itself otherwise."""
    return "dual" if check_train_method(train_method) == PROJECTED else train_method


class _Progress:
    """Training progress in epochs, advanced by each batch: ``epoch + examples seen / examples``."""

    def __init__(self, examples: int) -> None:
        self.examples, self.epoch, self.seen = max(1, examples), -1, 0

    def advance(self, epoch: int, batch: int) -> float:
        if epoch != self.epoch:
            self.epoch, self.seen = epoch, 0
        progress = epoch + self.seen / self.examples
        self.seen += batch
        return progress


def robust_loss_fn(schedule: EpsilonSchedule | CrownIbpSchedule, *, method: str = "dual", domain: Domain = None,
                   projections: int = DEFAULT_PROJECTIONS, examples: int = 1) -> LossFn:
    """``loss_fn(model, x, y, epoch)`` for :func:`shallowcert.training.fit` (module docstring).

    With an :class:`EpsilonSchedule`: ``mean CE(-J(eps(epoch)), y)``, ``J`` from ``method``
    (``dual-projected``: ``projections`` Cauchy columns). With a :class:`CrownIbpSchedule`
    (``method`` must be ``crown-ibp``): the schedule advances per batch, ``examples`` being
    the examples of one epoch.
    """
    check_train_method(method)
    if isinstance(schedule, CrownIbpSchedule):
        if method != "crown-ibp":
            raise UserError(f"the CROWN-IBP schedule trains with method crown-ibp, not '{method}'")
        progress = _Progress(examples)

        def mixed(model: nn.Module, x: torch.Tensor, target: torch.Tensor, epoch: int) -> torch.Tensor:
            return crown_ibp_loss(model, x, target, schedule(progress.advance(epoch, len(x))), domain=domain).loss

        return mixed

    def loss_fn(model: nn.Module, x: torch.Tensor, target: torch.Tensor, epoch: int) -> torch.Tensor:
        if method == PROJECTED:
            return projected_robust_loss(model, x, target, schedule(epoch), projections=projections,
                                         domain=domain).loss
        return robust_loss(model, x, target, schedule(epoch), method=method, domain=domain).loss

    return loss_fn


def robust_fit(model: nn.Module, train: Split, *, schedule: EpsilonSchedule | CrownIbpSchedule, config: FitConfig,
               validate: Callable[[nn.Module], float], method: str = "dual", domain: Domain = None,
               val: Split | None = None, device: torch.device | None = None,
               projections: int = DEFAULT_PROJECTIONS) -> FitResult:
    """Train ``model`` in place on the loss of :func:`robust_loss_fn` with ``schedule``;
    ``validate(model)`` (higher is better) picks the epoch kept, as in every other trainer.
    ``val`` adds clean validation loss and accuracy to the learning curves; ``device`` as in
    :func:`shallowcert.training.fit` (default: the model's device)."""
    loss_fn = robust_loss_fn(schedule, method=method, domain=domain, projections=projections, examples=len(train))
    return fit(model, FitData(train, val=val), loss_fn=loss_fn, config=config, validate=validate,
               desc=f"robust-{method}", device=device)


def certified_accuracy_on(split: Split, eps: float, *, method: str = "dual",
                          domain: Domain = None) -> Callable[[nn.Module], float]:
    """``validate(model)`` for :func:`robust_fit`: certified accuracy at ``eps`` on ``split``
    with the exact bound ``method`` (a training method is mapped by :func:`certificate_method`),
    so the epoch kept is the most provably robust one, not the most accurate one (computed on
    the model's device)."""
    method = check_method(certificate_method(method))
    x, y = split.floats(), split.labels

    def validate(model: nn.Module) -> float:
        return certify_points(model, x, y, eps, method=method, domain=domain).certified_accuracy

    return validate
