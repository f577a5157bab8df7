"""The inner maximisation of adversarial distillation (thesis 4.2.3).

The student ``f`` sees a perturbed input and must still match the teacher's logits ``z_t``
on the *clean* input. The perturbation is found on the fly by projected gradient ascent
on the student's own matching loss (L-infinity ball of radius ``eps`` in input units,
inputs kept in ``[0, 1]``)::

    x_0     = clip(x + u, 0, 1),  u ~ Uniform[-eps, eps]^d          (random start)
    x_{t+1} = clip(x + clip(x_t + a * sign(grad_x L(f(x_t), z_t)) - x, -eps, eps), 0, 1)
    L(z, z_t) = mean_i 1/2 * sum_k (z[i,k] - z_t[i,k])^2           (``logits_mse``)

``shallowcert.attacks`` maximises a classification loss and stops on misclassification,
which does not fit a regression target, hence this small dedicated loop. The random
start draws from torch's global generator, which :func:`shallowcert.training.fit` seeds.
"""

from __future__ import annotations

import torch
from torch import nn

from shallowcert.model_state import evaluation_mode
from shallowcert.distill.losses import logits_mse


def matching_pgd(model: nn.Module, x: torch.Tensor, teacher_logits: torch.Tensor, *, eps: float, steps: int,
                 step_size: float) -> torch.Tensor:
    """The perturbed inputs ``x_T`` (detached, within ``eps`` of ``x`` and in ``[0, 1]``).

    The model runs in eval mode during the search; gradients flow only to the input, the
    model's parameter gradients are left untouched.
    """
    x = x.detach()
    target = teacher_logits.detach()
    adv = (x + (2.0 * torch.rand_like(x) - 1.0) * eps).clamp(0.0, 1.0)
    with evaluation_mode(model):
        for _ in range(steps):
            adv.requires_grad_(True)
            (gradient,) = torch.autograd.grad(logits_mse(model(adv), target), adv)
            adv = adv.detach() + step_size * gradient.sign()
            adv = (x + (adv - x).clamp(-eps, eps)).clamp(0.0, 1.0)
    return adv.detach()
