"""CROWN-IBP training (Zhang et al. 2020, "Towards Stable and Efficient Training of Verifiably
Robust Neural Networks"): a natural and a bound-based loss, mixed on a schedule.

For a point ``x`` with label ``y`` let ``J^IBP`` and ``J^CROWN-IBP`` be the engine's lower bounds
of the margins ``f(x')_y - f(x')_j`` over the ball of radius ``eps`` (``ibp`` and ``crown-ibp``
methods, :mod:`shallowcert.bounds`). The loss is

    L = kappa * CE(f(x), y) + (1 - kappa) * CE(-[(1 - beta) J^IBP + beta J^CROWN-IBP], y),

a convex combination of two lower bounds being a lower bound too. All three numbers follow
one linear ramp over training progress ``p`` (in epochs, advanced batch by batch)::

    r(p) = clamp((p - start_epoch) / ramp_epochs, 0, 1)
    eps(p) = r * eps,   kappa(p) = kappa0 + (kappa1 - kappa0) r,   beta(p) = beta0 + (beta1 - beta0) r

The paper's setting, the default here: ``eps`` from 0, ``kappa`` from 1 to 0 (natural loss only
at first, the bound-based loss only at the end) and ``beta`` from 1 to 0 (the tighter CROWN-IBP
bound while ``eps`` is small, pure IBP, the cheaper one, from the end of the ramp on).
Radii in input units (inputs in [0, 1]).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from shallowcert.certify.verdict import Domain, margin_lower_bounds
from shallowcert.checks import non_negative_float
from shallowcert.errors import UserError
from shallowcert.robust.loss import RobustLoss, negated_margin_bounds


@dataclass(frozen=True)
class CrownIbpValues:
    """The schedule at one moment: radius, natural-loss weight ``kappa``, CROWN-IBP weight ``beta``."""

    eps: float
    kappa: float
    beta: float


@dataclass(frozen=True)
class CrownIbpSchedule:
    """The ramps of ``eps``, ``kappa`` and ``beta`` (module docstring); ``kappa``/``beta``: (start, end)."""

    eps: float
    ramp_epochs: float = 1.0
    start_epoch: float = 0.0
    kappa: tuple[float, float] = (1.0, 0.0)
    beta: tuple[float, float] = (1.0, 0.0)

    def __post_init__(self) -> None:
        non_negative_float("epsilon", self.eps)
        non_negative_float("start_epoch", self.start_epoch)
        if not self.ramp_epochs > 0:
            raise UserError(f"ramp_epochs must be positive, got {self.ramp_epochs}")
        for name in ("kappa", "beta"):
            if len(getattr(self, name)) != 2 or not all(0.0 <= v <= 1.0 for v in getattr(self, name)):
                raise UserError(f"{name} must be (start, end) within [0, 1], got {getattr(self, name)}")

    def __call__(self, progress: float) -> CrownIbpValues:
        """The values at ``progress`` epochs of training (fractional: batches seen / batches per epoch)."""
        if progress < 0:
            raise ValueError(f"progress must be >= 0, got {progress}")
        ratio = min(max((progress - self.start_epoch) / self.ramp_epochs, 0.0), 1.0)
        (kappa0, kappa1), (beta0, beta1) = self.kappa, self.beta
        return CrownIbpValues(self.eps * ratio, kappa0 + (kappa1 - kappa0) * ratio, beta0 + (beta1 - beta0) * ratio)


def crown_ibp_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, values: CrownIbpValues, *,
                   domain: Domain = None) -> RobustLoss:
    """The loss ``L`` of the module docstring for one batch (terms with weight 0 are not computed)
    and the fraction of the batch whose mixed margin bounds are not all positive."""
    classes = model(x[:1]).shape[1]
    radius = torch.full((len(x),), float(values.eps), dtype=x.dtype, device=x.device)
    parts = [weight * margin_lower_bounds(model, x, y, radius, method=method, domain=domain, classes=classes)
             for weight, method in ((1.0 - values.beta, "ibp"), (values.beta, "crown-ibp")) if weight > 0]
    bounds = parts[0] if len(parts) == 1 else parts[0] + parts[1]
    robust = F.cross_entropy(negated_margin_bounds(bounds, y), y)
    loss = robust if values.kappa == 0 else values.kappa * F.cross_entropy(model(x), y) + (1 - values.kappa) * robust
    return RobustLoss(loss, float((bounds.detach() <= 0).any(dim=1).double().mean()))
