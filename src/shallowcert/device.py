"""Where computation runs: ``auto`` (CUDA when available, else the CPU), ``cpu``, ``cuda[:N]``.

The conventions every compute path follows:

* **Data** stays on the CPU (uint8 images in :class:`shallowcert.data.Split`); each batch is
  moved once to the device, as uint8 (a quarter of the bytes of float32) and converted
  there (:func:`batch_to`; ``non_blocking`` when the batch is in pinned memory).
* **Models** are moved once, in place (``nn.Module.to``), by the function that pairs a model
  with data: its keyword-only ``device`` (default: the model's own device,
  :func:`model_device`). Loading a checkpoint reads it on the CPU, then moves it.
* **Low-level functions** (the bound engine, one attack call, the robust loss, the radius
  shortcut) compute on the device of their input tensors, create every tensor there and
  return their results there; the model must be on that device.
* **High-level functions** that take a dataset split or CPU tensors (fit, distillation,
  teacher logits, certification at a radius, certified radii, attack sweeps, pruning
  search) return per-point results on the CPU: they are what gets written to files.
* **Checkpoints** are always written from CPU tensors.

Random numbers: the batch order of training is drawn on the CPU, so it is the same on every
device; random starts of attacks come from a generator on the data's device, so a GPU run
draws different (equally seeded) starts from a CPU run.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from shallowcert.errors import UserError

DEVICE_CHOICES = "auto|cpu|cuda[:N]"


def resolve_device(text: str | torch.device = "auto") -> torch.device:
    """The ``torch.device`` that ``text`` names; a clear :class:`UserError` when it cannot be used.

    ``auto`` is ``cuda`` when ``torch.cuda.is_available()``, else ``cpu``.
    """
    if isinstance(text, torch.device):
        text = str(text)
    name = text.strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    match = re.fullmatch(r"cuda(?::(\d+))?", name)
    if match is None:
        raise UserError(f"unknown device '{text}' (choose {DEVICE_CHOICES})")
    if not torch.cuda.is_available():
        raise UserError(f"device '{text}' asked for, but CUDA is not available on this machine (use --device cpu)")
    index = int(match.group(1) or 0)
    if index >= torch.cuda.device_count():
        raise UserError(f"device '{text}' asked for, but this machine has {torch.cuda.device_count()} CUDA device(s)")
    return torch.device("cuda", index)


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter or buffer (the CPU for a model without any)."""
    for tensor in model.parameters():
        return tensor.device
    for buffer in model.buffers():
        return buffer.device
    return torch.device("cpu")


def batch_to(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``tensor`` on ``device`` (itself when already there); asynchronous from pinned memory."""
    return tensor.to(device, non_blocking=tensor.device.type == "cpu" and tensor.is_pinned())
