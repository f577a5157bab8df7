"""Robust error bound: between the PGD error and 1, equal to the clean error at eps = 0."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from shallowcert.certify import certified_radius, certify_points, robust_error_bound
from shallowcert.errors import UnsupportedLayerError, UserError
from shallowcert.robust import robustness_metrics


@functools.lru_cache(maxsize=1)
def trained_mlp() -> tuple[nn.Sequential, torch.Tensor, torch.Tensor]:
    """A small MLP fitted to a linearly separable toy problem on 1x4x4 inputs."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(200, 1, 4, 4, generator=g)
    y = (x[:, 0, :2].mean((1, 2)) > x[:, 0, 2:].mean((1, 2))).long()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 24), nn.ReLU(), nn.Linear(24, 2))
    optimiser = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(100):
        optimiser.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimiser.step()
    return model.eval(), x, y


@pytest.mark.parametrize("method", ["dual", "ibp", "crown"])
def test_bound_lies_between_pgd_error_and_one(method: str) -> None:
    model, x, y = trained_mlp()
    metrics = robustness_metrics(model, x, y, 0.03, method=method)
    assert metrics["clean_error"] <= metrics["pgd_error"] <= metrics["robust_error_bound"] <= 1.0
    assert metrics["robust_error_bound"] > metrics["clean_error"]  # the radius matters at all
    assert robust_error_bound(model, x, y, 0.03, method=method) == metrics["robust_error_bound"]


def test_bound_at_zero_is_the_clean_error_and_grows_with_eps() -> None:
    model, x, y = trained_mlp()
    at_zero = certify_points(model, x, y, 0.0)
    assert at_zero.robust_error_bound == pytest.approx(1 - at_zero.clean_accuracy)
    bounds = [robust_error_bound(model, x, y, eps, dtype=torch.float64) for eps in (0.0, 0.01, 0.03, 0.1)]
    assert bounds == sorted(bounds) and bounds[-1] > bounds[0]


def test_verdict_records_dtype_and_domain() -> None:
    model, x, y = trained_mlp()
    verdict = certify_points(model, x[:20], y[:20], 0.02, domain=(0.0, 1.0), dtype=torch.float64)
    summary = verdict.summary()
    assert summary["dtype"] == "float64" and summary["domain"] == [0.0, 1.0] and summary["n"] == 20
    assert next(model.parameters()).dtype == torch.float32


def test_user_errors() -> None:
    model, x, y = trained_mlp()
    for bad in (-0.1, float("nan")):
        with pytest.raises(UserError, match="epsilon"):
            robust_error_bound(model, x, y, bad)
    with pytest.raises(UserError, match="unknown bound method"):
        robust_error_bound(model, x, y, 0.1, method="lp")
    pooled = nn.Sequential(nn.AdaptiveMaxPool2d(2), nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(UnsupportedLayerError, match="AdaptiveMaxPool2d"):
        robust_error_bound(pooled, x, y, 0.1)


@pytest.mark.parametrize("gap,dtype,holds", [(1e-6, torch.float32, False), (1e-6, torch.float64, True),
                                             (1e-2, torch.float32, True)])
def test_a_margin_within_rounding_error_certifies_nothing(gap: float, dtype: torch.dtype, holds: bool) -> None:
    """A constant network whose winning margin is ``gap``: exact arithmetic certifies every
    radius, but in float32 a gap of 1e-6 on logits of size 1 is inside the rounding margin."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].bias.copy_(torch.tensor([1.0, 1.0 - gap], dtype=torch.float64))
    x, y = torch.rand(3, 1, 2, 2), torch.zeros(3, dtype=torch.long)
    verdict = certify_points(model, x, y, 0.1, dtype=dtype)
    assert bool(verdict.certified.all()) == holds and bool(verdict.certified.any()) == holds
    radius = certified_radius(model, x, dtype=dtype).radius
    assert bool((radius > 0).all()) == holds
