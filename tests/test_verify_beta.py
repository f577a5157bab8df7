"""beta-CROWN subdomain bounds: sound on every split subdomain (checked against the
network on sampled inputs that satisfy the splits), never looser than the same bound with
the multipliers and slopes left at their start, and tighter somewhere."""

from __future__ import annotations

import torch
from torch import nn
from verify_support import random_splits

from shallowcert.bounds import concretize
from shallowcert.verify import robustness_property
from shallowcert.verify.beta import SplitBounder
from shallowcert.verify.subdomain import SubdomainBounder


def _net(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 24), nn.ReLU(), nn.Linear(24, 24), nn.ReLU(), nn.Linear(24, 4)).double().eval()


def _setting(seed: int):
    """A random net, the robustness property of its label at the box centre, its bounder and root bounds."""
    model = _net(seed)
    center = torch.full((3,), 0.5, dtype=torch.float64)
    with torch.no_grad():
        label = int(model(center.unsqueeze(0)).argmax())
    prop = robustness_property(center, 0.4, label, 4)
    base = SubdomainBounder(model, prop)
    return model, prop, base, base.bound_domains(base.free_states(1))


def _sampled_rows(model: nn.Sequential, prop, states: tuple[torch.Tensor, ...], samples: int = 40000) -> torch.Tensor:
    """Per domain, the smallest sampled value of every unsafe row over inputs obeying its splits
    (``+inf`` where no sample obeys them)."""
    generator = torch.Generator().manual_seed(1)
    x = prop.lower + (prop.upper - prop.lower) * torch.rand((samples, 3), generator=generator, dtype=torch.float64)
    with torch.no_grad():
        z1 = model[0](x)
        z2 = model[2](model[1](z1))
        y = model[4](model[3](z2))
    matrix, bound, _ = prop.rows()
    rows = y @ matrix.T - bound
    result = []
    for n in range(states[0].shape[0]):
        ok = torch.ones(samples, dtype=torch.bool)
        for z, s in zip((z1, z2), states):
            ok &= ((s[n] == 1) & (z < 0) | (s[n] == -1) & (z > 0)).logical_not().all(dim=1)
        result.append(rows[ok].amin(dim=0) if bool(ok.any()) else torch.full((rows.shape[1],), torch.inf,
                                                                                   dtype=torch.float64))
    return torch.stack(result)


def test_split_bounds_hold_on_every_subdomain_and_beta_tightens() -> None:
    tightened = 0
    for seed in range(4):
        model, prop, base, root = _setting(seed)
        optimised, start = SplitBounder(base, root, steps=40), SplitBounder(base, root, steps=0)
        states = random_splits(optimised, 12, 3, torch.Generator().manual_seed(seed))
        bounds, plain = optimised.bound_domains(states), start.bound_domains(states)
        sampled = _sampled_rows(model, prop, states)
        assert bool((bounds.rows <= sampled + 1e-9).all())  # sound: below every sampled value
        assert bool((bounds.rows >= plain.rows - 1e-12).all())  # the optimum keeps the best bound seen
        tightened += int((bounds.rows > plain.rows + 1e-6).sum())
    assert tightened > 0


def test_a_float32_search_reports_the_float64_bound_of_its_slopes_and_multipliers() -> None:
    """The search runs in float32; the rows it reports are the float64 back-substitution with
    the slopes and multipliers it hands on (not float32 values, which differ by rounding)."""
    model, prop, base, root = _setting(2)
    bounder = SplitBounder(base, root, steps=10, search_dtype=torch.float32)
    states = random_splits(bounder, 12, 2, torch.Generator().manual_seed(5))
    bounds = bounder.bound_domains(states)
    assert bounds.rows.dtype == torch.float64
    assert bool((bounds.rows <= _sampled_rows(model, prop, bounds.states) + 1e-9).all())

    def evaluated(dtype: torch.dtype) -> torch.Tensor:
        """The rows of the handed-on slopes and multipliers on the domains' bounds, in ``dtype``,
        never below the whole box's (which hold on every domain)."""
        pre = [(lo.to(dtype), up.to(dtype)) for lo, up in bounds.pre_activation]
        relaxations, pools, signs = bounder._relaxed(pre, bounds.states)
        alpha = {p: a.to(dtype) for p, a in zip(relaxations, bounds.alpha)}
        beta = {p: b.to(dtype) for p, b in zip(relaxations, bounds.beta)}
        linear = bounder._evaluate(dtype, relaxations, pools, signs, alpha, beta, torch.arange(len(base.owner)),
                                   len(bounds.rows))
        mid, rad = bounder._box(dtype)
        rows = (concretize(linear.coefficients, mid, rad)[0] + linear.offset_lower).double() - base.bound
        return torch.maximum(rows, root.rows)

    assert torch.equal(bounds.rows, evaluated(torch.float64))
    assert not torch.equal(bounds.rows, evaluated(torch.float32))  # what a float32 report would be
