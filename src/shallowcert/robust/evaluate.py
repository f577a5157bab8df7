"""Robustness metrics of a classifier at one radius: clean, PGD and certified errors.

On ``N`` points at radius ``eps`` (input units, inputs in [0, 1]):

* clean error = fraction misclassified;
* PGD error = fraction misclassified or broken by PGD within ``eps`` (a lower bound on the
  true robust error);
* robust error bound = fraction misclassified or not certified (an upper bound on it),

so ``clean error <= PGD error <= robust error bound`` up to the attack's randomness.
"""

from __future__ import annotations

import torch
from torch import nn

from shallowcert.attacks import PGD
from shallowcert.certify.verdict import Domain, certify_points
from shallowcert.device import model_device


def robustness_metrics(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, *, method: str = "dual",
                       domain: Domain = None, attack: PGD | None = None,
                       dtype: torch.dtype = torch.float32, device: torch.device | None = None) -> dict[str, object]:
    """Clean error, PGD error and robust error bound at ``eps`` (see the module docstring).

    Default attack: PGD with 40 steps of ``eps / 4`` from a random start, one restart.
    ``device``: where to compute (default: the model's device; the model is moved there).
    """
    device = model_device(model) if device is None else device
    verdict = certify_points(model, x, y, eps, method=method, domain=domain, dtype=dtype, device=device)
    attack = attack or PGD(steps=40, relative_step=0.25, random_start=True)
    broken = attack(model, x.to(device), y.to(device), eps=eps).success.cpu()
    return {
        "n": verdict.n, "eps": verdict.eps, "method": method, "dtype": verdict.dtype,
        "domain": list(domain) if domain is not None else None,
        "clean_error": 1.0 - verdict.clean_accuracy,
        "pgd_error": float((broken | ~verdict.correct).double().mean()),
        "robust_error_bound": verdict.robust_error_bound,
        "attack": repr(attack),
    }
