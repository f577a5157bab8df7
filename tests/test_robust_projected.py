"""The random-projection dual loss: its exact form is the engine's dual, its Cauchy-median
estimate of the ℓ1 terms converges to the exact terms as k grows, and training with it leaves
every certificate exact."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bounds_support import random_convnet
from shallowcert.bounds import InputSet, lower_bounds, margin_spec
from shallowcert.bounds.network import read_network
from shallowcert.certify import certify_points
from shallowcert.certify.verdict import check_method
from shallowcert.data.split import Split
from shallowcert.errors import UserError
from shallowcert.robust import (EpsilonSchedule, certificate_method, certified_accuracy_on, projected_lower_bounds,
                                projected_robust_loss, robust_fit, robust_loss)
from shallowcert.robust.projected import intermediate_relaxations
from shallowcert.training import FitConfig


def _points(count: int, *, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(count, 1, 8, 8, generator=generator, dtype=torch.float64),
            torch.randint(0, 4, (count,), generator=generator))


@pytest.mark.parametrize("domain", [None, (0.0, 1.0)])
def test_exact_columns_give_the_engines_dual_exact_bounds(domain: tuple[float, float] | None) -> None:
    model = random_convnet(seed=1)
    x, y = _points(5, seed=2)
    input_set = InputSet(x, torch.full((5,), 0.05, dtype=torch.float64), domain=domain)
    spec = margin_spec(y, 4).double()
    exact = lower_bounds(model, input_set, spec, method="dual-exact")  # convex_adversarial's dual network
    assert torch.allclose(projected_lower_bounds(model, input_set, spec, projections=None), exact, atol=1e-10)


def _relative_errors(projections: int, *, seeds: int = 3) -> tuple[float, float]:
    """Mean relative error of the estimated spreads (u - l) / 2 against the exact ones: of the
    first ReLU's (the input term alone) and of every ReLU's, averaged over ``seeds`` draws."""
    model = random_convnet(seed=4)
    x, _ = _points(4, seed=5)
    lower, upper = InputSet(x, torch.full((4,), 0.1, dtype=torch.float64), domain=(0.0, 1.0)).box()
    network = read_network(model, (1, 8, 8), torch.float64)
    exact, _ = intermediate_relaxations(network, lower, upper, projections=None)
    first_errors, all_errors = [], []
    for seed in range(seeds):
        generator = torch.Generator().manual_seed(seed)
        estimated, _ = intermediate_relaxations(network, lower, upper, projections=projections, generator=generator)
        errors = []
        for position, (exact_lower, exact_upper) in exact.items():
            spread = (exact_upper - exact_lower) / 2
            estimate = (estimated[position][1] - estimated[position][0]) / 2
            errors.append(((estimate - spread).abs() / spread).mean().detach())
        first_errors.append(float(errors[0]))
        all_errors.append(float(torch.stack(errors).mean()))
    return sum(first_errors) / seeds, sum(all_errors) / seeds


def test_cauchy_median_estimate_approaches_the_exact_l1_terms_as_k_grows() -> None:
    errors = [_relative_errors(k) for k in (8, 64, 512, 4096)]
    first, every = [e[0] for e in errors], [e[1] for e in errors]
    assert first == sorted(first, reverse=True) and every == sorted(every, reverse=True)
    # the median of k |Cauchy| draws has relative error about (pi / 2) / sqrt(k): 0.025 at k = 4096
    assert first[-1] < 0.05 and every[-1] < 0.06
    assert first[0] > 0.15  # at k = 8 it is an estimate, not the exact value


def test_projected_loss_approaches_the_exact_loss_and_has_gradients() -> None:
    model = random_convnet(seed=6).float()
    x, y = _points(16, seed=7)
    x = x.float()
    exact = float(robust_loss(model, x, y, 0.05, method="dual-exact").loss.detach())
    gaps = []
    for k in (4, 1024):
        torch.manual_seed(0)
        projected = projected_robust_loss(model, x, y, 0.05, projections=k)
        gaps.append(abs(float(projected.loss.detach()) - exact))
        model.zero_grad()
        projected.loss.backward()
        assert all(p.grad is not None and bool(torch.isfinite(p.grad).all()) for p in model.parameters())
    assert gaps[1] < gaps[0] and gaps[1] < 0.02 * exact


def test_projections_must_be_positive() -> None:
    model = random_convnet(seed=1)
    x, y = _points(2, seed=2)
    with pytest.raises(UserError):
        projected_robust_loss(model, x, y, 0.05, projections=0)


def test_training_with_projections_never_changes_how_certificates_are_computed() -> None:
    with pytest.raises(UserError):
        check_method("dual-projected")  # no certificate can be asked of the estimate
    assert certificate_method("dual-projected") == "dual"
    g = torch.Generator().manual_seed(1)
    images = (torch.rand(96, 1, 4, 4, generator=g) * 255).to(torch.uint8)
    labels = (images.float().flatten(1)[:, :8].mean(1) > images.float().flatten(1)[:, 8:].mean(1)).long()
    train, val = Split(images[:64], labels[:64]), Split(images[64:], labels[64:])
    torch.manual_seed(2)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 2))
    validate = certified_accuracy_on(val, 0.01, method="dual-projected", domain=(0.0, 1.0))
    result = robust_fit(model, train, schedule=EpsilonSchedule(0.01, warmup_epochs=2), method="dual-projected",
                        domain=(0.0, 1.0), projections=3, config=FitConfig(epochs=3, lr=0.02, batch_size=16),
                        validate=validate)
    model.eval()
    x, y = val.floats(), val.labels
    # the epoch kept was scored by the exact dual certificate of the weights returned ...
    assert result.best_score == certify_points(model, x, y, 0.01, method="dual", domain=(0.0, 1.0)).certified_accuracy
    # ... and certificates draw no random numbers: any generator state gives the same bounds
    spec = margin_spec(y, 2)
    input_set = InputSet(x, torch.full((len(y),), 0.01), domain=(0.0, 1.0))
    bounds = []
    for seed in (3, 4):
        torch.manual_seed(seed)
        bounds.append(lower_bounds(model, input_set, spec, method="dual"))
    assert torch.equal(bounds[0], bounds[1])
    torch.manual_seed(5)
    assert not torch.equal(projected_lower_bounds(model, input_set, spec, projections=3), bounds[0])
