"""Teacher logits on a transfer set, computed once and cached on disk.

The cache file is ``<cache_dir>/<key>.safetensors`` (tensor ``logits``, float32 ``N x K``),
written atomically. ``key`` is the first 24 hex digits of the SHA-256 of

* the teacher's weights: every state-dict entry's name, dtype, shape and bytes (the same
  weights give the same key whichever file they were loaded from);
* the transfer set's identity: dataset name, which set (``train``/``extra``), its size
  and the SHA-256 of its image bytes (which covers the split seed and any limit).

A file whose stored identity or shape does not match is recomputed and replaced.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file
from torch import nn

from shallowcert.atomic import atomic_path
from shallowcert.model_state import evaluation_mode
from shallowcert.data import to_float
from shallowcert.device import batch_to, model_device
from shallowcert.distill.transfer import TransferSet

log = logging.getLogger(__name__)


def weights_fingerprint(model: nn.Module) -> str:
    """SHA-256 over the state dict (names, dtypes, shapes and raw bytes, in key order)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        value = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{value.dtype}|{tuple(value.shape)}|".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def cache_identity(teacher: nn.Module, transfer: TransferSet) -> dict[str, str]:
    """What the cached logits depend on (stored in the file's metadata)."""
    return {"teacher_sha256": weights_fingerprint(teacher), "dataset": transfer.dataset,
            "transfer": transfer.which, "size": str(len(transfer)), "images_sha256": transfer.fingerprint()}


def cache_key(identity: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:24]


@torch.no_grad()
def compute_logits(teacher: nn.Module, images: torch.Tensor, *, batch_size: int = 1024) -> torch.Tensor:
    """Teacher logits (float32, N x K, on the CPU) for uint8 images (on the CPU), computed on the
    teacher's device in eval mode (each module's mode restored)."""
    device = model_device(teacher)
    with evaluation_mode(teacher):
        parts = [teacher(to_float(batch_to(images[i:i + batch_size], device)))
                 for i in range(0, len(images), batch_size)]
    return torch.cat(parts).to(dtype=torch.float32, device="cpu")


def _read_cached(path: Path, identity: dict[str, str]) -> torch.Tensor | None:
    try:
        with safe_open(str(path), framework="pt") as handle:
            if handle.metadata() != identity:
                return None
        return load_file(str(path))["logits"]
    except (SafetensorError, OSError, KeyError):
        return None


def teacher_logits(teacher: nn.Module, transfer: TransferSet, *, cache_dir: str | Path | None,
                   batch_size: int = 1024) -> torch.Tensor:
    """The teacher's logits on every transfer image (on the CPU), from ``cache_dir`` when cached there.

    They are computed on the teacher's device; with ``cache_dir=None`` they are not stored.
    """
    if cache_dir is None:
        return compute_logits(teacher, transfer.images, batch_size=batch_size)
    identity = cache_identity(teacher, transfer)
    path = Path(cache_dir) / f"{cache_key(identity)}.safetensors"
    if path.is_file():
        cached = _read_cached(path, identity)
        if cached is not None and cached.shape[0] == len(transfer):
            log.info("teacher logits: reusing %s", path)
            return cached
        log.warning("teacher logits: %s does not match this teacher/transfer set, recomputing", path)
    logits = compute_logits(teacher, transfer.images, batch_size=batch_size)
    with atomic_path(path) as tmp:
        save_file({"logits": logits.contiguous()}, str(tmp), metadata=identity)
    log.info("teacher logits: cached %d x %d logits in %s", *logits.shape, path)
    return logits
