"""The ``dual-exact`` method equals convex_adversarial 0.4.4's DualNetwork (float64, 1e-5 relative;
1e-9 absolute on a robustly trained net, where the default ``dual`` differs)."""

from __future__ import annotations

import pytest
import torch
from convex_adversarial import DualNetwork

from bounds_support import ibp_trained_wong_small, random_convnet, random_mlp
from shallowcert.bounds import InputSet, lower_bounds, margin_spec
from shallowcert.models import build


def _trained_wong_small() -> torch.nn.Sequential:
    """A wong-small after a few SGD steps on random 28x28 data (weights no longer at init)."""
    torch.manual_seed(0)
    model = build("wong-small", (1, 28, 28), 10).double()
    optimiser = torch.optim.SGD(model.parameters(), lr=0.05)
    x, y = torch.rand(64, 1, 28, 28, dtype=torch.float64), torch.randint(0, 10, (64,))
    for _ in range(5):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimiser.step()
    return model.eval()


def _assert_matches(model: torch.nn.Sequential, x: torch.Tensor, eps: float, *, bounded: bool) -> None:
    with torch.no_grad():
        labels = model(x).argmax(1)
        spec = margin_spec(labels, model[-1].out_features).double()
        reference = DualNetwork(model, x, eps, bounded_input=bounded)(spec)
        ours = lower_bounds(model, InputSet(x, torch.full((len(x),), eps, dtype=x.dtype),
                                            domain=(0.0, 1.0) if bounded else None), spec, method="dual-exact")
    relative = (ours - reference).abs() / reference.abs().clamp(min=1e-9)
    assert float(relative.max()) < 1e-5, float(relative.max())


@pytest.mark.parametrize("bounded", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_convnets_match(seed: int, bounded: bool) -> None:
    # 7x7: convex_adversarial's transposed convolutions lose a row when a stride does not tile
    model = random_convnet(seed=seed, channels=2)
    x = torch.rand(5, 2, 7, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    _assert_matches(model, x, 0.05, bounded=bounded)


@pytest.mark.parametrize("bounded", [False, True])
def test_random_mlp_matches(bounded: bool) -> None:
    model = random_mlp([12, 20, 20, 15, 6], seed=3)
    x = torch.rand(6, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    _assert_matches(model, x, 0.1, bounded=bounded)


@pytest.mark.parametrize("bounded", [False, True])
def test_wong_small_matches(bounded: bool) -> None:
    x = torch.rand(3, 1, 28, 28, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    _assert_matches(_trained_wong_small(), x, 0.03, bounded=bounded)


def test_identity_spec_bounds_every_logit() -> None:
    model = random_mlp([5, 8, 3], seed=5)
    x = torch.rand(2, 5, dtype=torch.float64)
    with torch.no_grad():
        reference = DualNetwork(model, x, 0.1)(torch.eye(3, dtype=torch.float64).expand(2, 3, 3))
        ours = lower_bounds(model, InputSet(x, torch.full((2,), 0.1, dtype=torch.float64), domain=None))
    torch.testing.assert_close(ours, reference, rtol=1e-9, atol=1e-12)


def test_exact_option_matches_on_a_robust_net_where_the_default_differs() -> None:
    model, inputs = ibp_trained_wong_small()
    x, eps = inputs[:3], 0.05
    with torch.no_grad():
        spec = margin_spec(model(x).argmax(1), 10).double()
        reference = DualNetwork(model, x, eps)(spec)
        input_set = InputSet(x, torch.full((3,), eps, dtype=torch.float64), domain=None)
        exact = lower_bounds(model, input_set, spec, method="dual-exact")
        default = lower_bounds(model, input_set, spec, method="dual")
    assert float((default - reference).abs().max()) > 1e-6  # the interval shortcuts change this net's bounds
    assert float((exact - reference).abs().max()) < 1e-9
