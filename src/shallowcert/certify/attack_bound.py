"""The other side of the certified radius: the distance of the closest adversarial example found.

For a point ``x`` with label ``y`` (here: its predicted class) any adversarial example
``x'`` gives ``true radius <= ||x' - x||_inf``, so together with the certified radius
``r_cert``:

    r_cert <= true radius <= attack distance.

The distance is searched with an attack run at a radius per point: the radius doubles
from ``max(2 * r_cert, first)`` until the attack succeeds (or ``max_radius`` is passed),
then ``rounds`` bisection steps between the last failed radius and the best distance found
refine it. A failed attack proves nothing; only successes (their actual perturbation
``||x' - x||_inf``, in input units) lower the reported distance, which is ``inf`` for
points that no attack broke.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from shallowcert.attacks import PGD, IterativeAttack
from shallowcert.device import model_device


def adversarial_distance(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, *, lower: torch.Tensor,
                         attack: IterativeAttack | None = None, rounds: int = 6, first: float = 1e-3,
                         max_radius: float = 1.0, device: torch.device | None = None) -> torch.Tensor:
    """Smallest ``||x' - x||_inf`` over the adversarial examples found for each point (see module doc).

    ``lower`` (N,): the certified radii, where the search starts (the attack cannot succeed
    below them). Default attack: PGD, 40 steps of a quarter of the radius, early stop.
    ``device``: where the attacks run (default: the model's device; the model is moved there
    in place); the search state and the result (N,) stay on the CPU.
    """
    attack = attack or PGD(steps=40, relative_step=0.25, random_start=False)
    device = model_device(model) if device is None else device
    model.to(device)
    x, labels, lower = x.float().cpu(), labels.cpu(), lower.double().cpu()
    upper = torch.full((len(x),), math.inf, dtype=torch.float64)
    failed = lower.clone()                      # largest radius at which the attack failed
    eps = torch.clamp(2 * lower, min=first)

    def run(index: torch.Tensor, radius: torch.Tensor) -> None:
        result = attack(model, x[index].to(device), labels[index].to(device), eps=radius.float().to(device),
                        early_stop=True)
        hit = result.success.cpu()
        found = result.perturbation.double().cpu()
        upper[index[hit]] = torch.minimum(upper[index[hit]], found[hit])
        failed[index[~hit]] = torch.maximum(failed[index[~hit]], radius[~hit])

    while True:
        index = torch.nonzero(torch.isinf(upper) & (eps <= max_radius)).squeeze(1)
        if index.numel() == 0:
            break
        run(index, eps[index])
        eps[index] = eps[index] * 2
    for _ in range(rounds):
        index = torch.nonzero(torch.isfinite(upper) & (upper > failed)).squeeze(1)
        if index.numel() == 0:
            break
        run(index, (failed[index] + upper[index]) / 2)
    return upper
