"""The fit loop: determinism on the CPU, early stopping keeps the best epoch, optimizers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import make_idx_dataset
from shallowcert.data import load_dataset
from shallowcert.errors import UserError
from shallowcert.training import (FitConfig, FitData, accuracy, fit, loss_and_accuracy, per_class_accuracy,
                                  train_classifier)


@pytest.fixture
def tiny(tmp_path: Path):
    return load_dataset("mnist", data_dir=make_idx_dataset(tmp_path / "d", n_train=120, n_test=30), val_size=30)


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "rmsprop"])
def test_training_is_deterministic_for_a_seed(tiny, optimizer: str) -> None:
    config = FitConfig(epochs=2, optimizer=optimizer, lr=1e-2, batch_size=16, seed=5)
    a, _ = train_classifier("scnn1:3", tiny, config)
    b, _ = train_classifier("scnn1:3", tiny, config)
    c, _ = train_classifier("scnn1:3", tiny, FitConfig(epochs=2, optimizer=optimizer, lr=1e-2, batch_size=16, seed=6))
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert any(not torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters()))


def test_best_epoch_is_kept_and_patience_stops(tiny) -> None:
    scores = iter([0.5, 0.9, 0.4, 0.3, 0.2, 0.1])
    snapshots: list[torch.Tensor] = []

    def validate(model):
        snapshots.append(model[1].weight.detach().clone())
        return next(scores)

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    result = fit(model, tiny.train, config=FitConfig(epochs=6, lr=0.05, batch_size=32, patience=2),
                 validate=validate)
    assert result.best_epoch == 2 and result.best_score == 0.9
    assert len(result.history) == 4  # epochs 3 and 4 do not improve: stop after patience 2
    assert torch.equal(model[1].weight, snapshots[1])


def test_training_learns_on_real_fashion_mnist() -> None:
    ds = load_dataset("fashion-mnist", val_size=1000)
    small = ds.train.head(3000)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    fit(model, small, config=FitConfig(epochs=2, lr=1e-2, batch_size=64), validate=lambda m: accuracy(m, ds.val))
    acc = accuracy(model, ds.test.head(2000))
    assert acc > 0.7, acc  # chance is 0.1
    per_class = per_class_accuracy(model, ds.test.head(2000), 10)
    assert len(per_class) == 10 and all(0.0 <= a <= 1.0 for a in per_class)


@pytest.mark.parametrize("kwargs, message", [
    ({"optimizer": "lbfgs"}, "unknown optimizer"),
    ({"epochs": 0}, "epochs must be at least 1"),
    ({"lr": -1.0}, "learning rate must be positive"),
])
def test_bad_fit_config(kwargs, message) -> None:
    with pytest.raises(UserError, match=message):
        FitConfig(**kwargs)


def test_custom_targets_and_inputs_replace_the_split(tiny) -> None:
    """Distillation trains on other inputs with per-example tensor targets."""
    inputs = tiny.train.images[:40]
    targets = torch.randn(40, 10)
    seen: list[int] = []

    def loss_fn(model, x, target, epoch):
        seen.append(len(x))
        assert target.shape[1] == 10
        return ((model(x) - target) ** 2).mean()

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    fit(model, FitData(tiny.train, inputs=inputs, targets=targets), loss_fn=loss_fn,
        config=FitConfig(epochs=1, batch_size=16), validate=lambda m: 0.0)
    assert sum(seen) == 40


def test_history_has_one_learning_curve_entry_per_epoch(tiny) -> None:
    config = FitConfig(epochs=3, lr=1e-2, batch_size=16, patience=5)
    model, result = train_classifier("snn:8", tiny, config)
    assert [h["epoch"] for h in result.history] == [1, 2, 3]
    for h in result.history:
        assert set(h) == {"epoch", "loss", "val", "train_loss", "train_accuracy", "val_loss", "val_accuracy"}
        assert h["val_accuracy"] == pytest.approx(h["val"])  # the supervised score is validation accuracy
        assert 0.0 <= h["train_accuracy"] <= 1.0 and h["train_loss"] > 0
    best = result.history[result.best_epoch - 1]
    assert (best["val_loss"], best["val_accuracy"]) == pytest.approx(loss_and_accuracy(model, tiny.val))
    assert (best["train_loss"], best["train_accuracy"]) == pytest.approx(loss_and_accuracy(model, tiny.train))


def test_loss_and_accuracy_is_mean_cross_entropy(tiny) -> None:
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    split = tiny.val.head(7)
    with torch.no_grad():
        logits = model(split.floats())
    loss, acc = loss_and_accuracy(model, split, batch_size=3)
    assert loss == pytest.approx(float(-torch.log_softmax(logits, 1)[torch.arange(7), split.labels].mean()), rel=1e-5)
    assert acc == pytest.approx(float((logits.argmax(1) == split.labels).double().mean()))
