"""User mistakes raise one clear UserError."""

from __future__ import annotations

import pytest
import torch

from attacks_support import one_thread, synthetic_batch, trained_model  # noqa: F401  (autouse fixture)
from shallowcert.attacks import BIM, L2PGD, MIM, PGD, robust_accuracy
from shallowcert.errors import UserError


@pytest.mark.parametrize("make", [
    lambda: PGD(steps=0), lambda: PGD(steps=2.5), lambda: PGD(step_size=0), lambda: PGD(step_size=float("nan")),
    lambda: PGD(relative_step=-0.5), lambda: PGD(restarts=0), lambda: BIM(steps=-1), lambda: MIM(decay=-1.0),
    lambda: L2PGD(step_size=-1.0),
])
def test_bad_options(make) -> None:
    with pytest.raises(UserError):
        make()


def bad_calls():
    x, y = synthetic_batch(6, seed=2)
    return {
        "negative eps": (x, y, -0.1),
        "negative eps in a tensor": (x, y, torch.tensor([0.1, 0.1, -0.1, 0.1, 0.1, 0.1])),
        "eps of the wrong length": (x, y, torch.full((5,), 0.1)),
        "infinite eps": (x, y, float("inf")),
        "inputs above 1": (x * 2.0, y, 0.1),
        "inputs below 0": (x - 0.5, y, 0.1),
        "NaN inputs": (x.masked_fill(x > 0.9, float("nan")), y, 0.1),
        "labels of the wrong length": (x, y[:5], 0.1),
        "labels as a matrix": (x, y.view(6, 1), 0.1),
        "float labels": (x, y.double(), 0.1),
        "labels out of range": (x, y + 5, 0.1),
        "integer inputs": ((x * 255).long(), y, 0.1),
    }


@pytest.mark.parametrize("case", sorted(bad_calls()))
def test_bad_calls(case: str) -> None:
    x, y, eps = bad_calls()[case]
    with pytest.raises(UserError):
        PGD(steps=2)(trained_model(), x, y, eps=eps)


def test_bad_sweeps() -> None:
    model = trained_model()
    x, y = synthetic_batch(6, seed=2)
    for grid in ([0.1, 0.05], [], [-0.1, 0.0]):
        with pytest.raises(UserError):
            robust_accuracy(model, x, y, PGD(steps=2), grid)
    with pytest.raises(UserError):
        robust_accuracy(model, x, y, PGD(steps=2), [0.1], batch_size=0)
    with pytest.raises(UserError):
        robust_accuracy(model, x[:0], y[:0], PGD(steps=2), [0.1])
