"""IDX files (MNIST, Fashion-MNIST), optionally gzip-compressed.

Layout (big-endian): two zero bytes, a type byte (0x08 = uint8), the number of
dimensions, one uint32 per dimension, then the data. Images are ``N x H x W``
(magic 0x00000803), labels ``N`` (magic 0x00000801).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from shallowcert.errors import UserError

_UINT8 = 0x08


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file of unsigned bytes into an array of its declared shape."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise UserError(f"{path}: bad magic number (not an IDX file)")
    if raw[2] != _UINT8:
        raise UserError(f"{path}: IDX data type 0x{raw[2]:02x} is not unsigned bytes (0x08)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise UserError(f"{path}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise UserError(f"{path}: truncated or oversized: header declares {shape} "
                        f"({expected} bytes) but the file holds {len(raw) - header}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def read_idx_pair(images_path: Path, labels_path: Path, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Read matching image (N x H x W) and label (N) IDX files; images gain a channel axis."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3:
        raise UserError(f"{images_path}: expected N x H x W images, got shape {images.shape}")
    if labels.ndim != 1:
        raise UserError(f"{labels_path}: expected a vector of labels, got shape {labels.shape}")
    if len(images) != len(labels):
        raise UserError(f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels")
    if labels.size and int(labels.max()) >= classes:
        raise UserError(f"{labels_path}: label {int(labels.max())} out of range 0..{classes - 1}")
    return images[:, None, :, :].copy(), labels.astype(np.int64)
