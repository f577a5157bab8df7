"""Distillation losses between student logits ``z_s`` and teacher logits ``z_t``.

Every loss takes ``(N, K)`` logits (``N`` points, ``K`` classes) and is reduced by the
mean over the batch. ``softmax_T(z)_k = exp(z_k / T) / sum_j exp(z_j / T)``.

* :func:`logits_mse` (Ba & Caruana 2014, "matching logits")::

      L = mean_i  1/2 * sum_k (z_s[i,k] - z_t[i,k])^2                (half the squared L2 distance)

* :func:`soft_target_cross_entropy` (the thesis' temperature targets: teacher at ``T``,
  student at 1)::

      L = mean_i  - sum_k softmax_T(z_t[i])_k * log softmax_1(z_s[i])_k

* :func:`hinton_loss` (Hinton et al. 2015, both at ``T``, mixed with the hard labels ``y``)::

      L = alpha * T^2 * mean_i KL(softmax_T(z_t[i]) || softmax_T(z_s[i]))
          + (1 - alpha) * mean_i -log softmax_1(z_s[i])_{y_i}

Relations (checked by the tests): the half-sum scale of :func:`logits_mse` makes its
gradient ``z_s - z_t``; as ``T -> inf`` the gradient of ``T^2 * KL`` tends to
``(c(z_s) - c(z_t)) / K`` with ``c(z) = z - mean_k z_k``, i.e. ``1/K`` times the gradient
of :func:`logits_mse` for zero-mean logits. As ``T -> 0``, ``softmax_T(z_t)`` tends to the
one-hot vector of ``argmax z_t``, so :func:`soft_target_cross_entropy` tends to the
cross-entropy with the teacher's hard predictions (for a teacher without ties).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def check_temperature(temperature: float) -> float:
    """``T`` must be a finite number > 0 (ValueError otherwise)."""
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature}")
    return float(temperature)


def logits_mse(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """``mean_i 1/2 * sum_k (z_s[i,k] - z_t[i,k])^2`` (logits in their own units)."""
    return 0.5 * (student - teacher).pow(2).sum(dim=1).mean()


def soft_target_cross_entropy(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """``mean_i -sum_k softmax(z_t[i] / T)_k * log softmax(z_s[i])_k``, student at T = 1."""
    soft_targets = F.softmax(teacher / check_temperature(temperature), dim=1)
    return -(soft_targets * F.log_softmax(student, dim=1)).sum(dim=1).mean()


def hinton_loss(student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor, *, temperature: float,
                alpha: float) -> torch.Tensor:
    """``alpha * T^2 * KL(softmax(z_t/T) || softmax(z_s/T)) + (1 - alpha) * CE(z_s, y)``, batch means."""
    t = check_temperature(temperature)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    kl = F.kl_div(F.log_softmax(student / t, dim=1), F.log_softmax(teacher / t, dim=1),
                  reduction="batchmean", log_target=True)
    return alpha * t * t * kl + (1.0 - alpha) * F.cross_entropy(student, labels)
