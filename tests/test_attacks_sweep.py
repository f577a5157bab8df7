"""The robust-accuracy sweep: exact at eps 0, non-increasing, consistent with its per-point
breaking radii, never weaker than attacking every point at every eps, and early stop never
weaker than checking the final iterate only."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from attacks_support import one_thread, synthetic_batch, trained_model  # noqa: F401  (autouse fixture)
from shallowcert.attacks import MIM, PGD, parse_eps_grid, robust_accuracy
from shallowcert.errors import UserError

GRID = [0.0, 0.02, 0.04, 0.06, 0.08, 0.1, 0.14]


def per_eps_loop(model, x, y, attack, grid, *, early_stop: bool) -> list[torch.Tensor]:
    """Robust-point masks from attacking every point at every eps (no shortcut)."""
    correct = model(x).argmax(dim=1) == y
    return [correct & ~attack(model, x, y, eps=eps, early_stop=early_stop).success for eps in grid]


def test_sweep_properties() -> None:
    model = trained_model()
    x, y = synthetic_batch(96, seed=11)
    y[:5] = (model(x[:5]).argmax(dim=1) + 1) % 5  # a few clean mistakes
    sweep = robust_accuracy(model, x, y, PGD(steps=10, step_size=0.01), GRID, batch_size=40)
    clean = float((model(x).argmax(dim=1) == y).double().mean())
    assert sweep.clean_accuracy == pytest.approx(clean) and sweep.robust_accuracy[0] == pytest.approx(clean)
    assert all(b <= a for a, b in zip(sweep.robust_accuracy, sweep.robust_accuracy[1:]))
    assert sweep.robust_accuracy[-1] < sweep.robust_accuracy[1] < clean  # the curve is not flat
    for eps, value in zip(GRID, sweep.robust_accuracy):
        assert value == pytest.approx(float((sweep.breaking_eps > eps).double().mean()))
    assert bool((sweep.breaking_eps[:5] == 0).all())
    assert sweep.n == 96 and sweep.eps == GRID and sweep.seconds > 0
    assert sweep.attack.startswith("PGD(steps=10") and sweep.attack.endswith("with early stop")
    record = sweep.to_dict()
    assert len(record["breaking_eps"]) == 96
    assert all(v is None or v in GRID for v in record["breaking_eps"])
    assert (None in record["breaking_eps"]) == math.isinf(float(sweep.breaking_eps.max()))


@pytest.mark.parametrize("attack", [PGD(steps=12, step_size=0.01, random_start=False),
                                    PGD(steps=12, relative_step=0.5, random_start=False),
                                    MIM(steps=8, step_size=0.015)], ids=repr)
def test_sweep_is_never_weaker_than_the_per_eps_loop(attack) -> None:
    model = trained_model()
    x, y = synthetic_batch(80, seed=12)
    sweep = robust_accuracy(model, x, y, attack, GRID, batch_size=32)
    plain = per_eps_loop(model, x, y, attack, GRID, early_stop=False)
    for k, eps in enumerate(GRID):
        robust_in_sweep = sweep.breaking_eps > eps
        assert bool((robust_in_sweep <= plain[k]).all()), f"eps {eps}: the sweep kept a point the loop broke"
        assert sweep.robust_accuracy[k] <= float(plain[k].double().mean())


def test_early_stop_keeps_every_success_of_the_final_iterate() -> None:
    model = trained_model()
    x, y = synthetic_batch(128, seed=13)
    for attack in (PGD(steps=12, step_size=0.05, random_start=False), MIM(steps=8, relative_step=0.5)):
        for eps in (0.05, 0.08, 0.12):
            plain = attack(model, x, y, eps=eps)
            early = attack(model, x, y, eps=eps, early_stop=True)
            assert bool((plain.success <= early.success).all())
            assert torch.equal(early.success, model(early.adversarial).argmax(dim=1) != y)
            assert bool(((early.adversarial - x).abs().flatten(1).amax(1) <= eps + 1e-12).all())


def band_model() -> nn.Sequential:
    """Two classes on x in [0, 1]: z1 - z0 = 1 - 40 |x - 0.54|, so class 1 wins only on (0.515, 0.565)."""
    model = nn.Sequential(nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 2)).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0], [-1.0]]))
        model[0].bias.copy_(torch.tensor([-0.54, 0.54]))
        model[2].weight.copy_(torch.tensor([[0.0, 0.0], [-40.0, -40.0]]))
        model[2].bias.copy_(torch.tensor([0.0, 1.0]))
    return model


def test_early_stop_keeps_a_success_that_plain_pgd_steps_away_from() -> None:
    # from 0.50, steps of 0.05 jump into the band (0.55) and back out (0.50), forever
    x, y = torch.tensor([[0.50]], dtype=torch.float64), torch.tensor([0])
    attack = PGD(steps=4, step_size=0.05, random_start=False)
    plain = attack(band_model(), x, y, eps=0.1)
    early = attack(band_model(), x, y, eps=0.1, early_stop=True)
    assert not bool(plain.success[0]) and torch.allclose(plain.adversarial, x)
    assert bool(early.success[0]) and torch.allclose(early.adversarial, torch.tensor([[0.55]], dtype=torch.float64))
    assert robust_accuracy(band_model(), x, y, attack, [0.0, 0.1]).robust_accuracy == [1.0, 0.0]
    assert robust_accuracy(band_model(), x, y, attack, [0.0, 0.1], early_stop=False).robust_accuracy == [1.0, 1.0]


def test_parse_eps_grid() -> None:
    grid = parse_eps_grid("0:0.2:21")
    assert len(grid) == 21 and grid[0] == 0.0 and grid[1] == 0.01 and grid[3] == 0.03 and grid[-1] == 0.2
    assert parse_eps_grid("0, 0.05,0.1") == [0.0, 0.05, 0.1]
    assert parse_eps_grid("0.1") == [0.1]
    for bad in ("0:0.2", "0:0.2:x", "0:0.2:0", "a,b", "0.2,0.1", "-0.1,0", "", "0:nan:3"):
        with pytest.raises(UserError):
            parse_eps_grid(bad)
