"""The robust loss equals CE(-J, y) on fixed bounds, trains, and the warm-up schedule's values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from shallowcert.bounds import InputSet, lower_bounds, margin_spec
from shallowcert.data.split import Split
from shallowcert.errors import UserError
from shallowcert.robust import EpsilonSchedule, negated_margin_bounds, robust_fit, robust_loss
from shallowcert.training import FitConfig


def test_negated_bounds_put_zero_at_the_label() -> None:
    bounds = torch.tensor([[1.0, -2.0], [0.5, 3.0]])  # rows j != y in increasing j
    logits = negated_margin_bounds(bounds, torch.tensor([0, 2]))
    assert logits.tolist() == [[0.0, -1.0, 2.0], [-0.5, -3.0, 0.0]]


def test_loss_matches_the_formula() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(9, 12), nn.ReLU(), nn.Linear(12, 3)).eval()
    x = torch.rand(8, 1, 3, 3)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    result = robust_loss(model, x, y, 0.05)
    bounds = lower_bounds(model, InputSet(x, torch.full((8,), 0.05), domain=None), margin_spec(y, 3)).detach()
    expected = 0.0
    for i in range(8):
        label = int(y[i])
        j_full = [0.0 if j == label else float(bounds[i, j - int(j > label)]) for j in range(3)]
        expected += math.log(sum(math.exp(-v) for v in j_full)) / 8  # CE(-J, y) = log sum exp(-J_j) (J_y = 0)
    assert float(result.loss.detach()) == pytest.approx(expected, rel=1e-5)
    assert result.robust_error == pytest.approx(float((bounds <= 0).any(1).float().mean()))


def test_loss_is_differentiable_and_training_lowers_it() -> None:
    g = torch.Generator().manual_seed(1)
    images = (torch.rand(64, 1, 4, 4, generator=g) * 255).to(torch.uint8)
    labels = (images.float().flatten(1)[:, :8].mean(1) > images.float().flatten(1)[:, 8:].mean(1)).long()
    split = Split(images, labels)
    torch.manual_seed(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 2))
    x = split.floats()
    before = float(robust_loss(model, x, labels, 0.02).loss.detach())
    schedule = EpsilonSchedule(0.02, warmup_epochs=3, start=0.001)
    result = robust_fit(model, split, schedule=schedule, config=FitConfig(epochs=8, lr=0.02, batch_size=32),
                        validate=lambda m: -float(robust_loss(m, x, labels, 0.02).loss.detach()))
    assert float(robust_loss(model, x, labels, 0.02).loss.detach()) < before
    assert result.best_epoch >= 1 and len(result.history) >= 1


def test_schedule_is_linear_then_constant() -> None:
    schedule = EpsilonSchedule(0.1, warmup_epochs=5, start=0.01)
    assert [schedule(t) for t in range(7)] == pytest.approx(list(np.linspace(0.01, 0.1, 5)) + [0.1, 0.1])
    assert EpsilonSchedule(0.3, warmup_epochs=1)(0) == 0.3
    with pytest.raises(UserError):
        EpsilonSchedule(0.1, start=0.2)
    with pytest.raises(UserError):
        EpsilonSchedule(float("nan"))


def test_dual_loss_matches_convex_adversarial() -> None:
    convex_adversarial = pytest.importorskip("convex_adversarial")
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(1, 4, 4, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 4 * 4, 12), nn.ReLU(), nn.Linear(12, 3)).eval()  # wong-small's conv
    x = torch.rand(6, 1, 8, 8)
    y = torch.tensor([0, 1, 2, 2, 1, 0])
    ours = robust_loss(model, x, y, 0.02, method="dual-exact")
    loss, error = convex_adversarial.robust_loss(model, 0.02, x, y)
    assert float(ours.loss.detach()) == pytest.approx(float(loss.detach()), rel=1e-5)
    assert ours.robust_error == pytest.approx(error)


def test_certified_accuracy_validator_matches_certify_points() -> None:
    from shallowcert.certify import certify_points
    from shallowcert.data import Split
    from shallowcert.robust import certified_accuracy_on

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    split = Split(torch.randint(0, 256, (40, 1, 4, 4), dtype=torch.uint8), torch.randint(0, 3, (40,)))
    x, y = split.floats(), split.labels
    clean = float((model(x).argmax(1) == y).double().mean())
    assert certified_accuracy_on(split, 0.0)(model) == pytest.approx(clean)
    expected = certify_points(model, x, y, 0.02, method="crown", domain=(0.0, 1.0)).certified_accuracy
    assert certified_accuracy_on(split, 0.02, method="crown", domain=(0.0, 1.0))(model) == expected
    assert certified_accuracy_on(split, 0.5, method="ibp")(model) <= clean
