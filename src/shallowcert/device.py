"""Where computation runs: ``auto`` (CUDA when available, else the CPU), ``cpu``, ``cuda[:N]``.

Data stays on the CPU until a batch is used; a batch is moved once to the device, and
checkpoints are always written from CPU tensors.
"""

from __future__ import annotations

import re

import torch

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
