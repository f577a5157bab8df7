"""Known ReLU states from a larger ball: sound, consistent, and no work where they decide."""

from __future__ import annotations

import pytest
import torch

from bounds_support import pgd_minimum, random_convnet, samples, spec_values
from shallowcert.bounds import InputSet, linear_certificate, margin_spec
from shallowcert.bounds.intermediate import ACTIVE, INACTIVE, UNKNOWN
from shallowcert.errors import UserError


def _setting(seed: int, eps: float) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    model = random_convnet(seed=seed)
    x = torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(seed + 100), dtype=torch.float64)
    labels = model(x).argmax(1)
    return model, x, margin_spec(labels, 4).double()


def _lower(certificate, input_set: InputSet) -> torch.Tensor:
    mid, rad = (t.flatten(1).unsqueeze(1) for t in input_set.mid_radius())
    lam = certificate.coefficients
    return certificate.offset + (lam * mid).sum(-1) - (lam.abs() * rad).sum(-1)


@pytest.mark.parametrize("method", ["dual", "crown"])
def test_states_of_the_same_set_change_nothing(method: str) -> None:
    model, x, spec = _setting(0, 0.1)
    input_set = InputSet(x, torch.full((12,), 0.1), domain=None)
    fresh = linear_certificate(model, input_set, spec, method=method)
    again = linear_certificate(model, input_set, spec, method=method, known_states=fresh.states)
    # equal up to summation order (fewer candidate rows are padded differently)
    torch.testing.assert_close(again.offset, fresh.offset, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(again.coefficients, fresh.coefficients, rtol=1e-12, atol=1e-12)
    assert all(torch.equal(a, b) for a, b in zip(again.states, fresh.states))
    assert any(bool((s == UNKNOWN).any()) for s in fresh.states)  # the radius leaves unstable neurons


@pytest.mark.parametrize("seed", range(4))
def test_states_from_a_larger_ball_are_sound_and_kept(seed: int) -> None:
    model, x, spec = _setting(seed, 0.12)
    outer = linear_certificate(model, InputSet(x, torch.full((12,), 0.12), domain=None), spec)
    inner_set = InputSet(x, torch.full((12,), 0.07), domain=None)
    inner = linear_certificate(model, inner_set, spec, known_states=outer.states)
    bounds = _lower(inner, inner_set)
    sampled = spec_values(model, samples(inner_set, 256, seed=seed), spec).amin(0)
    assert bool((bounds <= sampled + 1e-9).all())
    assert bool((bounds <= pgd_minimum(model, inner_set, spec) + 1e-9).all())
    for before, after in zip(outer.states, inner.states):
        decided = before != UNKNOWN
        assert torch.equal(after[decided], before[decided])  # a state proved on the larger ball stays
        assert bool(((after == ACTIVE) | (after == INACTIVE))[decided].all())


def test_wrong_known_states_are_refused() -> None:
    model, x, spec = _setting(0, 0.1)
    input_set = InputSet(x, torch.full((12,), 0.1), domain=None)
    states = linear_certificate(model, input_set, spec).states
    with pytest.raises(UserError, match="known_states"):
        linear_certificate(model, input_set, spec, known_states=states[:-1])
    with pytest.raises(UserError, match="known_states"):
        linear_certificate(model, input_set, spec, known_states=tuple(s[:5] for s in states))
