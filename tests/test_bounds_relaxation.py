"""The ReLU relaxation lines in arithmetic equal the case-by-case definition, edge cases included."""

from __future__ import annotations

import torch

from shallowcert.bounds.relaxation import relax


def _reference(lower: torch.Tensor, upper: torch.Tensor, rule: str | torch.Tensor,
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Slopes and intercept neuron by neuron: unstable (l < 0 < u) the chord and the rule's lower
    slope; active (l >= 0, l = u = 0 included) slope 1; inactive (u <= 0 < -l) slope 0."""
    lower_slope, chord, intercept = (torch.empty(lower.shape[0], 1 if isinstance(rule, str) else rule.shape[1],
                                                 *lower.shape[1:], dtype=lower.dtype) for _ in range(3))
    for n, k, j in torch.cartesian_prod(torch.arange(lower.shape[0]), torch.arange(chord.shape[1]),
                                        torch.arange(lower.shape[1])).tolist():
        l, u = float(lower[n, j]), float(upper[n, j])
        if l < 0 < u:
            s = u / (u - l)
            a = s if rule == "dual" else (1.0 if u >= -l else 0.0) if rule == "crown" else float(rule[n, k, j])
            lower_slope[n, k, j], chord[n, k, j], intercept[n, k, j] = a, s, -s * l
        else:
            on = 1.0 if l >= 0 else 0.0
            lower_slope[n, k, j], chord[n, k, j], intercept[n, k, j] = on, on, 0.0
    return lower_slope, chord, intercept


def _bounds() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    centre, radius = torch.randn(3, 40, generator=generator), torch.rand(3, 40, generator=generator)
    lower, upper = centre - radius, centre + radius
    lower[0, :4], upper[0, :4] = 0.0, 0.0               # l = u = 0: active
    lower[0, 4:8], upper[0, 4:8] = 0.0, torch.rand(4, generator=generator)   # l = 0
    lower[0, 8:12], upper[0, 8:12] = -torch.rand(4, generator=generator), 0.0  # u = 0
    lower[1, :4], upper[1, :4] = -0.5, 0.5              # u = -l: CROWN's slope 1
    return lower.double(), upper.double()


def test_relax_equals_the_case_by_case_lines_for_every_rule() -> None:
    lower, upper = _bounds()
    slopes = torch.rand(3, 2, 40, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for rule in ("dual", "crown", slopes):
        relaxation = relax(lower, upper, lower_slope=rule)
        expected = _reference(lower, upper, rule)
        for got, want in zip((relaxation.lower_slope, relaxation.upper_slope, relaxation.upper_intercept), expected):
            assert torch.equal(got.expand_as(want), want)


def test_relax_gradients_are_finite_and_reach_only_unstable_neurons() -> None:
    lower, upper = _bounds()
    lower, upper = lower.requires_grad_(), upper.requires_grad_()
    slopes = torch.rand(3, 1, 40, dtype=torch.float64, requires_grad=True)
    relaxation = relax(lower, upper, lower_slope=slopes)
    total = (relaxation.lower_slope + 2 * relaxation.upper_slope + 3 * relaxation.upper_intercept).sum()
    grad_lower, grad_upper, grad_slopes = torch.autograd.grad(total, (lower, upper, slopes))
    unstable = (lower < 0) & (upper > 0)
    for grad in (grad_lower, grad_upper, grad_slopes[:, 0]):
        assert torch.isfinite(grad).all()
        assert (grad[~unstable] == 0).all()
    # d/du of 2 u / (u - l) - 3 u l / (u - l) on the unstable neurons
    l, u = lower.detach()[unstable], upper.detach()[unstable]
    assert torch.allclose(grad_upper[unstable], (-2 * l + 3 * l * l) / (u - l) ** 2)
    assert (grad_slopes[:, 0][unstable] == 1).all()
