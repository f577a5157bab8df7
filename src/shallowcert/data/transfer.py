"""Unlabelled transfer sets built by augmentation.

Fashion-MNIST has no large unlabelled companion set like SVHN's ``extra``. As a
stand-in for the thesis' transfer sets we use the training images plus
``copies`` deterministic augmented copies: each copy shifts every image by a
seeded random offset of up to ``max_shift`` pixels in each direction (zero
padding) and mirrors it horizontally with probability 1/2.
"""

from __future__ import annotations

import torch


def shift_images(images: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
    """Shift each image (N x C x H x W) by integer offsets ``(dx[i], dy[i])``, filling with 0."""
    n, _, h, w = images.shape
    pad = max(int(dx.abs().max()), int(dy.abs().max()), 0) if n else 0
    padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))
    rows = (torch.arange(h)[None, :] + pad - dy[:, None])  # N x H
    cols = (torch.arange(w)[None, :] + pad - dx[:, None])  # N x W
    batch = torch.arange(n)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()


def augmented_copies(images: torch.Tensor, *, copies: int, seed: int, max_shift: int = 2,
                     flip: bool = True) -> torch.Tensor:
    """``images`` followed by ``copies`` shifted/mirrored copies (uint8, deterministic)."""
    parts = [images]
    for k in range(copies):
        g = torch.Generator().manual_seed(seed * 1_000_003 + k)
        n = images.shape[0]
        dx = torch.randint(-max_shift, max_shift + 1, (n,), generator=g)
        dy = torch.randint(-max_shift, max_shift + 1, (n,), generator=g)
        copy = shift_images(images, dx, dy)
        if flip:
            mirror = torch.rand(n, generator=g) < 0.5
            copy[mirror] = copy[mirror].flip(-1)
        parts.append(copy)
    return torch.cat(parts)
