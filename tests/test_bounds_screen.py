"""Screening dense rows: a row stopped early has looser bounds of the same sign; others are exact."""

from __future__ import annotations

import pytest
import torch

from bounds_support import random_convnet, random_mlp
from shallowcert.bounds import InputSet
from shallowcert.bounds.intermediate import linear_bounds
from shallowcert.bounds.network import read_network
from shallowcert.bounds.screen import activation_box, screened_bounds


def _layer_setting(model: torch.nn.Module, x: torch.Tensor, eps: float):
    """Everything needed to bound the last hidden layer's neurons, from a full dual pass."""
    network = read_network(model, tuple(x.shape[1:]), torch.float64)
    lower_in, upper_in = InputSet(x, torch.full((len(x),), eps), domain=None).box()
    mid, rad = (upper_in + lower_in) / 2, (upper_in - lower_in) / 2
    bounds, relaxations = linear_bounds(network, (lower_in, upper_in), lower_slope="dual")
    positions = network.relu_positions
    screens, activation, after = {}, (mid, rad), 0
    for position in positions[:-1]:
        lower, upper = bounds[position]
        activation = screens[position] = activation_box(network.steps[after:position], activation,
                                                        relaxations[position], lower, upper, (lower < 0) & (upper > 0))
        after = position + 1
    last = positions[-1]
    relaxations = {p: r for p, r in relaxations.items() if p < last}
    return network.steps[:last], relaxations, screens, mid, rad, network.steps[last].shape


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("kind", ["mlp", "convnet"])
def test_screened_rows_keep_their_sign_and_the_rest_are_exact(seed: int, kind: str) -> None:
    generator = torch.Generator().manual_seed(seed)
    if kind == "mlp":
        model, x, eps = random_mlp([6, 20, 20, 16, 3], seed=seed), torch.rand(10, 6, generator=generator,
                                                                            dtype=torch.float64), 0.05
    else:
        model, x, eps = random_convnet(seed=seed), torch.rand(10, 1, 8, 8, generator=generator,
                                                              dtype=torch.float64), 0.03
    steps, relaxations, screens, mid, rad, shape = _layer_setting(model, x, eps)
    neurons = shape[0] if len(shape) == 1 else int(torch.tensor(shape).prod())
    lam = torch.eye(neurons, dtype=torch.float64).reshape(1, neurons, *shape).repeat(len(x), 1, *[1] * len(shape))
    offset, valid = torch.zeros(len(x), neurons, dtype=torch.float64), torch.ones(len(x), neurons, dtype=torch.bool)
    exact_lower, exact_upper = screened_bounds(steps, lam, offset, valid, relaxations, {}, mid, rad)
    lower, upper = screened_bounds(steps, lam, offset, valid, relaxations, screens, mid, rad)
    # rows carried to the input differ only by summation order
    stopped = ((lower - exact_lower).abs() > 1e-10) | ((upper - exact_upper).abs() > 1e-10)
    assert bool(stopped.any()), "no row was decided early: the test would prove nothing"
    assert bool(((lower >= 0) | (upper <= 0))[stopped].all())            # stopped only when decided
    assert bool((lower <= exact_lower + 1e-12).all()) and bool((upper >= exact_upper - 1e-12).all())
    assert torch.equal((lower < 0) & (upper > 0), (exact_lower < 0) & (exact_upper > 0))  # same unstable set
