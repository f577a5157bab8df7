"""``tighten_active``: interval-proved active neurons back-substituted too.

Their bounds do not change their own layer's relaxation, only the interval arithmetic after
them. Checked against a reference written here (every neuron that is not interval-proved dead
bounded by back-substitution with the same relaxations), against the default (never looser at
any layer or margin, tighter somewhere on an IBP-trained net) and against sampled inputs and PGD.
"""

from __future__ import annotations

import pytest
import torch

from bounds_support import ibp_trained_wong_small, pgd_minimum, random_mlp, samples, spec_values
from shallowcert.bounds import InputSet, engine, lower_bounds, margin_spec
from shallowcert.bounds.intermediate import linear_bounds
from shallowcert.bounds.network import read_network
from shallowcert.errors import UserError

TOLERANCE = 1e-9


def _robust_case(points: int = 8) -> tuple[torch.nn.Sequential, InputSet, torch.Tensor]:
    model, inputs = ibp_trained_wong_small()
    x = inputs[:points]
    input_set = InputSet(x, torch.full((len(x),), 0.05, dtype=torch.float64), domain=(0.0, 1.0))
    with torch.no_grad():
        spec = margin_spec(model(x).argmax(1), 10).to(torch.float64)
    return model, input_set, spec


def test_tightened_active_bounds_are_never_looser_and_tighter_somewhere() -> None:
    model, input_set, spec = _robust_case(points=64)  # 7 of its 576 margins rise by more than 1e-6
    lower, upper = input_set.box()
    network = read_network(model, tuple(lower.shape[1:]), lower.dtype)
    with torch.no_grad():
        plain, _ = linear_bounds(network, (lower, upper), lower_slope="crown")
        tight, _ = linear_bounds(network, (lower, upper), lower_slope="crown", tighten_active=True)
        margins = {flag: lower_bounds(model, input_set, spec, method="crown", tighten_active=flag)
                   for flag in (False, True)}
    tightened_somewhere = False
    for position in plain:
        (low, high), (tight_low, tight_high) = plain[position], tight[position]
        assert bool((tight_low >= low - TOLERANCE).all()) and bool((tight_high <= high + TOLERANCE).all())
        active = low >= 0
        tightened_somewhere |= bool(((tight_high < high - 1e-6) & active).any())
    assert tightened_somewhere  # a no-op option fails here
    assert bool((margins[True] >= margins[False] - TOLERANCE).all())
    assert bool((margins[True] > margins[False] + 1e-6).any())


def test_tightened_active_bounds_lie_inside_bounding_every_live_neuron() -> None:
    """Every live neuron's bounds lie inside those of back-substituting every neuron without
    interval arithmetic (a reference that does not use the option's candidate masks): they are
    that back-substitution, with relaxations at least as tight, intersected with interval bounds."""
    model, input_set, _ = _robust_case()
    lower, upper = input_set.box()
    network = read_network(model, tuple(lower.shape[1:]), lower.dtype)
    with torch.no_grad():
        tight, _ = linear_bounds(network, (lower, upper), lower_slope="crown", tighten_active=True)
        everything, _ = linear_bounds(network, (lower, upper), lower_slope="crown", interval=False)
    for position in tight:
        (low, high), (all_low, all_high) = tight[position], everything[position]
        live = high > 0
        assert bool((low[live] >= all_low[live] - 1e-7).all()) and bool((high[live] <= all_high[live] + 1e-7).all())


@pytest.mark.parametrize("method", ["crown", "alpha-crown", "dual"])
def test_tightened_active_bounds_stay_below_samples_and_pgd(method: str) -> None:
    model, input_set, spec = _robust_case()
    with torch.no_grad():
        bound = lower_bounds(model, input_set, spec, method=method, alpha_steps=5, tighten_active=True)
    sampled = spec_values(model, samples(input_set, 64, seed=5), spec).amin(0)
    attacked = pgd_minimum(model, input_set, spec, steps=30, restarts=2, seed=5)
    assert bool((bound <= sampled + TOLERANCE).all()) and bool((bound <= attacked + TOLERANCE).all())


def test_tightened_active_bounds_on_an_mlp_stay_sound() -> None:
    model = random_mlp([10, 24, 24, 24, 5], seed=3)
    x = torch.rand(6, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    input_set = InputSet(x, torch.full((len(x),), 0.1, dtype=torch.float64), domain=None)
    with torch.no_grad():
        spec = margin_spec(model(x).argmax(1), 5).to(torch.float64)
        plain = lower_bounds(model, input_set, spec, method="crown")
        bound = lower_bounds(model, input_set, spec, method="crown", tighten_active=True)
    sampled = spec_values(model, samples(input_set, 128, seed=6), spec).amin(0)
    assert bool((bound >= plain - TOLERANCE).all())
    assert bool((bound <= sampled + TOLERANCE).all())


def test_undecided_points_alone_are_tightened(monkeypatch: pytest.MonkeyPatch) -> None:
    """``tighten_active="undecided"``: the points whose rows are all positive at the centre and
    not all proved are bounded again with ``tighten_active=True`` (and get the larger of both
    bounds); every other point keeps the plain bound (a quarter of the points are labelled
    wrongly: negative at the centre, never certifiable)."""
    model = random_mlp([10, 24, 24, 24, 5], seed=3)
    x = torch.rand(32, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    input_set = InputSet(x, torch.full((len(x),), 0.1, dtype=torch.float64), domain=None)
    with torch.no_grad():
        labels = model(x).argmax(1)
        labels[::4] = (labels[::4] + 1) % 5
        spec = margin_spec(labels, 5).to(torch.float64)
        plain = lower_bounds(model, input_set, spec, method="crown")
        tight = lower_bounds(model, input_set, spec, method="crown", tighten_active=True)
        centre = torch.einsum("nkc,nc->nk", spec, model(x))
    undecided = (plain <= 0).any(1) & (centre > 0).all(1)
    assert 0 < int(undecided.sum()) < len(x)
    again: list[torch.Tensor] = []
    original = engine.lower_bounds

    def recorded(model: torch.nn.Module, subset: InputSet, *args: object, **kwargs: object) -> torch.Tensor:
        if kwargs.get("tighten_active") is True:
            again.append(subset.center)
        return original(model, subset, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "lower_bounds", recorded)
    with torch.no_grad():
        bound = engine.lower_bounds(model, input_set, spec, method="crown", tighten_active="undecided")
    assert len(again) == 1 and torch.equal(again[0], x[undecided])
    assert torch.equal(bound[~undecided], plain[~undecided])
    assert torch.allclose(bound[undecided], torch.maximum(plain, tight)[undecided], rtol=0, atol=1e-12)


def test_tighten_active_refuses_an_unknown_choice() -> None:
    model, input_set, spec = _robust_case()
    with pytest.raises(UserError, match="tighten_active"):
        lower_bounds(model, input_set, spec, method="crown", tighten_active="sometimes")
