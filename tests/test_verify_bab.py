"""Branch and bound with warm starts, refined bounds and FSB-style branching.

* Children warm-started from their optimised parent are bounded no looser than the same
  children started cold (up to the rounding margin, past which rows are not optimised: a row
  above it proves its disjunct), and stay below every sampled input that obeys their splits; their refined
  pre-activation bounds contain every sampled pre-activation and are never looser than the
  parent's.
* On tiny nets the search (with and without the branching estimate) agrees with the exact
  MILP, and on cases that sampling shows unsafe it never answers ``unsat``.
"""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn
from verify_support import random_splits

from shallowcert.verify import robustness_property
from shallowcert.verify.bab import branch_and_bound
from shallowcert.verify.beta import SplitBounder
from shallowcert.verify.milp import MilpSolver
from shallowcert.verify.subdomain import SubdomainBounder, repeat_domains, split_states


def _net(seed: int, sizes: tuple[int, ...]) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1]).double().eval()


def _activations(model: nn.Sequential, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Every ReLU's input for the inputs ``x``, and the output."""
    pre = []
    with torch.no_grad():
        for layer in model:
            if isinstance(layer, nn.ReLU):
                pre.append(x)
            x = layer(x)
    return pre, x


def _obeying(pre: list[torch.Tensor], states: tuple[torch.Tensor, ...], n: int) -> torch.Tensor:
    """Which samples satisfy domain ``n``'s splits."""
    ok = torch.ones(len(pre[0]), dtype=torch.bool)
    for z, s in zip(pre, states):
        ok &= ~((s[n] == 1) & (z < 0) | (s[n] == -1) & (z > 0)).any(dim=1)
    return ok


def _setting(seed: int, sizes: tuple[int, ...] = (3, 20, 20, 20, 4), eps: float = 0.4):
    model = _net(seed, sizes)
    center = torch.full((sizes[0],), 0.5, dtype=torch.float64)
    with torch.no_grad():
        label = int(model(center.unsqueeze(0)).argmax())
    prop = robustness_property(center, eps, label, sizes[-1])
    base = SubdomainBounder(model, prop)
    return model, prop, base, base.bound_domains(base.free_states(1))


@pytest.mark.parametrize("seed", range(4))
def test_warm_started_children_are_no_looser_than_cold_and_stay_sound(seed: int) -> None:
    model, prop, base, root = _setting(seed)
    generator = torch.Generator().manual_seed(seed)
    parent_bounder = SplitBounder(base, root, steps=30)
    states = random_splits(parent_bounder, 10, 2, generator)
    parents = parent_bounder.bound_domains(states)
    scores = torch.cat([s.flatten(1) for s in parents.scores], dim=1)
    neuron = torch.where(scores.amax(dim=1) > 0, scores.argmax(dim=1), -1)
    keep = neuron >= 0
    children = split_states(tuple(s[keep] for s in parents.states), neuron[keep])
    inherited = parents.inherited.map(lambda t: repeat_domains(t[keep], 2))
    child_bounder = SplitBounder(base, root, steps=5)
    warm = child_bounder.bound_domains(children, parents=inherited)
    cold = child_bounder.bound_domains(children)
    x = prop.lower + (prop.upper - prop.lower) * torch.rand((20000, 3), generator=generator, dtype=torch.float64)
    pre, y = _activations(model, x)
    matrix, bound, _ = prop.rows()
    rows = y @ matrix.T - bound
    # never looser than a cold start where it matters: rows are optimised until they pass the margin
    margin = child_bounder.margin
    assert bool((warm.rows.clamp(max=margin) >= cold.rows.clamp(max=margin) - 1e-9).all())
    assert bool((warm.proved >= cold.proved).all())
    assert bool((warm.rows >= inherited.rows - 1e-12).all())  # nor than the parent
    assert bool((warm.rows > cold.rows + 1e-6).any())  # and tighter somewhere
    for n in range(len(warm.rows)):
        ok = _obeying(pre, children, n)
        if not bool(ok.any()):
            continue
        assert not bool(warm.empty[n])  # a subdomain with samples in it is not empty
        assert bool((warm.rows[n] <= rows[ok].amin(dim=0) + 1e-9).all())  # below every sampled input
        for z, (lo, up), (parent_lo, parent_up) in zip(pre, warm.pre_activation, inherited.pre_activation):
            assert bool((lo[n] <= z[ok].amin(dim=0) + 1e-9).all() and (up[n] >= z[ok].amax(dim=0) - 1e-9).all())
            assert bool((lo[n] >= parent_lo[n]).all() and (up[n] <= parent_up[n]).all())


def test_refinement_tightens_the_layer_after_a_split() -> None:
    _, _, base, root = _setting(1)
    bounder, fixed = SplitBounder(base, root, steps=0), SplitBounder(base, root, steps=0, refine_depth=0)
    states = random_splits(bounder, 16, 1, torch.Generator().manual_seed(3))
    refined, plain = bounder.bound_domains(states), fixed.bound_domains(states)
    gain = sum(float((p_up - p_lo).sum() - (up - lo).sum())
               for (lo, up), (p_lo, p_up) in zip(refined.pre_activation, plain.pre_activation))
    assert gain > 0


def _search(model: nn.Module, prop, candidates: int, *, refine_depth: int = 1):
    base = SubdomainBounder(model, prop, method="crown")
    root = base.bound_domains(base.free_states(1))
    deadline = time.monotonic() + 30
    bounder = SplitBounder(base, root, deadline=deadline, refine_depth=refine_depth)
    milp = MilpSolver(model, prop, base)
    return branch_and_bound(model, prop, bounder, deadline=deadline, root=root, batch=8, candidates=candidates,
                            falsify_every=0, exact=lambda states: milp.solve(states, deadline=deadline))


def _sampled_violation(model: nn.Module, prop, count: int = 20000) -> float:
    generator = torch.Generator().manual_seed(0)
    x = prop.lower + (prop.upper - prop.lower) * torch.rand((count, *prop.lower.shape), generator=generator,
                                                             dtype=torch.float64)
    with torch.no_grad():
        return float(prop.violation(model(x)).min())


@pytest.mark.parametrize("seed", range(6))
def test_search_agrees_with_milp_with_and_without_the_branching_estimate(seed: int) -> None:
    model = _net(seed, (2, 12, 12, 3))
    generator = torch.Generator().manual_seed(seed)
    center = torch.rand(2, generator=generator, dtype=torch.float64)
    with torch.no_grad():
        label = int(model(center.unsqueeze(0)).argmax())
    prop = robustness_property(center, 0.05 + 0.05 * seed, label, 3)
    base = SubdomainBounder(model, prop)
    expected, _ = MilpSolver(model, prop, base).solve(tuple(s[0] for s in base.free_states(1)),
                                                      deadline=time.monotonic() + 20)
    assert expected in ("sat", "unsat")
    for candidates, refine_depth in ((1, 0), (3, 1), (3, 2)):
        outcome = _search(model, prop, candidates, refine_depth=refine_depth)
        assert outcome.status == expected
        if outcome.status == "sat":
            with torch.no_grad():
                assert float(prop.violation(model(outcome.counterexample.x.unsqueeze(0)))[0]) <= 0


@pytest.mark.parametrize("seed", (0, 1, 3, 4, 5))  # net 12 is safe on the whole cube
def test_unsafe_cases_are_never_unsat(seed: int) -> None:
    model = _net(10 + seed, (3, 16, 16, 4))
    center = torch.rand(3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    with torch.no_grad():
        model[0].weight.mul_(4)  # several classes in the unit cube
        label = int(model(center.unsqueeze(0)).argmax())
    # the smallest radius of a grid at which sampling shows the case unsafe: barely unsafe
    radii = [eps / 40 for eps in range(1, 21)]
    prop = next((p for p in (robustness_property(center, eps, label, 4) for eps in radii)
                 if _sampled_violation(model, p) <= 0), None)
    assert prop is not None
    outcome = _search(model, prop, 3)
    assert outcome.status in ("sat", "timeout", "unknown")
    if outcome.status == "sat":
        x = outcome.counterexample.x
        assert bool(prop.contains(x.unsqueeze(0))[0])
        with torch.no_grad():
            assert float(prop.violation(model(x.unsqueeze(0)))[0]) <= 0


def test_convolutional_networks_get_fewer_steps_and_no_refinement_after_splits() -> None:
    _, _, base, root = _setting(0)
    fully_connected = SplitBounder(base, root)
    assert (fully_connected.refine_depth, fully_connected.steps) == (1, 20)
    torch.manual_seed(0)
    conv = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(18, 3)).double().eval()
    center = torch.full((1, 5, 5), 0.5, dtype=torch.float64)
    with torch.no_grad():
        label = int(conv(center.unsqueeze(0)).argmax())
    conv_base = SubdomainBounder(conv, robustness_property(center, 0.2, label, 3))
    conv_root = conv_base.bound_domains(conv_base.free_states(1))
    convolutional = SplitBounder(conv_base, conv_root)
    assert (convolutional.refine_depth, convolutional.steps) == (0, 10)
    chosen = SplitBounder(conv_base, conv_root, refine_depth=2, steps=7)
    assert (chosen.refine_depth, chosen.steps) == (2, 7)
