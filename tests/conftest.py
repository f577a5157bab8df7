"""Shared fixtures: small dataset files in the exact on-disk formats, and determinism."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

torch.set_num_threads(2)


def write_idx(path: Path, array: np.ndarray, *, compress: bool = False) -> Path:
    """Write ``array`` (uint8) in IDX format: 0, 0, 0x08, ndim, big-endian dims, data."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def make_idx_dataset(directory: Path, *, n_train: int = 60, n_test: int = 20, compress: bool = False,
                     seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(directory / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
                  compress=compress)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n, dtype=np.uint8),
                  compress=compress)
    return directory


def make_svhn_mat(path: Path, n: int, *, seed: int = 0) -> np.ndarray:
    """An SVHN-format file: X 32x32x3xN uint8, y Nx1 in 1..10; returns y."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
    y = rng.integers(1, 11, (n, 1)).astype(np.uint8)
    scipy.io.savemat(str(path), {"X": x, "y": y})
    return y


def write_cifar_batch(path: Path, n: int, label_key: bytes, classes: int, *, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
             label_key: [int(v) for v in rng.integers(0, classes, n)], b"batch_label": b"test"}
    path.write_bytes(pickle.dumps(batch, protocol=2))


def make_cifar10(directory: Path, n: int = 8) -> Path:
    root = directory / "cifar-10-batches-py"
    root.mkdir(parents=True, exist_ok=True)
    for i in range(1, 6):
        write_cifar_batch(root / f"data_batch_{i}", n, b"labels", 10, seed=i)
    write_cifar_batch(root / "test_batch", n, b"labels", 10, seed=9)
    return directory


def make_cifar100(directory: Path, n: int = 8) -> Path:
    root = directory / "cifar-100-python"
    root.mkdir(parents=True, exist_ok=True)
    write_cifar_batch(root / "train", n, b"fine_labels", 100, seed=1)
    write_cifar_batch(root / "test", n, b"fine_labels", 100, seed=2)
    return directory


@pytest.fixture
def idx_dir(tmp_path: Path) -> Path:
    return make_idx_dataset(tmp_path / "idx")
