"""Splits: validation carved from train deterministically, transfer sets, batches."""

from __future__ import annotations

from pathlib import Path

import torch

from conftest import make_idx_dataset
from shallowcert.data import load_dataset
from shallowcert.data.transfer import augmented_copies, shift_images


def test_validation_is_carved_from_train_deterministically(tmp_path: Path) -> None:
    d = make_idx_dataset(tmp_path / "d", n_train=50, n_test=10, compress=True)
    a = load_dataset("mnist", data_dir=d, seed=3, val_size=10)
    b = load_dataset("mnist", data_dir=d, seed=3, val_size=10)
    c = load_dataset("mnist", data_dir=d, seed=4, val_size=10)
    assert torch.equal(a.val.images, b.val.images) and torch.equal(a.train.labels, b.train.labels)
    assert not torch.equal(a.val.images, c.val.images)
    assert len(a.train) == 40 and len(a.val) == 10 and len(a.test) == 10
    # train and validation partition the original train set; test is untouched
    rows = {bytes(x.numpy().tobytes()) for x in torch.cat([a.train.images, a.val.images])}
    assert len(rows) == 50


def test_batches_are_floats_in_unit_range(tmp_path: Path) -> None:
    ds = load_dataset("mnist", data_dir=make_idx_dataset(tmp_path / "d"), val_size=10)
    xs, ys = zip(*ds.train.batches(16, shuffle=True, generator=torch.Generator().manual_seed(0)))
    x = torch.cat(xs)
    assert x.dtype == torch.float32 and float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert sorted(torch.cat(ys).tolist()) == sorted(ds.train.labels.tolist())
    assert torch.allclose(torch.sort(x.flatten()).values, torch.sort(ds.train.floats().flatten()).values)


def test_shift_moves_pixels_and_pads_with_zero() -> None:
    image = torch.zeros(1, 1, 5, 5, dtype=torch.uint8)
    image[0, 0, 2, 2] = 9
    shifted = shift_images(image, torch.tensor([1]), torch.tensor([-2]))
    assert int(shifted[0, 0, 0, 3]) == 9 and int(shifted.sum()) == 9


def test_transfer_copies_are_deterministic_and_sized() -> None:
    images = torch.randint(0, 256, (7, 1, 6, 6), dtype=torch.uint8)
    a = augmented_copies(images, copies=2, seed=1)
    b = augmented_copies(images, copies=2, seed=1)
    assert a.shape == (21, 1, 6, 6) and torch.equal(a, b)
    assert torch.equal(a[:7], images)
    assert not torch.equal(a[7:14], images)


def test_real_fashion_mnist_is_read() -> None:
    ds = load_dataset("fashion-mnist")
    assert ds.input_shape == (1, 28, 28) and ds.classes == 10
    assert len(ds.train) + len(ds.val) == 60000 and len(ds.test) == 10000
    assert torch.bincount(ds.test.labels).tolist() == [1000] * 10
