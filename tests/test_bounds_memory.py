"""Chunking over points: a memory budget changes neither bounds nor gradients, and holds.

The network has four stride-2 convolutions whose third one does not tile its input
(28 -> 14 -> 7 -> 3 -> 1), so patches hang over map borders and the deepest layer is
bounded densely (its windows would be larger than the maps).
"""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

from shallowcert.bounds import InputSet, linear_lower_bound, lower_bounds, margin_spec
from shallowcert.bounds.network import as_relu
from shallowcert.errors import UserError
from shallowcert.models import build

NET = "cert-teacher:8-8-8-16-32"


def _net_and_set(points: int, *, seed: int) -> tuple[torch.nn.Sequential, InputSet, torch.Tensor]:
    torch.manual_seed(seed)
    model = build(NET, (1, 28, 28), 10).double().eval()
    x = torch.rand(points, 1, 28, 28, dtype=torch.float64)
    with torch.no_grad():
        spec = margin_spec(model(x).argmax(1), 10)
    return model, InputSet(x, torch.linspace(0.02, 0.2, points, dtype=torch.float64)), spec


@pytest.mark.parametrize("method", ["dual", "crown", "alpha-crown"])
def test_chunks_of_one_point_equal_point_by_point_bounds(method: str) -> None:
    model, input_set, spec = _net_and_set(5, seed=1)
    with torch.no_grad():
        chunked = lower_bounds(model, input_set, spec, method=method, alpha_steps=3, memory_budget=1)
        whole = lower_bounds(model, input_set, spec, method=method, alpha_steps=3)
        single = torch.cat([
            lower_bounds(model, InputSet(input_set.center[i:i + 1], input_set.eps[i:i + 1]), spec[i:i + 1],
                         method=method, alpha_steps=3) for i in range(5)])
    assert torch.allclose(chunked, single, rtol=0, atol=1e-11)
    assert torch.allclose(whole, single, rtol=0, atol=1e-11)
    assert bool((single < 0).any())  # unstable neurons: the relaxations matter here


def test_chunked_linear_bound_and_gradients_match_one_batch() -> None:
    model, input_set, spec = _net_and_set(4, seed=2)
    results = []
    for budget in (1, None):
        model.zero_grad()
        lam, offset = linear_lower_bound(model, input_set, spec, memory_budget=budget)
        (offset.sum() + lam.square().sum()).backward()
        results.append((lam.detach(), offset.detach(), [p.grad.clone() for p in model.parameters()]))
    (lam_a, offset_a, grads_a), (lam_b, offset_b, grads_b) = results
    assert torch.allclose(lam_a, lam_b, rtol=0, atol=1e-12) and torch.allclose(offset_a, offset_b, rtol=0, atol=1e-11)
    assert all(torch.allclose(a, b, rtol=1e-10, atol=1e-10) for a, b in zip(grads_a, grads_b))
    assert any(float(g.abs().max()) > 0 for g in grads_a)


def test_non_positive_budget_is_a_user_error() -> None:
    model, input_set, spec = _net_and_set(2, seed=3)
    with pytest.raises(UserError, match="memory_budget"):
        lower_bounds(model, input_set, spec, memory_budget=0)


_GROWTH_SCRIPT = textwrap.dedent("""
    import resource, sys, torch
    from shallowcert.bounds import InputSet, chunks, lower_bounds, margin_spec
    from shallowcert.models import build
    torch.set_num_threads(2)
    torch.manual_seed(0)
    points, budget = int(sys.argv[1]), int(sys.argv[2])
    chunks.CACHE_TARGET = 1 << 40  # only the budget limits the chunks here
    model = build(sys.argv[3], (1, 28, 28), 10).double().eval()
    x = torch.rand(points, 1, 28, 28, dtype=torch.float64)
    spec = margin_spec(torch.zeros(points, dtype=torch.int64), 10)
    eps = torch.full((points,), 0.02, dtype=torch.float64)
    with torch.no_grad():
        lower_bounds(model, InputSet(x[:2], eps[:2]), spec[:2], memory_budget=budget)  # warm up
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        lower_bounds(model, InputSet(x, eps), spec, memory_budget=budget)
    print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)
""")


def _peak_growth(points: int, budget: int) -> int:
    """Bytes the peak resident memory grows by while bounding ``points`` points (subprocess)."""
    done = subprocess.run([sys.executable, "-c", _GROWTH_SCRIPT, str(points), str(budget), NET],
                          capture_output=True, text=True, check=True, timeout=120)
    return int(done.stdout.split()[-1])


def test_big_batch_stays_within_the_memory_budget() -> None:
    budget = 64 << 20
    assert _peak_growth(300, budget) < budget
    # without a usable budget a larger batch really needs more than the budget (RSS growth varies
    # with the allocator, hence the margin of points rather than of bytes)
    assert _peak_growth(1000, 16 << 30) > budget


def test_chunks_without_autograd_fit_the_cache_target_and_with_autograd_the_budget() -> None:
    from shallowcert.bounds.chunks import CACHE_TARGET, points_per_chunk
    from shallowcert.bounds.network import read_network
    from shallowcert.bounds.plan import bytes_per_point, coefficient_bytes_per_point

    network = read_network(build("wong-small", (1, 28, 28), 10).eval(), (1, 28, 28), torch.float32)
    budget = 1 << 34
    plain = points_per_chunk(network, 9, torch.float32, signs=1, autograd=False, budget=budget)
    recorded = points_per_chunk(network, 9, torch.float32, signs=1, autograd=True, budget=budget)
    per_point = coefficient_bytes_per_point(network, 9, 4, signs=1)
    assert 1 <= plain and plain * per_point <= CACHE_TARGET < (plain + 1) * per_point
    assert recorded == budget // bytes_per_point(network, 9, 4, signs=1, autograd=True) > plain


@pytest.mark.parametrize("layers", [
    "wong-small",
    nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 8, 3, padding=1),
                  nn.ReLU(), nn.Flatten(), nn.Linear(8 * 14 * 14, 10)),
])
def test_interval_candidates_bound_the_neurons_back_substituted(layers: str | nn.Sequential,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from shallowcert.bounds import intermediate
    from shallowcert.bounds.chunks import points_per_chunk
    from shallowcert.bounds.network import read_network

    torch.manual_seed(4)
    model = build(layers, (1, 28, 28), 10).eval() if isinstance(layers, str) else layers.eval()
    network = read_network(model, (1, 28, 28), torch.float32)
    x = torch.rand(6, 1, 28, 28)
    eps = torch.linspace(0.002, 0.03, 6).view(6, 1, 1, 1)
    lower, upper = (x - eps).clamp(0, 1), (x + eps).clamp(0, 1)
    seen: dict[int, int] = {}
    original = intermediate._tight_bounds

    def recording(steps, candidates, *args):  # type: ignore[no-untyped-def]
        count = int(candidates.flatten(1).sum(1).max())
        seen[len(steps)] = max(seen.get(len(steps), 0), count)
        return original(steps, candidates, *args)

    monkeypatch.setattr(intermediate, "_tight_bounds", recording)
    with torch.no_grad():
        counts = intermediate.interval_candidates(network, lower, upper)
        intermediate.linear_bounds(network, (lower, upper), lower_slope="crown")
    assert seen and all(seen[position] <= counts[position] for position in seen)
    neurons = {position: math.prod(as_relu(network.steps[position]).shape) for position in network.relu_positions}
    assert any(counts[position] < neurons[position] for position in seen)  # the count is smaller than all neurons
    plain = points_per_chunk(network, 9, torch.float32, signs=2, autograd=False, budget=1 << 34)
    counted = points_per_chunk(network, 9, torch.float32, signs=2, autograd=False, budget=1 << 34,
                               candidates={position: 1 for position in counts})
    assert counted > plain
