"""SVHN cropped digits in MATLAB format (``train_32x32.mat``, ``test_32x32.mat``,
``extra_32x32.mat``): ``X`` is ``32 x 32 x 3 x N`` uint8 and ``y`` is ``N x 1`` with
labels 1..10, where 10 stands for the digit 0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shallowcert.errors import UserError


def read_svhn_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(images N x 3 x 32 x 32 uint8, labels N int64 in 0..9)``."""
    try:
        import scipy.io  # a third of a second to import; only SVHN needs it

        mat = scipy.io.loadmat(str(path))
    except (OSError, ValueError, TypeError) as exc:
        raise UserError(f"{path}: not a readable MATLAB file ({exc})") from None
    if "X" not in mat or "y" not in mat:
        raise UserError(f"{path}: expected variables 'X' and 'y'")
    x, y = mat["X"], np.asarray(mat["y"]).reshape(-1)
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        raise UserError(f"{path}: 'X' must be 32 x 32 x 3 x N, got {x.shape}")
    if x.dtype != np.uint8:
        raise UserError(f"{path}: 'X' must be uint8, got {x.dtype}")
    if len(y) != x.shape[3]:
        raise UserError(f"{path}: {x.shape[3]} images but {len(y)} labels")
    if y.size and (int(y.min()) < 1 or int(y.max()) > 10):
        raise UserError(f"{path}: labels must be 1..10 (10 = digit 0), found {int(y.min())}..{int(y.max())}")
    images = np.ascontiguousarray(x.transpose(3, 2, 0, 1))
    return images, (y.astype(np.int64) % 10)


def middle_digit(images: np.ndarray, width: int = 17) -> np.ndarray:
    """The thesis' "middle digit" variant: the central ``width`` columns (32 x 17)."""
    start = (images.shape[-1] - width) // 2
    return np.ascontiguousarray(images[..., start:start + width])
