"""CROWN-IBP training: the ramps of eps, kappa and beta, the mixed loss, and per-batch progress."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from shallowcert.certify.verdict import margin_lower_bounds
from shallowcert.data.split import Split
from shallowcert.errors import UserError
from shallowcert.robust import (CrownIbpSchedule, CrownIbpValues, crown_ibp_loss, negated_margin_bounds, robust_fit,
                                robust_loss)
from shallowcert.robust.train import _Progress, robust_loss_fn
from shallowcert.training import FitConfig


def test_ramps_run_together_from_the_start_epoch_then_hold() -> None:
    schedule = CrownIbpSchedule(0.2, ramp_epochs=4, start_epoch=1)
    assert schedule(0.5) == CrownIbpValues(0.0, 1.0, 1.0)
    middle = schedule(3.0)
    assert (middle.eps, middle.kappa, middle.beta) == pytest.approx((0.1, 0.5, 0.5))
    assert schedule(5.0) == schedule(9.0) == CrownIbpValues(0.2, 0.0, 0.0)
    custom = CrownIbpSchedule(0.1, ramp_epochs=2, kappa=(0.5, 0.5), beta=(1.0, 1.0))(1.0)
    assert (custom.eps, custom.kappa, custom.beta) == pytest.approx((0.05, 0.5, 1.0))
    for bad in ({"ramp_epochs": 0}, {"kappa": (1.2, 0.0)}, {"beta": (1.0,)}):
        with pytest.raises(UserError):
            CrownIbpSchedule(0.1, **bad)


def _value(t: torch.Tensor) -> float:
    return float(t.detach())


def _model_and_batch() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(9, 12), nn.ReLU(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3))
    return model, torch.rand(8, 1, 3, 3), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])


def test_mixed_loss_is_kappa_natural_plus_the_beta_mix_of_the_two_bounds() -> None:
    model, x, y = _model_and_batch()
    natural = F.cross_entropy(model(x), y)
    ibp = robust_loss(model, x, y, 0.05, method="ibp").loss
    crown_ibp = robust_loss(model, x, y, 0.05, method="crown-ibp").loss
    assert _value(crown_ibp_loss(model, x, y, CrownIbpValues(0.05, 1.0, 0.3)).loss) == pytest.approx(_value(natural))
    assert _value(crown_ibp_loss(model, x, y, CrownIbpValues(0.05, 0.0, 0.0)).loss) == pytest.approx(_value(ibp))
    assert _value(crown_ibp_loss(model, x, y, CrownIbpValues(0.05, 0.0, 1.0)).loss) == pytest.approx(_value(crown_ibp))
    assert _value(ibp) != pytest.approx(_value(crown_ibp))  # the mix below is a real test
    mixed = crown_ibp_loss(model, x, y, CrownIbpValues(0.05, 0.25, 0.5)).loss
    assert mixed.requires_grad
    radius = torch.full((8,), 0.05)
    bounds = 0.5 * margin_lower_bounds(model, x, y, radius, method="ibp", domain=None, classes=3) \
        + 0.5 * margin_lower_bounds(model, x, y, radius, method="crown-ibp", domain=None, classes=3)
    expected = 0.25 * natural + 0.75 * F.cross_entropy(negated_margin_bounds(bounds, y), y)
    assert _value(mixed) == pytest.approx(_value(expected), rel=1e-6)


def test_progress_advances_batch_by_batch_and_restarts_each_epoch() -> None:
    progress = _Progress(64)
    assert [progress.advance(0, 32), progress.advance(0, 32), progress.advance(1, 32), progress.advance(1, 32)] \
        == [0.0, 0.5, 1.0, 1.5]


def test_crown_ibp_schedule_needs_the_crown_ibp_method_and_trains() -> None:
    schedule = CrownIbpSchedule(0.02, ramp_epochs=2)
    with pytest.raises(UserError):
        robust_loss_fn(schedule, method="dual")
    g = torch.Generator().manual_seed(1)
    images = (torch.rand(64, 1, 3, 3, generator=g) * 255).to(torch.uint8)
    labels = (images.float().flatten(1)[:, :4].mean(1) > images.float().flatten(1)[:, 5:].mean(1)).long()
    model, _, _ = _model_and_batch()
    x = Split(images, labels).floats()
    before = _value(robust_loss(model, x, labels, 0.02, method="ibp").loss)
    robust_fit(model, Split(images, labels), schedule=schedule, method="crown-ibp",
               config=FitConfig(epochs=6, lr=0.02, batch_size=16),
               validate=lambda m: -_value(robust_loss(m, x, labels, 0.02, method="ibp").loss))
    assert _value(robust_loss(model, x, labels, 0.02, method="ibp").loss) < before
