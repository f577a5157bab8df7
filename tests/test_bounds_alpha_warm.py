"""alpha-CROWN warm-started from earlier slopes: sound, never looser than CROWN, and what the
radius search hands from one evaluation of a point to the next."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bounds_support import pgd_minimum, random_convnet, random_mlp, samples, spec_values
from shallowcert.bounds import ALPHA_STEPS, InputSet, linear_certificate, lower_bounds, margin_spec
from shallowcert.certify import SearchSettings, certified_radius
from shallowcert.errors import UserError

TOLERANCE = 1e-9


def pool_net(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(3 * 4 * 4, 10), nn.ReLU(), nn.Linear(10, 4)).double().eval()


def setting(kind: str) -> tuple[nn.Sequential, torch.Tensor]:
    generator = torch.Generator().manual_seed(11)
    if kind == "mlp":
        return random_mlp([6, 20, 20, 3], seed=11).double(), torch.rand(6, 6, generator=generator, dtype=torch.float64)
    model = random_convnet(seed=11).double() if kind == "convnet" else pool_net(11)
    return model, torch.rand(5, 1, 8, 8, generator=generator, dtype=torch.float64)


def value(certificate, input_set: InputSet) -> torch.Tensor:
    mid, rad = (t.flatten(1).unsqueeze(1) for t in input_set.mid_radius())
    lam = certificate.coefficients
    return certificate.offset + (lam * mid).sum(-1) - (lam.abs() * rad).sum(-1)


@pytest.mark.parametrize("kind", ["mlp", "convnet", "maxpool"])
def test_a_warm_start_at_another_radius_is_sound_and_never_looser_than_crown(kind: str) -> None:
    model, x = setting(kind)
    with torch.no_grad():
        spec = margin_spec(model(x).argmax(1), model(x).shape[1]).to(x.dtype)
    eps = torch.full((len(x),), 0.06, dtype=x.dtype)
    first = linear_certificate(model, InputSet(x, eps), spec, method="alpha-crown")
    assert len(first.slopes) == (3 if kind == "maxpool" else len(first.states))
    assert all(s.shape[:2] == spec.shape[:2] and bool(((s >= 0) & (s <= 1)).all()) for s in first.slopes)
    for scale in (0.7, 1.3):
        near = InputSet(x, eps * scale)
        warm = linear_certificate(model, near, spec, method="alpha-crown", alpha_start=first.slopes, alpha_steps=3)
        bound = value(warm, near)
        crown = lower_bounds(model, near, spec, method="crown")
        assert bool((bound >= crown - TOLERANCE).all())
        sampled = spec_values(model, samples(near, 300, seed=3), spec).amin(0)
        assert bool((bound <= sampled + TOLERANCE).all())
        assert bool((bound <= pgd_minimum(model, near, spec, seed=1) + TOLERANCE).all())


@torch.no_grad()
def test_a_warm_start_with_few_steps_gets_tighter_than_a_cold_start_with_as_many() -> None:
    model, x = setting("convnet")
    with torch.no_grad():
        spec = margin_spec(model(x).argmax(1), model(x).shape[1]).to(x.dtype)
    input_set = InputSet(x, torch.full((len(x),), 0.05, dtype=x.dtype))
    earlier = linear_certificate(model, InputSet(x, torch.full((len(x),), 0.055, dtype=x.dtype)), spec,
                                 method="alpha-crown", alpha_steps=30)
    cold = value(linear_certificate(model, input_set, spec, method="alpha-crown", alpha_steps=3), input_set)
    warm = value(linear_certificate(model, input_set, spec, method="alpha-crown", alpha_steps=3,
                                    alpha_start=earlier.slopes), input_set)
    crown = lower_bounds(model, input_set, spec, method="crown")
    assert float((warm - crown).mean()) > float((cold - crown).mean()) > 0


def test_a_start_of_the_wrong_shape_is_refused() -> None:
    model, x = setting("mlp")
    with torch.no_grad():
        spec = margin_spec(model(x).argmax(1), model(x).shape[1]).to(x.dtype)
    input_set = InputSet(x, torch.full((len(x),), 0.05, dtype=x.dtype))
    slopes = linear_certificate(model, input_set, spec, method="alpha-crown", alpha_steps=2).slopes
    with pytest.raises(UserError, match="alpha_start must hold one slope tensor per ReLU"):
        linear_certificate(model, input_set, spec, method="alpha-crown", alpha_start=slopes[:1])
    with pytest.raises(UserError, match="alpha_start"):
        linear_certificate(model, InputSet(x[:2], input_set.eps[:2]), spec[:2], method="alpha-crown",
                           alpha_start=slopes)
    assert linear_certificate(model, input_set, spec, method="crown", alpha_start=slopes).slopes == ()


def test_the_radius_search_starts_each_evaluation_from_the_points_last_slopes(monkeypatch: pytest.MonkeyPatch) -> None:
    import shallowcert.certify.radius as radius_module

    calls = []
    real = radius_module.linear_certificate

    def recording(net, input_set, spec, **options):
        certificate = real(net, input_set, spec, **options)
        calls.append((input_set.center.clone(), options, certificate))
        return certificate

    monkeypatch.setattr(radius_module, "linear_certificate", recording)
    model, x = setting("convnet")
    result = certified_radius(model, x, method="alpha-crown", dtype=torch.float64,
                              settings=SearchSettings(rtol=0.02, warm_alpha_steps=4, crown_seed=False))
    last: dict[int, tuple[torch.Tensor, ...]] = {}
    warm = 0
    for center, options, certificate in calls:
        rows = [int((x == c).flatten(1).all(1).nonzero()) for c in center]
        start = options.get("alpha_start")
        if start is None:
            assert options["alpha_steps"] == ALPHA_STEPS and not any(r in last for r in rows)
        else:
            warm += 1
            assert options["alpha_steps"] == 4
            for i, row in enumerate(rows):
                assert all(torch.equal(s[i], previous) for s, previous in zip(start, last[row]))
        for i, row in enumerate(rows):
            last[row] = tuple(s[i] for s in certificate.slopes)
    assert warm > 0 and bool((result.radius > 0).any())
    # sound: no sampled input in a point's certified ball changes its class
    held = result.radius > 0
    ball = InputSet(x[held], result.radius[held])
    with torch.no_grad():
        spec = margin_spec(result.predicted[held], 4).to(x.dtype)
    assert bool((spec_values(model, samples(ball, 300, seed=5), spec) > 0).all())
    cold = certified_radius(model, x, method="alpha-crown", dtype=torch.float64,
                            settings=SearchSettings(rtol=0.02, warm_alpha_steps=None))
    assert float(result.radius.mean()) >= 0.95 * float(cold.radius.mean())
