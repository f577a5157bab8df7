"""The complete verifier: counterexamples are real, ``unsat`` agrees with the exact MILP and
with dense sampling, branch and bound proves what CROWN alone cannot, time limits hold,
and the exact radius brackets are honest."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from shallowcert.bounds import InputSet
from shallowcert.verify import Conjunction, Property, falsify, robustness_property, verify
from shallowcert.verify.exact import ExactSettings, exact_radius
from shallowcert.verify.milp import MilpSolver
from shallowcert.verify.subdomain import SubdomainBounder


def _net(seed: int, sizes: tuple[int, ...] = (2, 8, 8, 3)) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1]).double().eval()


def _sample_violation(model: nn.Module, prop: Property, count: int = 20000) -> float:
    """The smallest violation over a dense random sample of the box and its corners."""
    generator = torch.Generator().manual_seed(0)
    u = torch.rand((count, *prop.lower.shape), generator=generator, dtype=torch.float64)
    corners = torch.randint(0, 2, (count, *prop.lower.shape), generator=generator).double()
    x = torch.cat([u, corners]) * (prop.upper - prop.lower) + prop.lower
    with torch.no_grad():
        return float(prop.violation(model(x)).min())


def test_input_set_per_coordinate_radius_is_the_box() -> None:
    lower, upper = torch.tensor([[0.1, 0.5, 0.0]]), torch.tensor([[0.3, 0.5, 1.0]])
    box = InputSet((lower + upper) / 2, (upper - lower) / 2, domain=None).box()
    torch.testing.assert_close(box[0], lower)
    torch.testing.assert_close(box[1], upper)


def test_counterexample_lies_in_box_and_is_unsafe() -> None:
    # y = (x_0, 0.5, 0): class 0 loses to class 1 exactly where x_0 <= 0.5, inside the box x_0 in [0.4, 1]
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 3)).double().eval()
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(2))
        model[0].bias.zero_()
        model[2].weight.copy_(torch.tensor([[1.0, 0], [0, 0], [0, 0]]))
        model[2].bias.copy_(torch.tensor([0.0, 0.5, 0.0]))
    prop = robustness_property(torch.tensor([0.9, 0.5], dtype=torch.float64), 0.5, 0, 3)
    result = verify(model, prop, timeout=10)
    assert result.status == "sat"
    x = result.counterexample
    assert bool(prop.contains(x.unsqueeze(0))[0])
    with torch.no_grad():
        output = model(x.unsqueeze(0))
    torch.testing.assert_close(output[0], result.output)
    assert float(prop.violation(output)[0]) <= 0


@pytest.mark.parametrize("seed", range(8))
def test_verdicts_agree_with_milp_and_sampling(seed: int) -> None:
    model = _net(seed)
    generator = torch.Generator().manual_seed(seed)
    center = torch.rand(2, generator=generator, dtype=torch.float64)
    with torch.no_grad():
        label = int(model(center.unsqueeze(0)).argmax())
    prop = robustness_property(center, 0.05 + 0.1 * seed / 8, label, 3)
    result = verify(model, prop, timeout=10)
    assert result.status in ("sat", "unsat")
    bounder = SubdomainBounder(model, prop)
    milp_status, _ = MilpSolver(model, prop, bounder).solve(bounder.free_states(1) and tuple(
        s[0] for s in bounder.free_states(1)), deadline=time.monotonic() + 20)
    assert milp_status == result.status
    sampled = _sample_violation(model, prop)
    if result.status == "unsat":
        assert sampled > 0
    else:
        assert float(prop.violation(result.output.unsqueeze(0))[0]) <= 0


def test_disjunction_with_several_rows() -> None:
    model = _net(3)
    prop = Property(torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64), (
        Conjunction(torch.tensor([[1.0, 0, 0], [0, -1.0, 0]], dtype=torch.float64),
                    torch.tensor([-5.0, 0.0], dtype=torch.float64)),
        Conjunction(torch.tensor([[0, 0, 1.0]], dtype=torch.float64), torch.tensor([-100.0], dtype=torch.float64))))
    result = verify(model, prop, timeout=10)
    sampled = _sample_violation(model, prop)
    assert result.status == ("unsat" if sampled > 0 else "sat")


def test_branch_and_bound_proves_what_crown_cannot() -> None:
    model = _net(1, (2, 16, 16, 3))
    with torch.no_grad():
        model[0].weight.mul_(8)  # several classes in the unit square
    center = torch.tensor([0.225, 0.15], dtype=torch.float64)
    with torch.no_grad():
        label = int(model(center.unsqueeze(0)).argmax())
    for eps in (0.17, 0.18):
        prop = robustness_property(center, eps, label, 3)
        for method in ("crown", "alpha-crown"):
            bounder = SubdomainBounder(model, prop, method=method)
            assert not bool(bounder.bound_domains(bounder.free_states(1)).verified[0])  # the bound alone fails
        result = verify(model, prop, timeout=20, method="crown", milp_unstable=-1)  # no MILP on the whole box
        assert result.status == "unsat" and result.method == "bab" and result.stats["domains"] > 1
        assert _sample_violation(model, prop) > 0


def test_tiny_timeout_gives_no_wrong_answer() -> None:
    model = _net(5, (4, 32, 32, 32, 3))
    center = torch.full((4,), 0.5, dtype=torch.float64)
    with torch.no_grad():
        label = int(model(center.unsqueeze(0)).argmax())
    prop = robustness_property(center, 0.3, label, 3)
    sampled = _sample_violation(model, prop)
    began = time.monotonic()
    result = verify(model, prop, timeout=1e-3, milp_unstable=-1)
    assert time.monotonic() - began < 2.0
    assert result.status in ("timeout", "unknown", "unsat" if sampled > 0 else "sat")


def test_falsify_finds_only_real_counterexamples() -> None:
    model = _net(2)
    prop = Property(torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64),
                    (Conjunction(torch.tensor([[1.0, 0, 0]], dtype=torch.float64),
                                 torch.tensor([-1e6], dtype=torch.float64)),))
    assert falsify(model, prop) is None  # y_0 <= -1e6 is unreachable


def test_exact_radius_brackets_are_honest() -> None:
    model = _net(1, (2, 16, 16, 3)).float()
    with torch.no_grad():
        model[0].weight.mul_(8)  # several classes in the unit square
    generator = torch.Generator().manual_seed(1)
    x = torch.rand((3, 2), generator=generator)
    with torch.no_grad():
        labels = model(x).argmax(1)
    result = exact_radius(model, x, labels, ExactSettings(time_limit=10.0, rtol=0.05))
    assert bool((result.lower <= result.upper).all())
    assert bool((result.lower >= result.certified).all())
    assert int(result.settled.sum()) >= 2
    for i in range(3):
        center = x[i].double()
        if result.lower[i] > 0:
            prop = robustness_property(center, float(result.lower[i]), int(labels[i]), 3)
            assert verify(model, prop, timeout=10).status == "unsat"
        if torch.isfinite(result.upper[i]):
            prop = robustness_property(center, float(result.upper[i]), int(labels[i]), 3)
            assert verify(model, prop, timeout=10).status == "sat"
        if result.settled[i]:
            assert result.upper[i] - result.lower[i] <= 0.05 * result.upper[i]
    assert result.summary()["n"] == 3
