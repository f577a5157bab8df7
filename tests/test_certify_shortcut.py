"""The affine shortcut: its zero is where the (piecewise) affine bound crosses 0, and it is sound."""

from __future__ import annotations

import math

import pytest
import torch

from shallowcert.bounds import InputSet, linear_lower_bound, margin_spec
from shallowcert.certify.shortcut import affine_zero


def affine_bound(offset, lam, center, eps, domain):
    """min over the (clipped) box of offset + lam . x, by coordinates: (N, K)."""
    c = center.flatten(1).unsqueeze(1)
    lo, hi = c - eps, c + eps
    if domain is not None:
        lo, hi = lo.clamp(min=domain[0]), hi.clamp(max=domain[1])
    return offset + torch.where(lam > 0, lam * lo, lam * hi).sum(-1)


@pytest.mark.parametrize("domain", [None, (0.0, 1.0)])
def test_zero_is_the_crossing_of_the_smallest_row(domain) -> None:
    g = torch.Generator().manual_seed(0)
    center = torch.rand(6, 12, generator=g, dtype=torch.float64)
    lam = torch.randn(6, 3, 12, generator=g, dtype=torch.float64)
    offset = 2.0 - (lam * center.unsqueeze(1)).sum(-1) + torch.rand(6, 3, generator=g, dtype=torch.float64)
    offset[0] = -1.0 - (lam[0] * center[0]).sum(-1)  # already negative at the centre
    zero = affine_zero(offset, lam, center, domain)
    assert zero[0] == 0
    for i in range(1, 6):
        z = float(zero[i])
        if math.isinf(z):
            assert bool((affine_bound(offset, lam, center, 1e3, domain)[i] > 0).all())
            continue
        assert bool((affine_bound(offset, lam, center, z * (1 - 1e-9), domain)[i] > 0).all())
        assert float(affine_bound(offset, lam, center, z * (1 + 1e-9), domain)[i].min()) <= 1e-12


def test_shortcut_radius_is_sound() -> None:
    """Inside the zero of the form computed at R, sampled inputs keep every margin positive and
    above the form (the form is a lower bound on the whole R-ball, hence on the smaller ball)."""
    torch.manual_seed(2)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 20), torch.nn.ReLU(),
                                torch.nn.Linear(20, 3)).double().eval()
    x = torch.rand(10, 1, 4, 4, dtype=torch.float64)
    labels = model(x).argmax(1)
    spec = margin_spec(labels, 3).double()
    big = torch.full((10,), 0.05, dtype=torch.float64)
    lam, offset = linear_lower_bound(model, InputSet(x, big, domain=None), spec)
    lam, offset = lam.detach(), offset.detach()
    zero = affine_zero(offset, lam, x, None).clamp(max=0.05)
    assert bool((zero > 0).sum() >= 5)
    g = torch.Generator().manual_seed(3)
    for _ in range(20):
        corner = torch.randint(0, 2, x.shape, generator=g).double() * 2 - 1
        noise = torch.rand(x.shape, generator=g, dtype=torch.float64) * 2 - 1
        for direction in (corner, noise):
            sample = x + zero.view(-1, 1, 1, 1) * direction
            with torch.no_grad():
                margins = torch.einsum("nkc,nc->nk", spec, model(sample))
            form = offset + (lam * sample.flatten(1).unsqueeze(1)).sum(-1)
            assert bool((margins >= form - 1e-12).all())
            assert bool((margins[zero > 0] >= 0).all())
