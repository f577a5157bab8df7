"""Cross-check against Foolbox 3: same model, inputs, eps, steps and step size, no random
start. Foolbox's LinfPGD does ``x += s * step * sign(grad of summed CE)``, then
``x = x0 + clip(x - x0, -eps, eps)``, then clips to the bounds — the order ours uses — and
judges success on the final iterate, as our PGD without early stop does."""

from __future__ import annotations

import pytest
import torch

from attacks_support import one_thread, synthetic_batch, trained_model  # noqa: F401  (autouse fixture)
from shallowcert.attacks import PGD

fb = pytest.importorskip("foolbox")

EPSILONS = [0.02, 0.05, 0.08, 0.12]


def foolbox_pgd(model, x, criterion, *, steps: int, step_size: float):
    fmodel = fb.PyTorchModel(model, bounds=(0, 1))
    attack = fb.attacks.LinfPGD(steps=steps, abs_stepsize=step_size, random_start=False)
    _, clipped, success = attack(fmodel, x, criterion, epsilons=EPSILONS)
    return clipped, success


@pytest.mark.parametrize("targeted", [False, True])
def test_pgd_finds_the_same_adversarial_examples_as_foolbox(targeted: bool) -> None:
    model = trained_model()
    x, y = synthetic_batch(64, seed=7)
    clean = model(x).argmax(dim=1)
    labels = (clean + 1 + y % 4) % 5 if targeted else y
    criterion = fb.criteria.TargetedMisclassification(labels) if targeted else labels
    theirs_x, theirs_success = foolbox_pgd(model, x, criterion, steps=10, step_size=0.01)
    # Foolbox also attacks points whose clean input already meets the goal; ours returns them as they are.
    attacked = clean != labels if targeted else clean == labels
    assert int(attacked.sum()) > 40
    pgd = PGD(steps=10, step_size=0.01, random_start=False)
    found_somewhere = False
    for k, eps in enumerate(EPSILONS):
        ours = pgd(model, x, labels, eps=eps, targeted=targeted)
        assert torch.equal(ours.success[attacked], theirs_success[k][attacked])
        assert torch.allclose(ours.adversarial[attacked], theirs_x[k][attacked], rtol=0, atol=1e-12)
        assert bool(ours.success[~attacked].all())
        found_somewhere |= bool(0 < int(ours.success[attacked].sum()) < int(attacked.sum()))
    assert found_somewhere  # the comparison covers both outcomes
