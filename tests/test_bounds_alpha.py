"""alpha-CROWN with optimised intermediate slopes: tighter than CROWN, still sound, differentiable.

The intermediate bounds come from :func:`shallowcert.bounds.alpha.optimise_bounds`; they are
checked against CROWN's, sampled and PGD-maximised pre-activations, and on a tiny MLP against
each neuron's exact range (MILP, HiGHS).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bounds_support import milp_minimum, random_convnet, random_mlp, samples
from shallowcert.bounds import InputSet, lower_bounds, margin_spec
from shallowcert.bounds.alpha import optimise_bounds
from shallowcert.bounds.intermediate import linear_bounds
from shallowcert.bounds.network import read_network

TOLERANCE = 1e-9
MILP_SEED = 8  # a tiny MLP whose big-M programs HiGHS solves (seed 4 hit a solver error)


def _setting(model: nn.Sequential, x: torch.Tensor, eps: float):
    with torch.no_grad():
        spec = margin_spec(model(x).argmax(1), model(x).shape[1]).to(x.dtype)
    return InputSet(x, torch.full((len(x),), eps, dtype=x.dtype)), spec


def _crown_and_alpha(model: nn.Sequential, input_set: InputSet, spec: torch.Tensor, steps: int = 10):
    network = read_network(model, tuple(input_set.center.shape[1:]), input_set.center.dtype)
    box = input_set.box()
    with torch.no_grad():
        crown = linear_bounds(network, box, lower_slope="crown")
        alpha = optimise_bounds(network, box, spec, crown, steps=steps, lr=0.1, intermediate=True).bounds
    return crown[0], alpha


def _pre_activations(model: nn.Sequential, points: torch.Tensor) -> list[torch.Tensor]:
    """The input of every ReLU of ``model`` at ``points`` ``(B, ...)``."""
    values, x = [], points
    for layer in model:
        if isinstance(layer, nn.ReLU):
            values.append(x)
        x = layer(x)
    return values


def _pgd_extremes(model: nn.Sequential, input_set: InputSet, *, steps: int = 20) -> list[tuple[torch.Tensor, ...]]:
    """Per ReLU, the smallest and largest pre-activation PGD finds for every neuron at once."""
    lower, upper = input_set.box()
    found = []
    for index in range(sum(isinstance(m, nn.ReLU) for m in model)):
        extremes = []
        for sign in (1.0, -1.0):
            x = ((lower + upper) / 2).clone()
            neurons = _pre_activations(model, x)[index][0].numel()
            x = x.unsqueeze(1).expand(-1, neurons, *x.shape[1:]).reshape(-1, *x.shape[1:]).clone()
            box = [t.repeat_interleave(neurons, 0) for t in (lower, upper)]
            for step in range(steps):
                x.requires_grad_(True)
                z = _pre_activations(model, x)[index].reshape(len(lower), neurons, neurons)
                objective = sign * torch.diagonal(z, dim1=1, dim2=2).sum()
                (grad,) = torch.autograd.grad(objective, x)
                with torch.no_grad():
                    x = torch.max(torch.min(x - 0.05 * (1 - step / steps) * grad.sign(), box[1]), box[0])
            with torch.no_grad():
                z = _pre_activations(model, x)[index].reshape(len(lower), neurons, neurons)
            extremes.append(torch.diagonal(z, dim1=1, dim2=2))
        found.append(tuple(extremes))
    return found


@pytest.mark.parametrize("kind", ["mlp", "convnet"])
def test_intermediate_bounds_tighter_than_crown_and_sound(kind: str) -> None:
    generator = torch.Generator().manual_seed(3)
    if kind == "mlp":
        model, x, eps = random_mlp([5, 12, 12, 10, 3], seed=3), torch.rand(4, 5, generator=generator,
                                                                        dtype=torch.float64), 0.1
    else:
        model, x, eps = random_convnet(seed=1), torch.rand(3, 1, 8, 8, generator=generator, dtype=torch.float64), 0.06
    input_set, spec = _setting(model, x, eps)
    crown, alpha = _crown_and_alpha(model, input_set, spec)
    sampled = [torch.stack(v) for v in zip(*(_pre_activations(model, p) for p in samples(input_set, 64, seed=3)))]
    attacked = _pgd_extremes(model, input_set)
    improved = False
    for (position, (lower, upper)), values, (smallest, largest) in zip(sorted(alpha.items()), sampled, attacked):
        crown_lower, crown_upper = crown[position]
        assert bool((lower >= crown_lower).all()) and bool((upper <= crown_upper).all())
        assert bool((lower <= values.amin(0) + TOLERANCE).all()) and bool((upper >= values.amax(0) - TOLERANCE).all())
        assert bool((lower.flatten(1) <= smallest + TOLERANCE).all())
        assert bool((upper.flatten(1) >= largest - TOLERANCE).all())
        improved |= bool((lower > crown_lower + 1e-6).any() | (upper < crown_upper - 1e-6).any())
    assert improved  # the intermediate slopes do tighten something


def test_intermediate_bounds_contain_the_exact_range_on_a_tiny_mlp() -> None:
    model = random_mlp([3, 6, 6, 5, 3], seed=MILP_SEED)
    x = torch.rand(3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(MILP_SEED))
    input_set, spec = _setting(model, x, 0.25)
    crown, alpha = _crown_and_alpha(model, input_set, spec, steps=20)
    box_lower, box_upper = (t.numpy() for t in input_set.box())
    improved = False
    for layer, position in enumerate(sorted(alpha)[1:], start=1):
        head = model[:2 * layer + 1]  # Linear, ReLU, ..., Linear: the input of ReLU number `layer`
        lower, upper = alpha[position]
        for n in range(len(x)):
            for j in range(lower.shape[1]):
                row = torch.zeros(lower.shape[1], dtype=torch.float64)
                row[j] = 1.0
                exact_min = milp_minimum(head, box_lower[n], box_upper[n], row.numpy())
                exact_max = -milp_minimum(head, box_lower[n], box_upper[n], -row.numpy())
                assert lower[n, j] <= exact_min + 1e-6 and upper[n, j] >= exact_max - 1e-6
        improved |= bool((lower > crown[position][0] + 1e-6).any() | (upper < crown[position][1] - 1e-6).any())
    assert improved


@pytest.mark.parametrize("kind", ["mlp", "convnet"])
def test_final_bound_beats_crown_and_on_average_the_final_only_variant(kind: str) -> None:
    generator = torch.Generator().manual_seed(5)
    if kind == "mlp":
        model, x, eps = random_mlp([6, 20, 20, 16, 3], seed=5), torch.rand(8, 6, generator=generator,
                                                                         dtype=torch.float64), 0.08
    else:
        model, x, eps = random_convnet(seed=5), torch.rand(6, 1, 8, 8, generator=generator, dtype=torch.float64), 0.05
    input_set, spec = _setting(model, x, eps)
    with torch.no_grad():
        crown = lower_bounds(model, input_set, spec, method="crown")
        final_only = lower_bounds(model, input_set, spec, method="alpha-crown", alpha_intermediate=False)
        full = lower_bounds(model, input_set, spec, method="alpha-crown")
    assert bool((full >= crown - TOLERANCE).all())
    # per row the two optimisations follow different paths; the joint one gains more on average
    assert float((full - crown).mean()) > float((final_only - crown).mean()) > 0
    assert float((full - final_only).min()) > -1e-3


def test_gradients_reach_every_parameter() -> None:
    model = random_convnet(seed=6)
    x = torch.rand(3, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    input_set, spec = _setting(model, x, 0.05)
    bound = lower_bounds(model, input_set, spec, method="alpha-crown", alpha_steps=5)
    bound.sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and bool(torch.isfinite(g).all()) and float(g.abs().max()) > 0 for g in grads)
    model.zero_grad()
    chunked = lower_bounds(model, input_set, spec, method="alpha-crown", alpha_steps=5, memory_budget=1)
    chunked.sum().backward()
    assert torch.allclose(chunked, bound, rtol=0, atol=1e-4)  # chunks of one point: rounding differences steer Adam
    assert all(bool(torch.isfinite(p.grad).all()) and float(p.grad.abs().max()) > 0 for p in model.parameters())


def test_slopes_count_in_the_chunk_size() -> None:
    from shallowcert.bounds.chunks import points_per_chunk
    from shallowcert.models import build

    network = read_network(build("wong-small", (1, 28, 28), 10).eval(), (1, 28, 28), torch.float32)
    sizes = [points_per_chunk(network, 9, torch.float32, signs=2, autograd=True, budget=1 << 32, slopes=slopes)
             for slopes in (None, "final", "intermediate")]
    assert sizes[0] > sizes[1] > sizes[2] >= 1
