"""Refined pre-activation bounds after splits, on convolutional nets (patches).

A convolutional layer after a split is refined on windows (:mod:`shallowcert.bounds.patches`),
a dense one as rows. Both must give what the plain dense computation gives (one-hot rows
of every unstable neuron, both signs, pushed back to the input with CROWN's relaxations of
the split earlier layers, concretised over the box, intersected with the current bounds), and
contain the pre-activations of every sampled input that obeys the splits.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from shallowcert.bounds import back_substitute, concretize, relax, unstable_mask
from shallowcert.verify import robustness_property
from shallowcert.verify.refine import refine_after_splits
from shallowcert.verify.subdomain import SubdomainBounder


def _conv_net(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ReLU(),
                         nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 3 * 3, 8), nn.ReLU(),
                         nn.Linear(8, 3)).double().eval()


def _split_bounds(pre: list[tuple[torch.Tensor, torch.Tensor]], count: int, generator: torch.Generator,
                  ) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], list[torch.Tensor]]:
    """``count`` copies of the root bounds, each with one unstable neuron of the first ReLU layer
    split (active or inactive at random), and the split states per layer."""
    lower, upper = (t.expand(count, *t.shape[1:]).clone() for t in pre[0])
    states = [torch.zeros((count, *lo.shape[1:]), dtype=torch.int8) for lo, _ in pre]
    unstable = unstable_mask(lower[0], upper[0]).flatten().nonzero().squeeze(1)
    for n in range(count):
        j = int(unstable[torch.randint(len(unstable), (1,), generator=generator)])
        active = bool(torch.rand(1, generator=generator) < 0.5)
        (lower if active else upper).view(count, -1)[n, j] = 0.0
        states[0].view(count, -1)[n, j] = 1 if active else -1
    rest = [(lo.expand(count, *lo.shape[1:]).clone(), up.expand(count, *up.shape[1:]).clone()) for lo, up in pre[1:]]
    return [(lower, upper), *rest], states


def _dense_reference(base: SubdomainBounder, pre: list[tuple[torch.Tensor, torch.Tensor]], mid: torch.Tensor,
                     rad: torch.Tensor, depth: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Layers ``1 .. depth`` refined in order, every unstable neuron as a dense one-hot row."""
    network, refined = base.network, list(pre)
    positions = network.relu_positions
    for layer in range(1, depth + 1):
        lower, upper = refined[layer]
        count, shape = len(lower), tuple(lower.shape[1:])
        eye = torch.eye(lower[0].numel(), dtype=lower.dtype).reshape(1, -1, *shape).expand(count, -1, *shape)
        relaxations = {p: relax(lo, up, lower_slope="crown") for p, (lo, up) in zip(positions, refined[:layer])}
        bound = back_substitute(network.steps[:positions[layer]], torch.cat([eye, -eye], 1), relaxations)
        value = concretize(bound.coefficients, mid.expand(count, *mid.shape[1:]),
                           rad.expand(count, *rad.shape[1:]))[0] + bound.offset_lower
        rows = eye.shape[1]
        new_lower, new_upper = value[:, :rows].reshape(lower.shape), -value[:, rows:].reshape(lower.shape)
        unstable = unstable_mask(lower, upper)
        refined[layer] = (torch.where(unstable, torch.maximum(lower, new_lower), lower),
                          torch.where(unstable, torch.minimum(upper, new_upper), upper))
    return refined


@pytest.mark.parametrize("seed", range(3))
def test_refined_conv_layers_equal_the_dense_computation_and_contain_the_samples(seed: int) -> None:
    model = _conv_net(seed)
    generator = torch.Generator().manual_seed(seed)
    center = torch.rand(1, 6, 6, generator=generator, dtype=torch.float64)
    with torch.no_grad():
        label = int(model(center.unsqueeze(0)).argmax())
    prop = robustness_property(center, 0.15, label, 3)
    base = SubdomainBounder(model, prop, method="crown")
    root = base.bound_domains(base.free_states(1))
    pre, states = _split_bounds([(lo.detach(), up.detach()) for lo, up in root.pre_activation], 12, generator)
    mid, rad = ((prop.upper + prop.lower) / 2).unsqueeze(0), ((prop.upper - prop.lower) / 2).unsqueeze(0)
    first = torch.zeros(12, dtype=torch.int64)
    depth = len(pre) - 1
    with torch.no_grad():
        refined = refine_after_splits(base.network, pre, first, mid, rad, depth=depth, memory_budget=2 ** 30)
        reference = _dense_reference(base, pre, mid, rad, depth)
    tightened = 0.0
    for (lo, up), (ref_lo, ref_up), (old_lo, old_up) in zip(refined, reference, pre):
        assert torch.allclose(lo, ref_lo, rtol=0, atol=1e-9) and torch.allclose(up, ref_up, rtol=0, atol=1e-9)
        assert bool((lo >= old_lo).all() and (up <= old_up).all())
        tightened += float((old_up - old_lo).sum() - (up - lo).sum())
    assert tightened > 0  # the splits made some later layer tighter
    x = prop.lower + (prop.upper - prop.lower) * torch.rand((20000, *prop.lower.shape), generator=generator,
                                                             dtype=torch.float64)
    activations, z = [], x
    with torch.no_grad():
        for module in model:
            if isinstance(module, nn.ReLU):
                activations.append(z)
            z = module(z)
    sampled = 0
    for n in range(12):
        ok = torch.ones(len(x), dtype=torch.bool)
        for a, s in zip(activations, states):
            ok &= ~(((s[n] == 1) & (a < 0)) | ((s[n] == -1) & (a > 0))).flatten(1).any(dim=1)
        if not bool(ok.any()):  # a split side too thin for the samples
            continue
        sampled += 1
        for a, (lo, up) in zip(activations, refined):
            assert bool((lo[n] <= a[ok].amin(dim=0) + 1e-9).all() and (up[n] >= a[ok].amax(dim=0) - 1e-9).all())
    assert sampled >= 6
