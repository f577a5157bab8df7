"""BIM, MIM and L2 PGD match their update formulas step by step, recomputed by hand."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attacks_support import one_thread, synthetic_batch, trained_model  # noqa: F401  (autouse fixture)
from shallowcert.attacks import BIM, MIM, L2PGD

EPS = 0.08
ALPHA = 0.02


def loss_gradient(model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    loss = F.cross_entropy(model(x), y, reduction="none").sum()
    return torch.autograd.grad(loss, x)[0]


def linf_clip(x: torch.Tensor, x0: torch.Tensor, eps: float) -> torch.Tensor:
    return torch.min(torch.max(x, x0 - eps), x0 + eps).clamp(0, 1)


def correctly_classified():
    """Points the model gets right (attacks skip the others), labelled with its predictions."""
    model = trained_model()
    x, _ = synthetic_batch(24, seed=3)
    return model, x, model(x).argmax(dim=1)


def bim_by_hand(model, x0, y, steps: int) -> list[torch.Tensor]:
    iterates, x = [], x0.clone()
    for _ in range(steps):
        x = linf_clip(x + ALPHA * loss_gradient(model, x, y).sign(), x0, EPS)
        iterates.append(x)
    return iterates


def mim_by_hand(model, x0, y, steps: int, mu: float) -> list[torch.Tensor]:
    iterates, x, g = [], x0.clone(), torch.zeros_like(x0)
    for _ in range(steps):
        grad = loss_gradient(model, x, y)
        g = mu * g + grad / grad.abs().sum(dim=(1, 2, 3), keepdim=True)
        x = linf_clip(x + ALPHA * g.sign(), x0, EPS)
        iterates.append(x)
    return iterates


def test_bim_matches_its_update_step_by_step() -> None:
    model, x, y = correctly_classified()
    expected = bim_by_hand(model, x, y, steps=4)
    for t in range(1, 5):
        got = BIM(steps=t, step_size=ALPHA)(model, x, y, eps=EPS).adversarial
        assert torch.allclose(got, expected[t - 1], rtol=0, atol=1e-12), f"step {t}"


@pytest.mark.parametrize("mu", [1.0, 0.5])
def test_mim_matches_its_update_step_by_step(mu: float) -> None:
    model, x, y = correctly_classified()
    expected = mim_by_hand(model, x, y, steps=5, mu=mu)
    for t in range(1, 6):
        got = MIM(steps=t, step_size=ALPHA, decay=mu)(model, x, y, eps=EPS).adversarial
        assert torch.allclose(got, expected[t - 1], rtol=0, atol=1e-12), f"step {t}"
    # momentum matters: by the last step MIM has left BIM's path on some point
    assert not torch.allclose(expected[-1], bim_by_hand(model, x, y, steps=5)[-1])


def test_mim_without_momentum_is_bim() -> None:
    model, x, y = correctly_classified()
    mim = MIM(steps=6, step_size=ALPHA, decay=0.0)(model, x, y, eps=EPS)
    bim = BIM(steps=6, step_size=ALPHA)(model, x, y, eps=EPS)
    assert torch.equal(mim.adversarial, bim.adversarial)


def test_l2_pgd_matches_its_update() -> None:
    model, x, y = correctly_classified()
    eps, alpha = 0.5, 0.2
    expected = x.clone()
    for _ in range(3):
        grad = loss_gradient(model, expected, y)
        moved = expected + alpha * grad / grad.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
        delta = moved - x
        scale = torch.clamp(eps / delta.flatten(1).norm(dim=1), max=1.0).view(-1, 1, 1, 1)
        expected = (x + scale * delta).clamp(0, 1)
    got = L2PGD(steps=3, step_size=alpha, random_start=False)(model, x, y, eps=eps).adversarial
    assert torch.allclose(got, expected, rtol=0, atol=1e-12)


def test_relative_step_scales_with_each_points_eps() -> None:
    model, x, y = correctly_classified()
    eps = torch.full((x.shape[0],), EPS, dtype=x.dtype)
    relative = BIM(steps=3, relative_step=ALPHA / EPS)(model, x, y, eps=eps).adversarial
    absolute = BIM(steps=3, step_size=ALPHA)(model, x, y, eps=EPS).adversarial
    assert torch.allclose(relative, absolute, rtol=0, atol=1e-12)
