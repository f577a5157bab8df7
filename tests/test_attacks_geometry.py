"""Every attack stays in the ball and the domain, FGSM is one PGD step, targeted attacks
move toward the target, eval mode is used and restored, random starts are seeded."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attacks_support import one_thread, synthetic_batch, trained_model  # noqa: F401  (autouse fixture)
from shallowcert.attacks import BIM, FGSM, L2PGD, MIM, PGD


def tiny_batch(n: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    return synthetic_batch(n, seed=1)


LINF_ATTACKS = [FGSM(), PGD(steps=15, step_size=0.02), PGD(steps=5, relative_step=0.5, restarts=3),
                BIM(steps=8, step_size=0.02), MIM(steps=8, step_size=0.02, decay=0.9)]


@pytest.mark.parametrize("attack", LINF_ATTACKS, ids=repr)
@pytest.mark.parametrize("early_stop", [False, True])
def test_linf_attacks_stay_in_ball_and_domain(attack, early_stop: bool) -> None:
    model, (x, y) = trained_model(), tiny_batch()
    eps = torch.linspace(0.0, 0.3, x.shape[0], dtype=torch.float64)  # one radius per point, 0 included
    result = attack(model, x, y, eps=eps, early_stop=early_stop)
    distance = (result.adversarial - x).flatten(1).abs().amax(dim=1)
    assert bool((distance <= eps + 1e-12).all())
    assert torch.allclose(result.perturbation, distance)
    assert float(result.adversarial.min()) >= 0.0 and float(result.adversarial.max()) <= 1.0
    assert torch.equal(result.adversarial[0], x[0])  # eps = 0: the ball is the point
    predicted = model(result.adversarial).argmax(dim=1)
    assert torch.equal(result.success, predicted != y)  # success is the goal at the returned example
    assert bool(result.success[eps > 0.2].float().mean() > 0.5)  # the attack does something


@pytest.mark.parametrize("random_start", [False, True])
def test_l2_pgd_stays_in_ball_and_domain(random_start: bool) -> None:
    model, (x, y) = trained_model(), tiny_batch()
    eps = torch.linspace(0.0, 2.0, x.shape[0], dtype=torch.float64)
    result = L2PGD(steps=10, relative_step=0.25, random_start=random_start)(model, x, y, eps=eps)
    distance = (result.adversarial - x).flatten(1).norm(dim=1)
    assert bool((distance <= eps + 1e-9).all())
    assert torch.allclose(result.perturbation, distance)
    assert float(result.adversarial.min()) >= 0.0 and float(result.adversarial.max()) <= 1.0
    assert bool(result.success[eps > 1.5].all())


def test_fgsm_is_one_pgd_step_and_the_formula() -> None:
    model, (x, y) = trained_model(), tiny_batch()
    eps = 0.07
    fgsm = FGSM()(model, x, y, eps=eps)
    pgd = PGD(steps=1, step_size=eps, random_start=False)(model, x, y, eps=eps)
    xr = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(xr), y, reduction="sum"), xr)
    by_hand = (x + eps * grad.sign()).clamp(0, 1)
    correct = model(x).argmax(dim=1) == y  # misclassified points are returned unattacked
    expected = torch.where(correct.view(-1, 1, 1, 1), by_hand, x)
    assert torch.equal(fgsm.adversarial, expected)
    assert torch.equal(pgd.adversarial, expected)


def test_targeted_attack_moves_toward_target() -> None:
    model, (x, _) = trained_model(), tiny_batch(64)
    clean = model(x).argmax(dim=1)
    target = (clean + 1) % 5
    result = PGD(steps=20, step_size=0.01, random_start=False)(model, x, target, eps=0.1, targeted=True)
    assert torch.equal(result.success, model(result.adversarial).argmax(dim=1) == target)
    before = F.cross_entropy(model(x), target, reduction="none")
    after = F.cross_entropy(model(result.adversarial), target, reduction="none")
    assert bool((after < before).all())
    assert float(result.success.double().mean()) > 0.5
    untargeted = PGD(steps=20, step_size=0.01, random_start=False)(model, x, target, eps=0.1)
    assert float((model(untargeted.adversarial).argmax(dim=1) == target).double().mean()) < 0.5


def test_model_is_attacked_in_eval_mode_and_modes_are_restored() -> None:
    model = trained_model(spec="layers:c4k3s2p1,bn,relu,flat,drop0.5,fc16,relu,fc")
    x, y = tiny_batch()
    model.train()
    model[1].eval()  # a mixed state must come back exactly
    before = [m.training for m in model.modules()]
    seen: list[bool] = []
    model[0].register_forward_hook(lambda module, inputs, output: seen.append(any(m.training for m in model.modules())))
    running_mean = model[1].running_mean.clone()
    first = PGD(steps=5, random_start=False)(model, x, y, eps=0.05).adversarial
    second = PGD(steps=5, random_start=False)(model, x, y, eps=0.05).adversarial
    assert seen and not any(seen)
    assert [m.training for m in model.modules()] == before
    assert torch.equal(model[1].running_mean, running_mean)
    assert torch.equal(first, second)  # dropout was off


def test_random_start_is_seeded() -> None:
    model, (x, y) = trained_model(), tiny_batch()

    def run(seed: int, **kw) -> torch.Tensor:
        return PGD(steps=1, step_size=1e-6, seed=seed)(model, x, y, eps=0.1, **kw).adversarial

    assert torch.equal(run(3), run(3))
    assert not torch.equal(run(3), run(4))
    assert torch.equal(run(0, generator=torch.Generator().manual_seed(9)), run(9))


def test_restarts_never_lose_a_success() -> None:
    model, (x, y) = trained_model(), tiny_batch(64)
    one = PGD(steps=3, step_size=0.01, restarts=1, seed=5)(model, x, y, eps=0.05)
    many = PGD(steps=3, step_size=0.01, restarts=4, seed=5)(model, x, y, eps=0.05)
    assert bool((many.success | ~one.success).all())  # restart 1 is the same draw
    assert torch.equal(many.adversarial[one.success], one.adversarial[one.success])
