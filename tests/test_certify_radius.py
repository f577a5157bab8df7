"""Certified radius search: every radius re-certifies, is nearly maximal, and Newton is re-verified."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from shallowcert.bounds import InputSet, lower_bounds, margin_spec
from shallowcert.certify import SearchSettings, certified_radius
from shallowcert.certify.newton import newton_search
from shallowcert.certify.precision import rounding_margin
from shallowcert.certify.search import Probe, bracket_search


def small_convnet(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 3 * 3, 16), nn.ReLU(), nn.Linear(16, 3)).eval()


def certified_at(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, eps: torch.Tensor, *,
                 method: str, domain) -> torch.Tensor:
    bounds = lower_bounds(model, InputSet(x, eps, domain=domain), margin_spec(labels, 3).to(x.dtype), method=method)
    return (bounds > 0).all(dim=1)


@pytest.mark.parametrize("method,domain", [("dual", None), ("crown", (0.0, 1.0)), ("ibp", None)])
def test_every_radius_recertifies_and_is_nearly_maximal(method: str, domain) -> None:
    model = small_convnet(0)
    x = torch.rand(24, 1, 6, 6, generator=torch.Generator().manual_seed(1))
    settings = SearchSettings(rtol=0.01, atol=1e-6)
    result = certified_radius(model, x, method=method, domain=domain, dtype=torch.float64, settings=settings)
    net, points = model.double(), x.double()
    radius = result.radius
    assert result.dtype == "float64" and radius.dtype == torch.float64
    assert bool((radius >= 0).all()) and bool((radius > 0).any())
    held = radius > 0
    assert bool(certified_at(net, points[held], result.predicted[held], radius[held], method=method,
                             domain=domain).all())
    assert bool(certified_at(net, points[held], result.predicted[held], radius[held] / 2, method=method,
                             domain=domain).all())
    # nearly maximal: one tolerance above, the (monotone) bound fails again
    above = radius * (1 + 1.5 * settings.rtol) + 1.5 * settings.atol
    assert not bool(certified_at(net, points[held], result.predicted[held], above[held], method=method,
                                 domain=domain).any())


def test_no_certificate_gives_radius_zero() -> None:
    model = small_convnet(2)
    with torch.no_grad():  # classes 0 and 1 tie everywhere: no certificate at any radius
        model[-1].weight[1] = model[-1].weight[0]
        model[-1].bias[1] = model[-1].bias[0] + 0.0
        model[-1].bias[2] = model[-1].bias[0] - 100.0
    x = torch.rand(5, 1, 6, 6, generator=torch.Generator().manual_seed(3))
    result = certified_radius(model, x, dtype=torch.float64)
    assert torch.equal(result.radius, torch.zeros(5, dtype=torch.float64))
    assert bool((result.evaluations == 1).all())


def test_float32_model_is_not_modified_by_the_float64_path() -> None:
    model = small_convnet(4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    certified_radius(model, torch.rand(3, 1, 6, 6), dtype=torch.float64)
    assert all(v.dtype == torch.float32 and torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_bracket_search_brackets_a_known_zero() -> None:
    """Synthetic g(e) = a - b e - c e^2 with exact tangents: radius <= zero <= radius + tol."""
    a = torch.tensor([1.0, 2.0, 0.5, 3.0], dtype=torch.float64)
    b = torch.tensor([10.0, 5.0, 40.0, 1.0], dtype=torch.float64)
    c = torch.tensor([100.0, 0.0, 500.0, 20.0], dtype=torch.float64)
    zero = (-b + torch.sqrt(b ** 2 + 4 * c * a)) / (2 * c).where(c > 0, torch.ones_like(c))
    zero = torch.where(c > 0, zero, a / b)

    def probe(index: torch.Tensor, eps: torch.Tensor) -> Probe:
        value = a[index] - b[index] * eps - c[index] * eps ** 2
        slope = -b[index] - 2 * c[index] * eps
        return Probe(value > 0, value, eps - value / slope)  # the tangent's zero

    settings = SearchSettings(rtol=1e-3, atol=1e-9)
    outcome = bracket_search(probe, 4, dtype=torch.float64, settings=settings)
    assert bool((outcome.radius <= zero).all())
    assert bool((zero - outcome.radius <= 1e-9 + 1e-3 * outcome.radius).all())
    assert int(outcome.evaluations.max()) <= 12


def test_newton_failures_are_counted_by_reverification() -> None:
    """Concave g: Newton converges from above, nothing it returns verifies; convex g: from below."""
    a = torch.tensor([1.2, 2.0, 1.7], dtype=torch.float64)

    def concave(index: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        return a[index] - eps - 4 * eps ** 2

    def convex(index: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        return torch.exp(-eps) - a[index] / 3

    settings = SearchSettings(rtol=1e-6, atol=1e-12)
    over = newton_search(concave, 3, dtype=torch.float64, settings=settings)
    assert over.failures == 3 and not bool(over.verified.any())
    assert bool((concave(torch.arange(3), over.returned) <= 0).all())
    assert torch.equal(over.radius, torch.zeros(3, dtype=torch.float64))  # only e = 0 was certified
    under = newton_search(convex, 3, dtype=torch.float64, settings=SearchSettings(rtol=1e-2, atol=1e-12))
    assert torch.equal(under.verified, convex(torch.arange(3), under.returned) > 0)
    assert under.failures == int((~under.verified).sum())
    assert bool((under.radius <= torch.log(3 / a)).all())
    assert torch.allclose(under.radius, torch.log(3 / a), rtol=1e-3)


def test_newton_on_a_network_reports_only_verified_radii() -> None:
    model = small_convnet(5)
    x = torch.rand(16, 1, 6, 6, generator=torch.Generator().manual_seed(6))
    result = certified_radius(model, x, dtype=torch.float64, search="newton")
    net, points = model.double(), x.double()
    returned_holds = certified_at(net, points, result.predicted, result.newton_returned, method="dual", domain=None)
    certified_at_zero = certified_at(net, points, result.predicted, torch.zeros(16, dtype=torch.float64),
                                     method="dual", domain=None)
    assert result.newton_failures == int((certified_at_zero & ~returned_holds).sum())
    held = result.radius > 0
    assert bool(certified_at(net, points[held], result.predicted[held], result.radius[held], method="dual",
                             domain=None).all())
    assert torch.equal(result.radius[returned_holds], result.newton_returned[returned_holds])
    assert math.isfinite(float(result.radius.sum()))


def test_known_states_come_only_from_a_failed_larger_ball(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every evaluation given known states is below a radius at which that point failed,
    and gets exactly the states proved there (or fewer: zeros for points without one)."""
    import shallowcert.certify.radius as radius_module

    calls = []
    real = radius_module.linear_certificate

    def recording(net, input_set, spec, **options):
        certificate = real(net, input_set, spec, **options)
        calls.append((input_set.center.clone(), input_set.eps.clone(), options["known_states"], certificate))
        return certificate

    monkeypatch.setattr(radius_module, "linear_certificate", recording)
    model = small_convnet(3)
    x = torch.rand(16, 1, 6, 6, generator=torch.Generator().manual_seed(4))
    result = certified_radius(model, x, dtype=torch.float64, settings=SearchSettings(rtol=0.01, atol=1e-6))
    guard = 2 * rounding_margin(model.double()(x.double()))  # the search's threshold (radius module)
    failed: dict[int, list[tuple[float, tuple[torch.Tensor, ...]]]] = {}
    used = 0
    for center, eps, known, certificate in calls:
        rows = [int((x.double() == c).flatten(1).all(1).nonzero()) for c in center]
        value = (certificate.offset + (certificate.coefficients * center.flatten(1).unsqueeze(1)).sum(-1)
                 - eps.unsqueeze(1) * certificate.coefficients.abs().sum(-1)).min(1).values
        for i, row in enumerate(rows):
            if known is not None and any(bool((k[i] != 0).any()) for k in known):
                used += 1
                radius, states = min(failed[row], key=lambda item: item[0])
                assert float(eps[i]) <= radius
                assert all(torch.equal(k[i], s) for k, s in zip(known, states))
            if value[i] <= guard[row]:
                failed.setdefault(row, []).append((float(eps[i]), tuple(s[i] for s in certificate.states)))
    assert used > 0 and bool((result.radius > 0).any())
