"""CIFAR-10 / CIFAR-100 "python version" batches.

Each batch is a Python pickle of a dict with ``b"data"`` (N x 3072 uint8, channel-major
32 x 32 planes) and ``b"labels"`` (CIFAR-10) or ``b"fine_labels"`` (CIFAR-100). The
files are read with a restricted unpickler that only admits the few numpy
constructors such a batch needs, so a tampered file cannot run code.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from shallowcert.errors import UserError

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def read_cifar_batch(path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(images N x 3 x 32 x 32 uint8, labels N int64)`` of one batch file."""
    try:
        with open(path, "rb") as f:
            batch = _BatchUnpickler(io.BytesIO(f.read()), encoding="bytes").load()
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc})") from None
    except Exception as exc:  # unpickling raises many types on damaged data
        raise UserError(f"{path}: not a CIFAR python batch ({type(exc).__name__}: {exc})") from None
    if not isinstance(batch, dict) or b"data" not in batch or label_key not in batch:
        raise UserError(f"{path}: expected a dict with b'data' and {label_key!r}")
    data = np.asarray(batch[b"data"])
    labels = np.asarray(batch[label_key], dtype=np.int64).reshape(-1)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise UserError(f"{path}: b'data' must be N x 3072 uint8, got {data.shape} {data.dtype}")
    if len(labels) != len(data):
        raise UserError(f"{path}: {len(data)} images but {len(labels)} labels")
    return data.reshape(-1, 3, 32, 32).copy(), labels
