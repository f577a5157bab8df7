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


def test_a_seeded_search_starts_at_the_weaker_methods_radius() -> None:
    """Synthetic weak g1(e) = a - b e - c e^2 and strong g2 = g1 + d e (equal at 0): seeded with
    g1's outcome, the search on g2 brackets g2's zero, never below g1's radius, in a few
    evaluations; no gain (d = 0) costs one, and a point failing at 0 none."""
    a = torch.tensor([1.0, 2.0, 0.5, 3.0, -1.0], dtype=torch.float64)
    b = torch.tensor([10.0, 5.0, 40.0, 1.0, 1.0], dtype=torch.float64)
    c = torch.tensor([100.0, 0.0, 500.0, 20.0, 0.0], dtype=torch.float64)
    d = torch.tensor([0.5, 0.0, 3.0, 0.05, 0.0], dtype=torch.float64)

    def probe_of(gain: torch.Tensor):
        def probe(index: torch.Tensor, eps: torch.Tensor) -> Probe:
            value = a[index] - (b[index] - gain[index]) * eps - c[index] * eps ** 2
            slope = -(b[index] - gain[index]) - 2 * c[index] * eps
            return Probe(value > 0, value, eps - value / slope)
        return probe

    settings = SearchSettings(rtol=1e-3, atol=1e-9)
    weak = bracket_search(probe_of(torch.zeros_like(d)), 5, dtype=torch.float64, settings=settings)
    seeded = bracket_search(probe_of(d), 5, dtype=torch.float64, settings=settings, seed=weak)
    cold = bracket_search(probe_of(d), 5, dtype=torch.float64, settings=settings)
    bb = b - d
    root = (-bb + torch.sqrt(bb ** 2 + 4 * c * a.clamp(min=0))) / (2 * c).where(c > 0, torch.ones_like(c))
    zero = torch.where(c > 0, root, a.clamp(min=0) / bb)
    assert bool((seeded.radius >= weak.radius).all()) and bool((seeded.radius <= zero).all())
    assert bool((zero - seeded.radius <= 1e-9 + 1e-3 * seeded.radius).all())
    assert seeded.evaluations.tolist()[1] == 1 and seeded.evaluations.tolist()[4] == 0
    assert float(seeded.radius[4]) == 0.0
    assert int(seeded.evaluations.sum()) < int(cold.evaluations.sum())


def test_alpha_crown_radius_seeded_by_crown_is_sound_and_spends_fewer_alpha_evaluations(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import shallowcert.certify.radius as radius_module

    counts = {"alpha-crown": 0, "crown": 0}
    alpha_steps: set[tuple[bool, int]] = set()
    real = radius_module.linear_certificate

    def counting(net, input_set, spec, **options):
        counts[options["method"]] += len(input_set.center)
        if options["method"] == "alpha-crown":
            alpha_steps.add((options["alpha_start"] is None, options["alpha_steps"]))
        return real(net, input_set, spec, **options)

    monkeypatch.setattr(radius_module, "linear_certificate", counting)
    model = small_convnet(5)
    x = torch.rand(20, 1, 6, 6, generator=torch.Generator().manual_seed(6))
    settings = SearchSettings(rtol=0.01, atol=1e-6)
    crown = certified_radius(model, x, method="crown", dtype=torch.float64, settings=settings).radius
    counts.update({"alpha-crown": 0, "crown": 0})
    seeded = certified_radius(model, x, method="alpha-crown", dtype=torch.float64, settings=settings)
    seeded_alpha, seeded_crown = counts["alpha-crown"], counts["crown"]
    assert alpha_steps == {(True, settings.warm_alpha_steps), (False, settings.warm_alpha_steps)}  # first from CROWN's
    counts.update({"alpha-crown": 0, "crown": 0})
    plain = certified_radius(model, x, method="alpha-crown", dtype=torch.float64,
                             settings=SearchSettings(rtol=0.01, atol=1e-6, crown_seed=False))
    assert seeded_crown > 0 and counts["crown"] == 0
    assert seeded_alpha < counts["alpha-crown"]
    assert torch.equal(seeded.evaluations.sum(), torch.tensor(seeded_alpha + seeded_crown))
    assert bool((seeded.radius >= crown).all()) and bool((seeded.radius > crown).any())
    assert float(seeded.radius.mean()) >= 0.98 * float(plain.radius.mean())
    # sound: no sampled input in a point's certified ball changes its class
    held = seeded.radius > 0
    points, radii = x[held].double(), seeded.radius[held]
    generator = torch.Generator().manual_seed(7)
    net = model.double()
    for _ in range(20):
        corner = points + radii.view(-1, 1, 1, 1) * torch.sign(torch.rand(points.shape, generator=generator,
                                                                           dtype=torch.float64) - 0.5)
        with torch.no_grad():
            assert torch.equal(net(corner).argmax(1), seeded.predicted[held])
