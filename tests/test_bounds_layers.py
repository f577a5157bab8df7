"""Affine layers (Normalize, BatchNorm, AvgPool), the radius shortcut and gradients."""

from __future__ import annotations

import pytest
import torch
from convex_adversarial import DualNetwork
from torch import nn

from bounds_support import pgd_minimum, random_convnet, samples, spec_values
from shallowcert.bounds import METHODS, InputSet, linear_lower_bound, lower_bounds, margin_spec
from shallowcert.models import Normalize


def _affine_net(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    model = nn.Sequential(
        Normalize([0.4, 0.5], [0.3, 0.2]), nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.AvgPool2d(2), nn.Conv2d(4, 5, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
        nn.Linear(5 * 2 * 2, 10), nn.BatchNorm1d(10), nn.ReLU(), nn.Dropout(0.3), nn.Linear(10, 3))
    for bn in (model[2], model[9]):
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(-1.5, 1.5)
    return model.double().eval()


@pytest.mark.parametrize("seed", range(3))
def test_affine_layers_are_sound(seed: int) -> None:
    model = _affine_net(seed)
    x = torch.rand(4, 2, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    input_set = InputSet(x, torch.full((4,), 0.05, dtype=torch.float64))
    with torch.no_grad():
        spec = margin_spec(model(x).argmax(1), 3).double()
    sampled = spec_values(model, samples(input_set, 64, seed=seed), spec).amin(0)
    attacked = pgd_minimum(model, input_set, spec, steps=30, restarts=2)
    for method in METHODS:
        bound = lower_bounds(model, input_set, spec, method=method, alpha_steps=5).detach()
        assert bool((bound <= torch.minimum(sampled, attacked) + 1e-9).all()), method


def test_normalize_equals_folded_first_layer() -> None:
    """Normalize before an unpadded conv folds exactly into it; dual-exact bounds agree with
    convex_adversarial on the folded network."""
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 3, 3)
    tail = [nn.ReLU(), nn.Flatten(), nn.Linear(3 * 5 * 5, 8), nn.ReLU(), nn.Linear(8, 4)]
    mean, std = 0.375, 0.25  # exact in float32, as Normalize stores them
    model = nn.Sequential(Normalize([mean], [std]), conv, *tail).double().eval()
    folded_conv = nn.Conv2d(1, 3, 3).double()
    with torch.no_grad():
        folded_conv.weight.copy_(conv.weight / std)
        folded_conv.bias.copy_(conv.bias - conv.weight.sum((1, 2, 3)) * mean / std)
    folded = nn.Sequential(folded_conv, *tail).double().eval()
    x = torch.rand(3, 1, 7, 7, dtype=torch.float64)
    spec = margin_spec(torch.tensor([0, 1, 2]), 4).double()
    with torch.no_grad():
        reference = DualNetwork(folded, x, 0.05)(spec)
    ours = lower_bounds(model, InputSet(x, torch.full((3,), 0.05, dtype=torch.float64), domain=None), spec,
                        method="dual-exact")
    torch.testing.assert_close(ours.detach(), reference, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_linear_shortcut_holds_for_smaller_radii(method: str) -> None:
    model = random_convnet(seed=1)
    x = torch.rand(3, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    eps = torch.full((3,), 0.06, dtype=torch.float64)
    spec = margin_spec(torch.tensor([0, 1, 2]), 4).double()
    lam, offset = linear_lower_bound(model, InputSet(x, eps, domain=None), spec, method=method, alpha_steps=5)
    at_eps = lower_bounds(model, InputSet(x, eps, domain=None), spec, method=method, alpha_steps=5)
    shortcut = offset + (lam * x.reshape(3, 1, -1)).sum(-1)
    torch.testing.assert_close(shortcut - 0.06 * lam.abs().sum(-1), at_eps)
    for smaller in (0.03, 0.01):
        small_set = InputSet(x, torch.full((3,), smaller, dtype=torch.float64), domain=None)
        value = shortcut - smaller * lam.abs().sum(-1)
        sampled = spec_values(model, samples(small_set, 64, seed=2), spec).amin(0)
        assert bool((value <= sampled + 1e-9).all())


@pytest.mark.parametrize("method", METHODS)
def test_bounds_are_differentiable_in_the_parameters(method: str) -> None:
    model = random_convnet(seed=2).float()
    x = torch.rand(2, 1, 8, 8)
    bound = lower_bounds(model, InputSet(x, torch.full((2,), 0.05)), margin_spec(torch.tensor([0, 1]), 4),
                         method=method, alpha_steps=3)
    assert bound.dtype == torch.float32
    bound.sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and bool(torch.isfinite(g).all()) for g in grads)
    assert any(float(g.abs().sum()) > 0 for g in grads)
