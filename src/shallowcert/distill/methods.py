"""Distillation methods: their settings, and the ``loss_fn`` each one gives the fit loop.

============  =====================================================  ====================
method        loss per batch (see :mod:`shallowcert.distill.losses`)  targets
============  =====================================================  ====================
logits        ``logits_mse(f(x), z_t)``                               teacher logits
temperature   ``soft_target_cross_entropy(f(x), z_t, T)``             teacher logits
hinton        ``hinton_loss(f(x), z_t, y, T, alpha)``                 logits + labels
adversarial   ``logits_mse(f(x'), z_t)``, ``x'`` = ``matching_pgd``   teacher logits
============  =====================================================  ====================

``z_t`` are always the teacher's logits on the clean transfer input ``x``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from shallowcert.distill.adversarial import matching_pgd
from shallowcert.distill.losses import hinton_loss, logits_mse, soft_target_cross_entropy
from shallowcert.distill.targets import unpack_logits_and_labels
from shallowcert.errors import UserError
from shallowcert.training import LossFn

METHODS = ("logits", "temperature", "hinton", "adversarial")


@dataclass(frozen=True)
class DistillMethod:
    """A distillation method and its options.

    ``temperature``: T in (0, inf) (temperature, hinton); ``alpha``: weight of the soft
    term in [0, 1] (hinton); ``eps``: L-inf radius in input units, ``attack_steps`` and
    ``step_size`` (input units; default ``2.5 * eps / attack_steps``) of the inner PGD
    (adversarial).
    """

    name: str
    temperature: float = 1.0
    alpha: float = 0.5
    eps: float = 0.1
    attack_steps: int = 7
    step_size: float | None = None

    def __post_init__(self) -> None:
        if self.name not in METHODS:
            raise UserError(f"unknown distillation method '{self.name}' (choose from {', '.join(METHODS)})")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise UserError(f"temperature must be a finite number > 0, got {self.temperature}")
        if not 0.0 <= self.alpha <= 1.0:
            raise UserError(f"alpha must be in [0, 1], got {self.alpha}")
        if not (math.isfinite(self.eps) and self.eps > 0):
            raise UserError(f"eps must be a finite number > 0, got {self.eps}")
        if self.attack_steps < 1:
            raise UserError(f"attack steps must be at least 1, got {self.attack_steps}")
        if self.step_size is not None and not (math.isfinite(self.step_size) and self.step_size > 0):
            raise UserError(f"step size must be a finite number > 0, got {self.step_size}")

    @property
    def needs_labels(self) -> bool:
        return self.name == "hinton"

    @property
    def pgd_step_size(self) -> float:
        return self.step_size if self.step_size is not None else 2.5 * self.eps / self.attack_steps

    def settings(self) -> dict[str, Any]:
        """The options this method actually uses (for metrics.json)."""
        if self.name == "temperature":
            return {"method": self.name, "temperature": self.temperature}
        if self.name == "hinton":
            return {"method": self.name, "temperature": self.temperature, "alpha": self.alpha}
        if self.name == "adversarial":
            return {"method": self.name, "eps": self.eps, "attack_steps": self.attack_steps,
                    "step_size": self.pgd_step_size}
        return {"method": self.name}

    def loss_fn(self) -> LossFn:
        """``loss_fn(model, x, target, epoch)`` for :func:`shallowcert.training.fit`."""
        if self.name == "logits":
            def loss(model: nn.Module, x: torch.Tensor, target: torch.Tensor, epoch: int) -> torch.Tensor:
                return logits_mse(model(x), target)
        elif self.name == "temperature":
            def loss(model: nn.Module, x: torch.Tensor, target: torch.Tensor, epoch: int) -> torch.Tensor:
                return soft_target_cross_entropy(model(x), target, self.temperature)
        elif self.name == "hinton":
            def loss(model: nn.Module, x: torch.Tensor, target: torch.Tensor, epoch: int) -> torch.Tensor:
                logits, labels = unpack_logits_and_labels(target)
                return hinton_loss(model(x), logits, labels, temperature=self.temperature, alpha=self.alpha)
        else:
            def loss(model: nn.Module, x: torch.Tensor, target: torch.Tensor, epoch: int) -> torch.Tensor:
                perturbed = matching_pgd(model, x, target, eps=self.eps, steps=self.attack_steps,
                                         step_size=self.pgd_step_size)
                return logits_mse(model(perturbed), target)
        return loss
