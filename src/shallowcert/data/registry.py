"""The dataset registry: names -> where the files are, how to read them, how to split.

Every dataset gives train / validation / test splits (validation carved from train with a
seeded permutation, never from test) and, where it has one, an unlabelled transfer set.

==============  =============================================  ==========================
name            files (in its directory)                       transfer set
==============  =============================================  ==========================
fashion-mnist   ``{train,t10k}-{images-idx3,labels-idx1}-      train split + augmented
                ubyte[.gz]``                                   copies (see ``transfer``)
mnist           same IDX names as Fashion-MNIST                train split + augmented
svhn            ``train_32x32.mat``, ``test_32x32.mat``,       ``extra`` split
                ``extra_32x32.mat`` (transfer only)
svhn-middle     as svhn, cropped to the central 32 x 17        ``extra``, cropped
cifar10         ``cifar-10-batches-py/data_batch_{1..5}``,     CIFAR-100 train+test +
                ``test_batch``                                 CIFAR-10 train split
cifar100        ``cifar-100-python/{train,test}``              none
==============  =============================================  ==========================

Directories: ``--data-dir`` if given, else ``$SHALLOWCERT_DATA/<name>`` (default
``~/shallowcert-data/<name>``); Fashion-MNIST falls back to Debian's
``/usr/share/datasets/fashion-mnist``. CIFAR directories may be the extracted archive's
folder itself or its parent.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from shallowcert.data.formats.cifar import read_cifar_batch
from shallowcert.data.formats.idx import read_idx_pair
from shallowcert.data.formats.svhn import middle_digit, read_svhn_mat
from shallowcert.data.split import Split, carve_validation
from shallowcert.data.transfer import augmented_copies
from shallowcert.errors import UserError

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
Arrays = tuple[np.ndarray, np.ndarray]


@dataclass
class Dataset:
    """Labelled splits plus a lazily built unlabelled transfer set."""

    name: str
    classes: int
    train: Split
    val: Split
    test: Split
    source: Path
    transfer_builder: Callable[[], torch.Tensor] | None = field(default=None, repr=False)
    _transfer: torch.Tensor | None = field(default=None, repr=False)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        c, h, w = self.train.images.shape[1:]
        return int(c), int(h), int(w)

    def transfer(self) -> torch.Tensor | None:
        """The unlabelled transfer images (uint8), built on first use; None if there is none."""
        if self._transfer is None and self.transfer_builder is not None:
            self._transfer = self.transfer_builder()
        return self._transfer


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    description: str
    classes: int
    required: tuple[str, ...]          # files that must exist (IDX names may also be .gz)
    read: Callable[[Path], tuple[Arrays, Arrays]]  # dir -> (train, test)
    transfer: Callable[[Path, Split, int], torch.Tensor] | None


def _find(directory: Path, name: str) -> Path:
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise UserError(f"missing dataset file {directory / name} (or {name}.gz)")


def _read_idx_dataset(directory: Path) -> tuple[Arrays, Arrays]:
    train = read_idx_pair(_find(directory, "train-images-idx3-ubyte"),
                          _find(directory, "train-labels-idx1-ubyte"), 10)
    test = read_idx_pair(_find(directory, "t10k-images-idx3-ubyte"),
                         _find(directory, "t10k-labels-idx1-ubyte"), 10)
    return train, test


def _augmented_transfer(directory: Path, train: Split, seed: int) -> torch.Tensor:
    return augmented_copies(train.images, copies=2, seed=seed)


def _read_svhn(directory: Path, crop: bool) -> tuple[Arrays, Arrays]:
    (xtr, ytr), (xte, yte) = (read_svhn_mat(_find(directory, f)) for f in ("train_32x32.mat", "test_32x32.mat"))
    if crop:
        xtr, xte = middle_digit(xtr), middle_digit(xte)
    return (xtr, ytr), (xte, yte)


def _svhn_extra(directory: Path, crop: bool) -> torch.Tensor:
    images, _ = read_svhn_mat(_find(directory, "extra_32x32.mat"))
    return torch.from_numpy(middle_digit(images) if crop else images)


def _cifar_dir(directory: Path, folder: str) -> Path:
    return directory / folder if (directory / folder).is_dir() else directory


def _read_cifar10(directory: Path) -> tuple[Arrays, Arrays]:
    root = _cifar_dir(directory, "cifar-10-batches-py")
    parts = [read_cifar_batch(_find(root, f"data_batch_{i}"), b"labels") for i in range(1, 6)]
    train = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    test = read_cifar_batch(_find(root, "test_batch"), b"labels")
    for path, (_, labels) in ((root / "data_batch_*", train), (root / "test_batch", test)):
        _check_labels(path, labels, 10)
    return train, test


def _read_cifar100(directory: Path) -> tuple[Arrays, Arrays]:
    root = _cifar_dir(directory, "cifar-100-python")
    train, test = (read_cifar_batch(_find(root, f), b"fine_labels") for f in ("train", "test"))
    _check_labels(root / "train", train[1], 100)
    _check_labels(root / "test", test[1], 100)
    return train, test


def _cifar10_transfer(directory: Path, train: Split, seed: int) -> torch.Tensor:
    """CIFAR-100 train + test and the CIFAR-10 train split, as in the thesis."""
    cifar100_dir = data_dir_for("cifar100", None) if not (directory / "cifar-100-python").is_dir() else directory
    (x100_train, _), (x100_test, _) = _read_cifar100(cifar100_dir)
    return torch.cat([torch.from_numpy(x100_train), torch.from_numpy(x100_test), train.images])


def _check_labels(path: Path, labels: np.ndarray, classes: int) -> None:
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= classes):
        raise UserError(f"{path}: labels must be in 0..{classes - 1}, found {int(labels.min())}..{int(labels.max())}")


DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo("fashion-mnist", "Fashion-MNIST, 28x28 grey, 10 classes", 10,
                    ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                     "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
                    _read_idx_dataset, _augmented_transfer),
        DatasetInfo("mnist", "MNIST digits, 28x28 grey, 10 classes", 10,
                    ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                     "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
                    _read_idx_dataset, _augmented_transfer),
        DatasetInfo("svhn", "SVHN cropped digits, 32x32 RGB, 10 classes", 10,
                    ("train_32x32.mat", "test_32x32.mat"),
                    lambda d: _read_svhn(d, crop=False), lambda d, _t, _s: _svhn_extra(d, crop=False)),
        DatasetInfo("svhn-middle", "SVHN, central 32x17 'middle digit' crop", 10,
                    ("train_32x32.mat", "test_32x32.mat"),
                    lambda d: _read_svhn(d, crop=True), lambda d, _t, _s: _svhn_extra(d, crop=True)),
        DatasetInfo("cifar10", "CIFAR-10, 32x32 RGB, 10 classes", 10,
                    ("cifar-10-batches-py/data_batch_1", "cifar-10-batches-py/test_batch"),
                    _read_cifar10, _cifar10_transfer),
        DatasetInfo("cifar100", "CIFAR-100 (fine labels), 32x32 RGB, 100 classes", 100,
                    ("cifar-100-python/train", "cifar-100-python/test"),
                    _read_cifar100, None),
    )
}


def data_root() -> Path:
    return Path(os.environ.get("SHALLOWCERT_DATA", Path.home() / "shallowcert-data"))


def data_dir_for(name: str, data_dir: str | os.PathLike[str] | None) -> Path:
    """Where ``name``'s files are looked for."""
    if data_dir is not None:
        return Path(data_dir)
    own = data_root() / name
    if name == "fashion-mnist" and not own.is_dir():
        return DEBIAN_FASHION_MNIST
    return own


def dataset_info(name: str) -> DatasetInfo:
    info = DATASETS.get(name)
    if info is None:
        raise UserError(f"unknown dataset '{name}' (known: {', '.join(DATASETS)})")
    return info


def files_found(name: str, data_dir: str | os.PathLike[str] | None = None) -> bool:
    """Whether the files ``name`` needs seem present (names only; reading checks contents)."""
    directory = data_dir_for(name, data_dir)
    info = dataset_info(name)

    def present(rel: str) -> bool:
        p = directory / rel
        alt = directory / Path(rel).name
        return any(c.is_file() for c in (p, p.with_name(p.name + ".gz"), alt))

    return all(present(rel) for rel in info.required)


def load_dataset(name: str, *, data_dir: str | os.PathLike[str] | None = None, seed: int = 0,
                 val_size: int | None = None) -> Dataset:
    """Load ``name`` from its files; validation = ``val_size`` seeded points of train (10%)."""
    info = dataset_info(name)
    directory = data_dir_for(name, data_dir)
    if not directory.is_dir():
        raise UserError(f"dataset '{name}': directory {directory} does not exist "
                        f"(pass --data-dir or set SHALLOWCERT_DATA)")
    (xtr, ytr), (xte, yte) = info.read(directory)
    full_train = Split.from_numpy(xtr, ytr)
    test = Split.from_numpy(xte, yte)
    if full_train.images.shape[1:] != test.images.shape[1:]:
        raise UserError(f"dataset '{name}': train images {tuple(full_train.images.shape[1:])} "
                        f"and test images {tuple(test.images.shape[1:])} differ in shape")
    size = val_size if val_size is not None else max(1, len(full_train) // 10)
    if not 0 < size < len(full_train):
        raise UserError(f"validation size {size} must be between 1 and {len(full_train) - 1}")
    train, val = carve_validation(full_train, size, seed)
    builder = None
    if info.transfer is not None:
        transfer = info.transfer
        builder = lambda: transfer(directory, train, seed)  # noqa: E731
    return Dataset(name, info.classes, train, val, test, directory, builder)
