"""File-format readers on generated files in the exact formats, good and bad."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from conftest import make_cifar10, make_cifar100, make_idx_dataset, make_svhn_mat, write_cifar_batch, write_idx
from shallowcert.data import load_dataset
from shallowcert.data.formats.cifar import read_cifar_batch
from shallowcert.data.formats.idx import read_idx, read_idx_pair
from shallowcert.data.formats.svhn import read_svhn_mat
from shallowcert.errors import UserError


@pytest.mark.parametrize("compress", [False, True])
def test_idx_round_trip(tmp_path: Path, compress: bool) -> None:
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = write_idx(tmp_path / "a-idx3-ubyte", array, compress=compress)
    assert np.array_equal(read_idx(path), array)


def test_idx_bad_magic(tmp_path: Path) -> None:
    path = tmp_path / "bad"
    path.write_bytes(b"\x01\x02\x08\x01" + b"\x00\x00\x00\x01" + b"\x05")
    with pytest.raises(UserError, match="bad magic number"):
        read_idx(path)


def test_idx_not_bytes_type(tmp_path: Path) -> None:
    path = tmp_path / "float"
    path.write_bytes(b"\x00\x00\x0d\x01" + b"\x00\x00\x00\x01" + b"\x00\x00\x00\x00")
    with pytest.raises(UserError, match="not unsigned bytes"):
        read_idx(path)


def test_idx_truncated(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "t", np.zeros((5, 28, 28), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(UserError, match=r"truncated.*\(5, 28, 28\)"):
        read_idx(path)


def test_idx_label_out_of_range_and_count_mismatch(tmp_path: Path) -> None:
    images = write_idx(tmp_path / "i", np.zeros((3, 28, 28), dtype=np.uint8))
    labels = write_idx(tmp_path / "l", np.array([0, 10, 2], dtype=np.uint8))
    with pytest.raises(UserError, match="label 10 out of range"):
        read_idx_pair(images, labels, 10)
    short = write_idx(tmp_path / "s", np.array([0, 1], dtype=np.uint8))
    with pytest.raises(UserError, match="3 images but .* 2 labels"):
        read_idx_pair(images, short, 10)


def test_idx_images_with_wrong_rank(tmp_path: Path) -> None:
    images = write_idx(tmp_path / "i", np.zeros((3, 28), dtype=np.uint8))
    labels = write_idx(tmp_path / "l", np.zeros(3, dtype=np.uint8))
    with pytest.raises(UserError, match="N x H x W"):
        read_idx_pair(images, labels, 10)


def test_svhn_labels_and_layout(tmp_path: Path) -> None:
    path = tmp_path / "train_32x32.mat"
    y = make_svhn_mat(path, 7)
    images, labels = read_svhn_mat(path)
    raw = scipy.io.loadmat(str(path))["X"]
    assert images.shape == (7, 3, 32, 32)
    assert np.array_equal(images[3, 1], raw[:, :, 1, 3])  # channel-first, same pixels
    assert np.array_equal(labels, y.reshape(-1) % 10)
    assert labels.min() >= 0 and labels.max() <= 9


@pytest.mark.parametrize("bad, message", [
    ({"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.array([[1], [11]])}, "labels must be 1..10"),
    ({"X": np.zeros((28, 28, 3, 2), np.uint8), "y": np.array([[1], [2]])}, "32 x 32 x 3 x N"),
    ({"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.array([[1]])}, "2 images but 1 labels"),
    ({"Z": np.zeros(3)}, "expected variables 'X' and 'y'"),
])
def test_svhn_malformed(tmp_path: Path, bad: dict, message: str) -> None:
    path = tmp_path / "train_32x32.mat"
    scipy.io.savemat(str(path), bad)
    with pytest.raises(UserError, match=message):
        read_svhn_mat(path)


def test_svhn_not_a_mat_file(tmp_path: Path) -> None:
    path = tmp_path / "train_32x32.mat"
    path.write_bytes(b"garbage" * 20)
    with pytest.raises(UserError, match="train_32x32.mat"):
        read_svhn_mat(path)


def test_svhn_dataset_and_middle_digit(tmp_path: Path) -> None:
    d = tmp_path / "svhn"
    d.mkdir()
    make_svhn_mat(d / "train_32x32.mat", 30, seed=1)
    make_svhn_mat(d / "test_32x32.mat", 10, seed=2)
    make_svhn_mat(d / "extra_32x32.mat", 12, seed=3)
    full = load_dataset("svhn", data_dir=d, val_size=5)
    middle = load_dataset("svhn-middle", data_dir=d, val_size=5)
    assert full.input_shape == (3, 32, 32) and middle.input_shape == (3, 32, 17)
    assert torch.equal(middle.test.images, full.test.images[..., 7:24])
    assert full.transfer().shape == (12, 3, 32, 32)
    assert middle.transfer().shape == (12, 3, 32, 17)


def test_cifar10_and_its_transfer_set(tmp_path: Path) -> None:
    make_cifar10(tmp_path, n=8)
    make_cifar100(tmp_path, n=6)
    ds = load_dataset("cifar10", data_dir=tmp_path, val_size=4)
    assert ds.input_shape == (3, 32, 32) and ds.classes == 10
    assert len(ds.train) + len(ds.val) == 40 and len(ds.test) == 8
    # CIFAR-100 train + test + CIFAR-10 train split, as in the thesis
    assert ds.transfer().shape[0] == 6 + 6 + len(ds.train)


def test_cifar100_fine_labels(tmp_path: Path) -> None:
    make_cifar100(tmp_path, n=10)
    ds = load_dataset("cifar100", data_dir=tmp_path, val_size=2)
    assert ds.classes == 100 and ds.transfer() is None
    assert int(ds.test.labels.max()) < 100


def test_cifar_pickle_cannot_run_code(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}))
    with pytest.raises(UserError, match="refusing to load builtins.print"):
        read_cifar_batch(path, b"labels")


def test_cifar_wrong_shape_and_labels(tmp_path: Path) -> None:
    path = tmp_path / "b"
    path.write_bytes(pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(UserError, match="N x 3072"):
        read_cifar_batch(path, b"labels")
    root = tmp_path / "c10" / "cifar-10-batches-py"
    root.mkdir(parents=True)
    for i in range(1, 6):
        write_cifar_batch(root / f"data_batch_{i}", 4, b"labels", 10)
    write_cifar_batch(root / "test_batch", 4, b"labels", 50)  # labels up to 49: out of range
    with pytest.raises(UserError, match="labels must be in 0..9"):
        load_dataset("cifar10", data_dir=tmp_path / "c10", val_size=2)


def test_missing_file_is_named(tmp_path: Path) -> None:
    d = make_idx_dataset(tmp_path / "m")
    (d / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(UserError, match="t10k-labels-idx1-ubyte"):
        load_dataset("mnist", data_dir=d, val_size=5)
    with pytest.raises(UserError, match="does not exist"):
        load_dataset("mnist", data_dir=tmp_path / "nowhere")
    with pytest.raises(UserError, match="unknown dataset 'nope'"):
        load_dataset("nope")
