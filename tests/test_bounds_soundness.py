"""Soundness: every method's lower bound is below every value the network takes in the set.

Checked against samples (corners and uniform points), a PGD attack with restarts, and on
tiny networks the exact minimum of a mixed-integer program (big-M ReLU encoding, HiGHS).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bounds_support import milp_minimum, pgd_minimum, random_convnet, random_mlp, samples, spec_values
from shallowcert.bounds import METHODS, InputSet, lower_bounds, margin_spec

TOLERANCE = 1e-9


def _input_set(x: torch.Tensor, eps: float, domain: tuple[float, float] | None) -> InputSet:
    return InputSet(x, torch.full((len(x),), eps, dtype=x.dtype), domain=domain)


def _labels_spec(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        logits = model(x)
    return margin_spec(logits.argmax(1), logits.shape[1]).to(x.dtype)


@pytest.mark.parametrize("domain", [None, (0.0, 1.0)])
@pytest.mark.parametrize("seed", range(4))
def test_bounds_below_samples_and_pgd_on_convnets(seed: int, domain) -> None:
    model = random_convnet(seed=seed)
    x = torch.rand(4, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    input_set = _input_set(x, 0.08, domain)
    spec = _labels_spec(model, x)
    sampled = spec_values(model, samples(input_set, 64, seed=seed), spec).amin(0)
    attacked = pgd_minimum(model, input_set, spec, steps=30, restarts=2, seed=seed)
    for method in METHODS:
        bound = lower_bounds(model, input_set, spec, method=method, alpha_steps=5).detach()
        assert bool((bound <= sampled + TOLERANCE).all()), method
        assert bool((bound <= attacked + TOLERANCE).all()), method


@pytest.mark.parametrize("seed", range(6))
def test_certified_points_have_no_pgd_counterexample(seed: int) -> None:
    """Small radius so that some margins are certified; none of those may be attacked."""
    model = random_mlp([6, 16, 16, 4], seed=seed)
    x = torch.rand(16, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    input_set = _input_set(x, 0.03, (0.0, 1.0))
    spec = _labels_spec(model, x)
    attacked = pgd_minimum(model, input_set, spec, steps=40, restarts=3, seed=seed)
    certified_any = False
    for method in METHODS:
        bound = lower_bounds(model, input_set, spec, method=method, alpha_steps=10).detach()
        certified = (bound > 0).all(1)
        certified_any |= bool(certified.any())
        assert bool((attacked[certified] > 0).all()), method
        assert bool((bound <= attacked + TOLERANCE).all()), method
    assert certified_any


@pytest.mark.parametrize("seed", range(5))
def test_bounds_below_exact_milp_minimum(seed: int) -> None:
    model = random_mlp([3, 6, 5, 3], seed=seed)
    x = torch.rand(3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    input_set = _input_set(x, 0.25, (0.0, 1.0))
    spec = _labels_spec(model, x)
    lower, upper = input_set.box()
    exact = torch.tensor([[milp_minimum(model, lower[n].numpy(), upper[n].numpy(), spec[n, k].numpy())
                           for k in range(spec.shape[1])] for n in range(len(x))], dtype=torch.float64)
    sampled = spec_values(model, samples(input_set, 256, seed=seed), spec).amin(0)
    assert bool((exact <= sampled + 1e-6).all())  # the MILP itself is right
    for method in METHODS:
        bound = lower_bounds(model, input_set, spec, method=method).detach()
        assert bool((bound <= exact + 1e-6).all()), method


@pytest.mark.parametrize("seed", range(3))
def test_alpha_crown_never_below_crown(seed: int) -> None:
    model = random_convnet(seed=seed)
    x = torch.rand(3, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    input_set = _input_set(x, 0.05, (0.0, 1.0))
    spec = _labels_spec(model, x)
    crown = lower_bounds(model, input_set, spec, method="crown").detach()
    alpha = lower_bounds(model, input_set, spec, method="alpha-crown", alpha_steps=10).detach()
    assert bool((alpha >= crown - TOLERANCE).all())
    assert bool((alpha > crown + 1e-6).any())  # the optimisation does something
