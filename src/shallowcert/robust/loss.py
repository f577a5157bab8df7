"""The robust loss of Wong & Kolter (2018) for any bound method of the engine.

For a point ``x`` with label ``y`` and radius ``eps`` (input units, inputs in [0, 1]) let
``J_j(eps)`` be the engine's lower bound of ``f(x')_y - f(x')_j`` over the input set, with
``J_y = 0``. The worst logits the relaxation allows are ``-J``, and the loss is

    L(x, y) = CE(-J(eps), y) = log sum_j exp(-J_j(eps)),

an upper bound on the cross-entropy at the worst input of the set. The batch's robust
error is the fraction of points with some ``J_j(eps) <= 0`` (``j != y``): not certified.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from shallowcert.certify.verdict import Domain, check_method, margin_lower_bounds


@dataclass(frozen=True)
class RobustLoss:
    loss: torch.Tensor   # scalar, differentiable w.r.t. the model's parameters
    robust_error: float  # fraction of the batch not certified at eps


def negated_margin_bounds(bounds: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``-J`` as logits (N, classes): the bounds (N, classes-1) of rows ``e_y - e_j`` (``j != y``,
    increasing ``j``, the order of :func:`shallowcert.bounds.margin_spec`), and 0 at ``y``."""
    classes = bounds.shape[1] + 1
    others = torch.ones(len(labels), classes, dtype=torch.bool, device=labels.device)
    others[torch.arange(len(labels), device=labels.device), labels] = False
    logits = torch.zeros(len(labels), classes, dtype=bounds.dtype, device=bounds.device)
    return logits.masked_scatter(others, -bounds)


def robust_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, method: str = "dual",
                domain: Domain = None) -> RobustLoss:
    """``mean_i CE(-J(eps)_i, y_i)`` over the batch and its robust error (module docstring);
    computed on the device of ``x`` (where ``y`` and the model must be too)."""
    check_method(method)
    classes = model(x[:1]).shape[1]
    radius = torch.full((len(x),), float(eps), dtype=x.dtype, device=x.device)
    bounds = margin_lower_bounds(model, x, y, radius, method=method, domain=domain, classes=classes)
    loss = F.cross_entropy(negated_margin_bounds(bounds, y), y)
    robust_error = float((bounds.detach() <= 0).any(dim=1).double().mean())
    return RobustLoss(loss, robust_error)
