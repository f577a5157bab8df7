"""Max pooling in the bounds engine: soundness (samples, PGD, exact MILP), exactness where the
relaxation is exact, patches against dense rows, alpha-CROWN against CROWN, refusals."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bounds_support import pgd_minimum, samples, spec_values
from maxpool_support import milp_minimum_with_pools
from shallowcert.bounds import METHODS, InputSet, lower_bounds, margin_spec
from shallowcert.bounds import intermediate as intermediate_module
from shallowcert.bounds.network import read_network
from shallowcert.bounds.plan import LayerPlan
from shallowcert.errors import UnsupportedLayerError
from shallowcert.robust import robust_loss
from shallowcert.verify import robustness_property, verify

ARCHITECTURES = {
    # conv, ReLU, pool (the teachers' order), a padded overlapping pool, a final FC block
    "relu-pool": lambda: nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(3, 2, 1), nn.Flatten(), nn.Linear(6 * 2 * 2, 10), nn.ReLU(), nn.Linear(10, 3)),
    # a pool on pre-activations (before the ReLU), then a pool as the last nonlinear layer
    "pool-relu": lambda: nn.Sequential(
        nn.Conv2d(1, 4, 3, stride=1, padding=1), nn.MaxPool2d(2, 1), nn.ReLU(), nn.Conv2d(4, 5, 3, stride=2),
        nn.ReLU(), nn.MaxPool2d(2, 1), nn.Flatten(), nn.Linear(5 * 2 * 2, 3)),
}


def _model(name: str, seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return ARCHITECTURES[name]().double().eval()


def _problem(model: nn.Module, seed: int, eps: float = 0.05, points: int = 4) -> tuple[InputSet, torch.Tensor]:
    x = torch.rand(points, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        spec = margin_spec(model(x).argmax(1), 3).double()
    return InputSet(x, torch.full((points,), eps, dtype=torch.float64)), spec


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
@pytest.mark.parametrize("seed", range(3))
def test_bounds_hold_on_samples_and_against_pgd(name: str, seed: int) -> None:
    model = _model(name, seed)
    input_set, spec = _problem(model, seed)
    sampled = spec_values(model, samples(input_set, 256, seed=seed), spec).amin(0)
    attacked = pgd_minimum(model, input_set, spec, steps=40, restarts=3)
    found = torch.minimum(sampled, attacked)
    for method in METHODS:
        bound = lower_bounds(model, input_set, spec, method=method, alpha_steps=10).detach()
        assert bool((bound <= found + 1e-9).all()), method


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
@pytest.mark.parametrize("seed", range(2))
def test_alpha_crown_is_never_looser_than_crown(name: str, seed: int) -> None:
    model = _model(name, seed)
    input_set, spec = _problem(model, seed)
    crown = lower_bounds(model, input_set, spec, method="crown").detach()
    alpha = lower_bounds(model, input_set, spec, method="alpha-crown", alpha_steps=20).detach()
    final_only = lower_bounds(model, input_set, spec, method="alpha-crown", alpha_steps=20,
                              alpha_intermediate=False).detach()
    for bound in (alpha, final_only):
        assert bool((bound >= crown - 1e-9).all())
        assert float(bound.sum()) > float(crown.sum())


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
@pytest.mark.parametrize("method", ["dual", "crown"])
def test_patches_equal_dense_rows(name: str, method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _model(name, 5)
    input_set, spec = _problem(model, 5)
    network = read_network(model, (1, 8, 8), torch.float64)
    patched = [p for p in network.relu_positions
               if intermediate_module.layer_plan(network.steps[:p], network.steps[p].shape).patches]
    assert any(any(q < p for q in network.pool_positions) for p in patched)  # a pool is crossed in patches
    with_patches = lower_bounds(model, input_set, spec, method=method)
    monkeypatch.setattr(intermediate_module, "layer_plan", lambda steps, shape: LayerPlan(False, ()))
    dense = lower_bounds(model, input_set, spec, method=method)
    assert torch.allclose(with_patches, dense, atol=1e-10, rtol=0)


def test_interval_bounds_of_a_pool_are_the_window_extremes() -> None:
    model = nn.Sequential(nn.MaxPool2d(2), nn.Flatten()).double()
    x = torch.rand(3, 2, 4, 4, dtype=torch.float64)
    eps = torch.rand(3, 2, 4, 4, dtype=torch.float64) * 0.2
    input_set = InputSet(x, eps, domain=None)
    lower = lower_bounds(model, input_set, None, method="ibp")
    upper = -lower_bounds(model, input_set, -torch.eye(8, dtype=torch.float64).expand(3, 8, 8), method="ibp")
    assert torch.allclose(lower, F.max_pool2d(x - eps, 2).flatten(1))
    assert torch.allclose(upper, F.max_pool2d(x + eps, 2).flatten(1))


def test_stable_windows_are_exact() -> None:
    """A linear network around a pool whose windows each have one clear winner: the bound is the
    exact minimum of the linear function the network is on the box."""
    torch.manual_seed(0)
    conv, linear = nn.Conv2d(1, 2, 1), nn.Linear(2 * 2 * 2, 3)
    model = nn.Sequential(conv, nn.MaxPool2d(2), nn.Flatten(), linear).double()
    x = torch.zeros(2, 1, 4, 4, dtype=torch.float64)
    x[:, :, ::2, ::2] = 1.0  # the top-left input of every window is far ahead
    with torch.no_grad():
        conv.weight.data.fill_(1.0)
        conv.bias.data.zero_()
    model = model.double()
    input_set = InputSet(x, torch.full((2,), 0.1, dtype=torch.float64), domain=None)
    spec = torch.randn(2, 3, 3, dtype=torch.float64)
    rows = (spec @ linear.weight.double()).reshape(2, 3, 2, 4).sum(2)  # per winning input (both channels copy it)
    centre = torch.einsum("nkc,nc->nk", spec, model(x))
    exact = centre - 0.1 * rows.abs().sum(-1)  # each winner moves by +-0.1, independently
    for method in ("dual", "crown", "crown-ibp", "alpha-crown"):
        bound = lower_bounds(model, input_set, spec, method=method, alpha_steps=5)
        assert torch.allclose(bound, exact, atol=1e-12), method
    assert bool((lower_bounds(model, input_set, spec, method="ibp") < exact - 1e-3).any())  # IBP splits the copies


@pytest.mark.parametrize("seed", range(3))
def test_bounds_never_below_the_exact_milp_minimum(seed: int) -> None:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(1, 2, 2), nn.ReLU(), nn.MaxPool2d(2, 1), nn.Flatten(), nn.Linear(2 * 2 * 2, 4),
                          nn.ReLU(), nn.Linear(4, 3)).double().eval()
    x = torch.rand(2, 1, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    input_set = InputSet(x, torch.full((2,), 0.15, dtype=torch.float64), domain=None)
    spec = margin_spec(model(x).argmax(1), 3).double()
    lower, upper = input_set.box()
    exact = torch.tensor([[milp_minimum_with_pools(model, lower[n].flatten().numpy(), upper[n].flatten().numpy(),
                                                   (spec[n, k] @ torch.eye(3, dtype=torch.float64)).numpy(),
                                                   (1, 4, 4)) for k in range(2)] for n in range(2)])
    sampled = spec_values(model, samples(input_set, 512, seed=seed), spec).amin(0)
    assert bool((exact <= sampled + 1e-7).all())  # the MILP is a real minimum
    for method in METHODS:
        bound = lower_bounds(model, input_set, spec, method=method, alpha_steps=10)
        assert bool((bound <= exact + 1e-7).all()), method


def test_bounds_are_differentiable_through_pools() -> None:
    model = _model("relu-pool", 0).float()
    input_set, spec = _problem(model.double(), 0)
    model = model.float()
    center = input_set.center.float()
    for method in ("crown-ibp", "crown"):
        bound = lower_bounds(model, InputSet(center, input_set.eps.float()), spec.float(), method=method)
        model.zero_grad()
        (-bound.sum()).backward()
        assert all(p.grad is not None and bool(torch.isfinite(p.grad).all()) for p in model.parameters()), method
        assert float(model[0].weight.grad.abs().sum()) > 0, method


@pytest.mark.parametrize("layer, pattern", [
    (nn.MaxPool2d(2, ceil_mode=True), "ceil_mode"),
    (nn.MaxPool2d(2, dilation=2), "dilation"),
    (nn.AdaptiveMaxPool2d(2), "adaptive"),
    (nn.AdaptiveAvgPool2d(2), "adaptive"),
    (nn.AvgPool2d(2, ceil_mode=True), "ceil_mode"),
])
def test_unsupported_pooling_is_refused_by_name(layer: nn.Module, pattern: str) -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), layer, nn.Flatten(), nn.LazyLinear(3))
    with torch.no_grad():
        model(torch.rand(1, 1, 9, 9))
    with pytest.raises(UnsupportedLayerError, match=rf"layer 2 \({type(layer).__name__}\).*{pattern}"):
        lower_bounds(model, InputSet(torch.rand(1, 1, 9, 9), torch.tensor([0.1])))


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_verify_agrees_with_the_exact_minimum_on_a_pool_net(seed: int) -> None:
    """Bounds prove seed 3; seed 4 has a counterexample that branch and bound finds; seed 5 stays
    open (its pools are never split): any answer given must agree with the exact minimum."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(1, 3, 2), nn.ReLU(), nn.MaxPool2d(2, 1), nn.Flatten(), nn.Linear(3 * 2 * 2, 6),
                          nn.ReLU(), nn.Linear(6, 3)).double().eval()
    with torch.no_grad():
        model[0].weight.mul_(4)
        model[4].weight.mul_(3)
    center = torch.rand(1, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        label = int(model(center.unsqueeze(0)).argmax())
    prop = robustness_property(center, 0.03 + 0.02 * seed, label, 3)
    result = verify(model, prop, timeout=8)
    eye = torch.eye(3, dtype=torch.float64)
    margin = min(milp_minimum_with_pools(model, prop.lower.flatten().numpy(), prop.upper.flatten().numpy(),
                                         (eye[label] - eye[j]).numpy(), (1, 4, 4)) for j in range(3) if j != label)
    if result.status == "unsat":
        assert margin > 0
    elif result.status == "sat":
        with torch.no_grad():
            assert float(prop.violation(model(result.counterexample.unsqueeze(0)))[0]) <= 0
        assert margin <= 1e-7
    else:
        assert result.status in ("unknown", "timeout")


def test_crown_ibp_training_of_a_pool_net_lowers_its_robust_loss() -> None:
    """A few Adam steps on the CROWN-IBP robust loss of a conv-ReLU-pool net (fixed batch)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(4 * 4 * 4, 3))
    x = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    y = torch.arange(16) % 3
    x[:, :, :4] += (y.float() / 3).reshape(-1, 1, 1, 1)  # a learnable signal
    x = x.clamp(0, 1)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.03)
    losses = []
    for _ in range(30):
        result = robust_loss(model, x, y, 0.01, method="crown-ibp")
        optimiser.zero_grad()
        result.loss.backward()
        optimiser.step()
        losses.append(float(result.loss.detach()))
    assert losses[-1] < 0.5 * losses[0], losses
    assert robust_loss(model, x, y, 0.01, method="crown").robust_error < 1.0
