"""Shared by the tests/test_bounds_*.py files: small random networks, sampling and PGD.

Networks are float64 with weights scaled so that many ReLUs are unstable at the radii
used, which is where relaxations differ and bugs show.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from scipy.optimize import Bounds, LinearConstraint, milp
from torch import nn

from shallowcert.bounds import InputSet
from shallowcert.models import build
from shallowcert.robust.loss import robust_loss


def random_mlp(sizes: list[int], *, seed: int) -> nn.Sequential:
    """``Linear, ReLU, ..., Linear`` through ``sizes`` (first = inputs, last = outputs)."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers).double().eval()


def random_convnet(*, seed: int, channels: int = 1, classes: int = 4) -> nn.Sequential:
    """Two convolutions (stride 2 with padding, then stride 1 without), a hidden FC layer."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(channels, 4, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(4, 6, 3, stride=1, padding=0), nn.ReLU(), nn.Flatten(),
        nn.Linear(6 * 2 * 2, 12), nn.ReLU(), nn.Linear(12, classes),
    ).double().eval()


@lru_cache(maxsize=1)
def ibp_trained_wong_small() -> tuple[nn.Sequential, torch.Tensor]:
    """A wong-small after 20 Adam steps of IBP training at radius 0.05 (float64), and its 64
    training inputs: uniform 28x28 images labelled by a random linear map, so the net keeps
    unstable ReLUs. On it interval bounds are tighter than the dual's for many neurons,
    which is where ``dual`` and ``dual-exact`` differ. Cached: build it once per session."""
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = build("wong-small", (1, 28, 28), 10).double()
    x = torch.rand(64, 1, 28, 28, dtype=torch.float64, generator=generator)
    labels = (x.flatten(1) @ torch.randn(784, 10, dtype=torch.float64, generator=generator)).argmax(1)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(20):
        optimiser.zero_grad()
        robust_loss(model, x, labels, 0.05, method="ibp").loss.backward()
        optimiser.step()
    return model.eval(), x


def samples(input_set: InputSet, count: int, *, seed: int) -> torch.Tensor:
    """``count`` points per input point: box corners and uniform points, ``(count, N, ...)``."""
    generator = torch.Generator().manual_seed(seed)
    lower, upper = input_set.box()
    shape = (count, *lower.shape)
    corners = torch.randint(0, 2, shape, generator=generator).to(lower.dtype)
    uniform = torch.rand(shape, generator=generator, dtype=lower.dtype)
    mix = torch.where(torch.arange(count).reshape(-1, *([1] * lower.dim())) % 2 == 0, corners, uniform)
    return lower + mix * (upper - lower)


def spec_values(model: nn.Module, points: torch.Tensor, spec: torch.Tensor) -> torch.Tensor:
    """``spec[n] @ model(points[s, n])`` for every sample: ``(S, N, K)``."""
    with torch.no_grad():
        outputs = model(points.reshape(-1, *points.shape[2:])).reshape(points.shape[0], points.shape[1], -1)
    return torch.einsum("nkc,snc->snk", spec, outputs)


def pgd_minimum(model: nn.Module, input_set: InputSet, spec: torch.Tensor, *, steps: int = 60,
                restarts: int = 4, seed: int = 0) -> torch.Tensor:
    """The smallest ``spec · f(x)`` per row found by L-inf PGD with random restarts: ``(N, K)``."""
    generator = torch.Generator().manual_seed(seed)
    lower, upper = input_set.box()
    width = (upper - lower).amax().item()
    best = None
    for _ in range(restarts):
        x = lower + torch.rand(lower.shape, generator=generator, dtype=lower.dtype) * (upper - lower)
        x = x.unsqueeze(1).expand(-1, spec.shape[1], *x.shape[1:]).clone()  # one attack per row
        for step in range(steps):
            x.requires_grad_(True)
            values = torch.einsum("nkc,nkc->nk", spec, model(x.reshape(-1, *x.shape[2:])).reshape(*spec.shape))
            (grad,) = torch.autograd.grad(values.sum(), x)
            size = width * 0.25 * (1 - step / steps) + 1e-4
            with torch.no_grad():
                x = torch.max(torch.min(x - size * grad.sign(), upper.unsqueeze(1)), lower.unsqueeze(1))
        with torch.no_grad():
            values = torch.einsum("nkc,nkc->nk", spec, model(x.reshape(-1, *x.shape[2:])).reshape(*spec.shape))
        best = values if best is None else torch.minimum(best, values)
    return best


def milp_minimum(model: nn.Sequential, lower: np.ndarray, upper: np.ndarray, row: np.ndarray) -> float:
    """Exact ``min row · f(x)`` over the box for a Linear/ReLU MLP (big-M from interval bounds)."""
    linears = [m for m in model if isinstance(m, nn.Linear)]
    weights = [(m.weight.detach().numpy(), m.bias.detach().numpy()) for m in linears]
    sizes = [lower.size] + [w.shape[0] for w, _ in weights[:-1]]
    # variables: x, then for each hidden layer its outputs a and its indicators d
    starts, total = [0], lower.size
    for size in sizes[1:]:
        starts.append(total)
        total += 2 * size
    var_lower, var_upper = np.zeros(total), np.zeros(total)
    var_lower[:lower.size], var_upper[:upper.size] = lower, upper
    integrality = np.zeros(total)
    rows, row_lower, row_upper = [], [], []
    box_lower, box_upper = lower, upper
    for k, (w, b) in enumerate(weights[:-1]):
        prev, prev_size, size, start = starts[k], sizes[k], sizes[k + 1], starts[k + 1]
        mid, rad = (box_upper + box_lower) / 2, (box_upper - box_lower) / 2
        z_lower, z_upper = w @ mid + b - np.abs(w) @ rad - 1e-6, w @ mid + b + np.abs(w) @ rad + 1e-6
        for j in range(size):
            a, d = start + j, start + size + j
            var_upper[a], var_upper[d], integrality[d] = max(z_upper[j], 0.0), 1.0, 1
            coefficients = np.zeros(total)
            coefficients[a], coefficients[prev:prev + prev_size] = 1.0, -w[j]
            rows.append(coefficients.copy()); row_lower.append(b[j]); row_upper.append(np.inf)  # a >= z
            coefficients[d] = -z_lower[j]
            rows.append(coefficients.copy()); row_lower.append(-np.inf); row_upper.append(b[j] - z_lower[j])
            indicator = np.zeros(total)
            indicator[a], indicator[d] = 1.0, -max(z_upper[j], 0.0)
            rows.append(indicator); row_lower.append(-np.inf); row_upper.append(0.0)  # a <= u d
        box_lower, box_upper = np.maximum(z_lower, 0), np.maximum(z_upper, 0)
    w, b = weights[-1]
    objective = np.zeros(total)
    objective[starts[-1]:starts[-1] + sizes[-1]] = row @ w
    result = milp(objective, constraints=LinearConstraint(np.array(rows), row_lower, row_upper),
                  integrality=integrality, bounds=Bounds(var_lower, var_upper))
    assert result.success, result.message
    return float(result.fun + row @ b)
