"""Intermediate bounds intersected with interval bounds: never looser, and still sound.

Every back-substituted intermediate bound is intersected with the interval bound of the same
neuron (computed from the previous layer's bounds). Checked per layer: the result lies inside
that interval bound; at the first back-substituted layer (where both modes start from the same
earlier bounds) inside the bound without intersection too, and every sign that either proves
is kept; every pre-activation of sampled inputs lies inside; the final bounds stay below the
sampled and PGD minima.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from bounds_support import ibp_trained_wong_small, pgd_minimum, random_convnet, random_mlp, samples, spec_values
from shallowcert.bounds import InputSet, linear_lower_bound, lower_bounds, margin_spec
from shallowcert.bounds.affine import AffineMap
from shallowcert.bounds.interval import affine_interval
from shallowcert.bounds import intermediate
from shallowcert.bounds.alpha import optimise_bounds
from shallowcert.bounds.backward import concretize
from shallowcert.bounds.intermediate import Bounds, linear_bounds
from shallowcert.bounds.network import Network, read_network
from shallowcert.model_state import model_in_dtype
from shallowcert.models.onnx_import import import_onnx
from shallowcert.verify.vnnlib import read_vnnlib

TOLERANCE = 1e-9


CASES = ("ibp-trained wong-small", "random convnet", "random mlp")


def _case(name: str) -> tuple[nn.Sequential, torch.Tensor, float]:
    """The model, its inputs and the radius of the named case (the trained net is built once)."""
    generator = torch.Generator().manual_seed(1)
    if name == "ibp-trained wong-small":
        model, inputs = ibp_trained_wong_small()
        return model, inputs[:3], 0.05
    if name == "random convnet":
        return random_convnet(seed=1), torch.rand(4, 1, 8, 8, dtype=torch.float64, generator=generator), 0.08
    return random_mlp([10, 24, 24, 24, 5], seed=2), torch.rand(6, 10, dtype=torch.float64, generator=generator), 0.1


def _pre_activations(network: Network, points: torch.Tensor) -> dict[int, torch.Tensor]:
    """The input of every ReLU for a batch of inputs ``(B, *input_shape)``, by step index."""
    values = {}
    for index, step in enumerate(network.steps):
        if isinstance(step, AffineMap):
            points = step.apply(points) if step.bias is None else step.apply(points) + step.bias
        else:
            values[index] = points
            points = points.clamp(min=0)
    return values


def _bounds(model: nn.Sequential, x: torch.Tensor, eps: float, slope: str, interval: bool) -> tuple[Network, Bounds]:
    input_set = InputSet(x, torch.full((len(x),), eps, dtype=x.dtype), domain=None)
    network = read_network(model, tuple(x.shape[1:]), x.dtype)
    with torch.no_grad():
        bounds, _ = linear_bounds(network, input_set.box(), lower_slope=slope, interval=interval)
    return network, bounds


@pytest.mark.parametrize("slope", ["dual", "crown"])
@pytest.mark.parametrize("case", CASES)
def test_intersection_never_loosens(case: str, slope: str) -> None:
    model, x, eps = _case(case)
    network, bounds = _bounds(model, x, eps, slope, interval=True)
    _, plain = _bounds(model, x, eps, slope, interval=False)
    positions = network.relu_positions
    input_set = InputSet(x, torch.full((len(x),), eps, dtype=x.dtype), domain=None)
    previous, start = input_set.box(), 0
    for position in positions:
        interval_lower, interval_upper = affine_interval(network.steps[start:position], *previous)
        lower, upper = bounds[position]
        assert bool((lower >= interval_lower - TOLERANCE).all()) and bool((upper <= interval_upper + TOLERANCE).all())
        previous, start = (lower, upper), position
    first = positions[1]  # the first layer bounded by back-substitution (the first one is exact)
    (lower, upper), (plain_lower, plain_upper) = bounds[first], plain[first]
    unstable = (lower < 0) & (upper > 0)
    assert bool((lower[unstable] >= plain_lower[unstable] - TOLERANCE).all())
    assert bool((upper[unstable] <= plain_upper[unstable] + TOLERANCE).all())
    assert bool((lower[plain_lower >= 0] >= 0).all()) and bool((upper[plain_upper <= 0] <= 0).all())


def test_intersection_tightens_the_robust_net() -> None:
    """On an IBP-trained net interval arithmetic fixes neurons that the dual leaves unstable and
    tightens others, so the tests here compare different bounds (not vacuous)."""
    model, x, eps = _case(CASES[0])
    network, bounds = _bounds(model, x, eps, "dual", interval=True)
    _, plain = _bounds(model, x, eps, "dual", interval=False)
    changed = 0
    for position in network.relu_positions:
        (lower, upper), (plain_lower, plain_upper) = bounds[position], plain[position]
        unstable, plain_unstable = (lower < 0) & (upper > 0), (plain_lower < 0) & (plain_upper > 0)
        tighter = unstable & ((lower > plain_lower + 1e-6) | (upper < plain_upper - 1e-6))
        changed += int((tighter | (plain_unstable & ~unstable)).sum())
    assert changed > 0


@pytest.mark.parametrize("slope", ["dual", "crown"])
@pytest.mark.parametrize("case", CASES)
def test_intersected_bounds_hold_sampled_pre_activations(case: str, slope: str) -> None:
    model, x, eps = _case(case)
    network, bounds = _bounds(model, x, eps, slope, interval=True)
    input_set = InputSet(x, torch.full((len(x),), eps, dtype=x.dtype), domain=None)
    points = samples(input_set, 64, seed=3)
    values = _pre_activations(network, points.reshape(-1, *points.shape[2:]))
    for position, (lower, upper) in bounds.items():
        value = values[position].reshape(points.shape[0], *lower.shape)
        assert bool((value >= lower - TOLERANCE).all()) and bool((value <= upper + TOLERANCE).all()), position


@pytest.mark.parametrize("method", ["dual", "crown", "alpha-crown"])
@pytest.mark.parametrize("case", CASES)
def test_final_bounds_stay_below_samples_and_pgd(case: str, method: str) -> None:
    model, x, eps = _case(case)
    input_set = InputSet(x, torch.full((len(x),), eps, dtype=x.dtype), domain=None)
    with torch.no_grad():
        logits = model(x)
    spec = margin_spec(logits.argmax(1), logits.shape[1]).to(x.dtype)
    bound = lower_bounds(model, input_set, spec, method=method, alpha_steps=5).detach()
    sampled = spec_values(model, samples(input_set, 64, seed=4), spec).amin(0)
    attacked = pgd_minimum(model, input_set, spec, steps=30, restarts=2, seed=4)
    assert bool((bound <= sampled + TOLERANCE).all()) and bool((bound <= attacked + TOLERANCE).all())


VNNCOMP = Path("/work/shared/vnncomp")
MNIST_256X2 = ("mnist_fc/onnx/mnist-net_256x2.onnx", "mnist_fc/vnnlib/prop_10_0.05.vnnlib")
ALPHA_SLACK = 0.02  # the two optimisations follow different paths; the cut gradient lost 0.5 to 0.8 per row here


def _alpha(network: Network, box: tuple[torch.Tensor, torch.Tensor], spec: torch.Tensor) -> torch.Tensor:
    """alpha-CROWN's final lower bounds ``(N, K)`` on ``box`` (20 steps, intermediate slopes too)."""
    with torch.no_grad():
        crown = linear_bounds(network, box, lower_slope="crown")
        bound = optimise_bounds(network, box, spec, crown, steps=20, lr=0.1, intermediate=True).bound
    lower, upper = box
    return concretize(bound.coefficients, (upper + lower) / 2, (upper - lower) / 2)[0] + bound.offset_lower


@pytest.mark.skipif(not all((VNNCOMP / path).exists() for path in MNIST_256X2), reason="VNN-COMP files not present")
def test_alpha_crown_keeps_its_bound_with_the_intersection(monkeypatch: pytest.MonkeyPatch) -> None:
    """On mnist_fc 256x2 prop_10_0.05 the interval bound beats back-substitution for some
    second-layer neurons. alpha-CROWN with the intersection must not end looser than without it
    (within ``ALPHA_SLACK`` per margin), and stays below the margins of sampled inputs."""
    imported = import_onnx(VNNCOMP / MNIST_256X2[0])
    prop = read_vnnlib(VNNCOMP / MNIST_256X2[1], input_shape=imported.input_shape, outputs=imported.outputs)
    model = model_in_dtype(imported.model, torch.float64).eval()
    prop = prop.to(dtype=torch.float64)
    network = read_network(model, tuple(prop.lower.shape), torch.float64)
    matrix = prop.rows()[0]
    spec, box = matrix.unsqueeze(0), (prop.lower.unsqueeze(0), prop.upper.unsqueeze(0))
    crown, _ = linear_bounds(network, box, lower_slope="crown")
    original = intermediate._tighter

    def reference_only(bounds: tuple[torch.Tensor, torch.Tensor], reference: tuple[torch.Tensor, torch.Tensor],
                       *flags: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """No interval intersection: that one is applied to the candidates' flat (masked) bounds."""
        return bounds if bounds[0].dim() == 1 else original(bounds, reference, *flags)

    intersected = _alpha(network, box, spec)
    monkeypatch.setattr(intermediate, "_tighter", reference_only)
    without, _ = linear_bounds(network, box, lower_slope="crown")
    changed = [bool((crown[p][0] != without[p][0]).any()) for p in network.relu_positions]
    assert any(changed), "the intersection must change some intermediate bound for the test to mean anything"
    plain = _alpha(network, box, spec)
    monkeypatch.undo()
    assert bool((intersected >= plain - ALPHA_SLACK).all()), (intersected - plain).min()
    generator = torch.Generator().manual_seed(0)
    points = box[0] + torch.rand(256, *box[0].shape[1:], dtype=torch.float64, generator=generator) * (box[1] - box[0])
    with torch.no_grad():
        margins = model(points.reshape(256, *imported.input_shape)) @ matrix.T
    assert bool((intersected[0] <= margins.min(0).values + TOLERANCE).all())


def test_straight_through_intersection_keeps_values_and_passes_the_bound_gradient() -> None:
    generator = torch.Generator().manual_seed(3)
    lower = torch.randn(2, 6, dtype=torch.float64, generator=generator).requires_grad_(True)
    upper = (lower.detach() + torch.rand(2, 6, dtype=torch.float64, generator=generator)).requires_grad_(True)
    reference = (lower.detach() + 0.3 * torch.randn(2, 6, dtype=torch.float64, generator=generator),
                 upper.detach() + 0.3 * torch.randn(2, 6, dtype=torch.float64, generator=generator))
    exact = intermediate._tighter((lower, upper), reference)
    through = intermediate._tighter((lower, upper), reference, straight_through=True)
    assert all(torch.equal(a, b) for a, b in zip(exact, through))
    assert bool((exact[0] > lower).any()) and bool((exact[1] < upper).any())
    weights = torch.rand(2, 6, dtype=torch.float64, generator=generator)
    exact_grad = torch.autograd.grad((weights * (exact[0] - exact[1])).sum(), (lower, upper))
    through_grad = torch.autograd.grad((weights * (through[0] - through[1])).sum(), (lower, upper))
    torch.testing.assert_close(through_grad[0], weights)
    torch.testing.assert_close(through_grad[1], -weights)
    assert bool((exact_grad[0] == 0).any())


def test_crown_returns_the_interval_bound_where_that_is_tighter() -> None:
    """``relu(x)`` on ``[-1, 2]``: CROWN's adaptive lower line is ``x`` (bound -1), the interval
    bound is 0; ``lower_bounds`` returns 0 and the linear certificate keeps its own line."""
    model = nn.Sequential(nn.Linear(1, 1), nn.ReLU(), nn.Linear(1, 1)).double()
    for layer in (model[0], model[2]):
        nn.init.ones_(layer.weight)
        nn.init.zeros_(layer.bias)
    input_set = InputSet(torch.tensor([[0.5]], dtype=torch.float64), torch.tensor([1.5], dtype=torch.float64), domain=None)
    with torch.no_grad():
        assert float(lower_bounds(model, input_set, method="crown")) == 0.0
        lam, offset = linear_lower_bound(model, input_set, method="crown")
    assert float(offset + 0.5 * lam.squeeze() - 1.5 * lam.abs().squeeze()) == pytest.approx(-1.0)


def _interval_from_last_relu(model: nn.Sequential, bounds: Bounds, spec: torch.Tensor) -> torch.Tensor:
    """Reference: ``spec @ model[-1]`` by interval arithmetic on ``relu`` of the last
    pre-activation bounds (wong-small ends ``Linear, ReLU, Linear``)."""
    lower, upper = (b.clamp(min=0) for b in bounds[max(bounds)])
    weight = spec @ model[-1].weight  # (N, K, hidden)
    bias = spec @ model[-1].bias
    positive, negative = weight.clamp(min=0), weight.clamp(max=0)
    return (positive @ lower.unsqueeze(-1) + negative @ upper.unsqueeze(-1)).squeeze(-1) + bias


def test_crown_is_the_larger_of_its_linear_bound_and_the_interval_bound_from_its_own_layers() -> None:
    """On an IBP-trained net the final interval comparison starts from CROWN's tightened last
    pre-activation bounds (as auto_LiRPA's ``compare_crown_with_ibp`` does): the result equals
    the larger of the linear bound and that reference, is never below the plain interval bound,
    and is above both the linear and the plain interval bound on some margin."""
    model, inputs = ibp_trained_wong_small()
    x = inputs[:16]
    input_set = InputSet(x, torch.full((len(x),), 0.05, dtype=torch.float64), domain=(0.0, 1.0))
    spec = margin_spec(model(x).argmax(1), 10).to(torch.float64)
    lower, upper = input_set.box()
    with torch.no_grad():
        crown = lower_bounds(model, input_set, spec, method="crown")
        interval = lower_bounds(model, input_set, spec, method="ibp")
        lam, offset = linear_lower_bound(model, input_set, spec, method="crown")
        linear = concretize(lam, ((upper + lower) / 2).flatten(1), ((upper - lower) / 2).flatten(1))[0] + offset
        network = read_network(model, tuple(x.shape[1:]), x.dtype)
        bounds, _ = linear_bounds(network, (lower, upper), lower_slope="crown")
        from_layers = _interval_from_last_relu(model, bounds, spec)
    assert torch.allclose(crown, torch.maximum(linear, from_layers), rtol=0, atol=1e-10)
    assert bool((crown >= interval - 1e-10).all())
    assert bool((crown > torch.maximum(linear, interval) + 1e-6).any())
