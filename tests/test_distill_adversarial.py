"""The inner PGD of adversarial distillation stays in the ball and increases the matching loss."""

import torch

from shallowcert.distill import DistillMethod, logits_mse
from shallowcert.distill.adversarial import matching_pgd
from shallowcert.models import build


def setup():
    torch.manual_seed(0)
    model = build("layers:c4k3,relu,drop0.5,flat,fc", (1, 8, 8), 3)
    x = torch.rand(16, 1, 8, 8)
    target = torch.randn(16, 3)
    return model, x, target


def test_perturbation_is_in_the_ball_and_the_domain_and_raises_the_loss():
    model, x, target = setup()
    model.eval()
    eps = 0.05
    adv = matching_pgd(model, x, target, eps=eps, steps=10, step_size=0.02)
    assert float((adv - x).abs().max()) <= eps + 1e-7
    assert float(adv.min()) >= 0.0 and float(adv.max()) <= 1.0
    with torch.no_grad():
        assert float(logits_mse(model(adv), target)) > float(logits_mse(model(x), target))


def test_search_leaves_parameter_gradients_and_training_mode_alone():
    model, x, target = setup()
    model.train()
    matching_pgd(model, x, target, eps=0.1, steps=3, step_size=0.05)
    assert model.training and model[2].training
    assert all(p.grad is None for p in model.parameters())


def test_adversarial_loss_trains_on_the_perturbed_input():
    model, x, target = setup()
    loss_fn = DistillMethod("adversarial", eps=0.1, attack_steps=5).loss_fn()
    model.eval()  # deterministic forward passes, so that the two losses compare
    torch.manual_seed(1)
    loss = loss_fn(model, x, target, 0)
    with torch.no_grad():
        clean = logits_mse(model(x), target)
    assert float(loss.detach()) > float(clean)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
