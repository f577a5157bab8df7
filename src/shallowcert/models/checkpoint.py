"""Model directories: ``model.safetensors`` + ``model.json`` + ``metrics.json``.

``model.json`` holds the spec the model was built from, its ``architecture`` in the
generic layer grammar (actual widths, so pruned models reload), the input shape and
the class count. Loading builds the architecture and fills it from safetensors:
nothing is unpickled, so loading a checkpoint never runs code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from shallowcert import atomic
from shallowcert.errors import UserError
from shallowcert.models.counting import count_macs, count_params
from shallowcert.models.spec import build, describe

FORMAT = "shallowcert-model/1"
WEIGHTS = "model.safetensors"
CONFIG = "model.json"
METRICS = "metrics.json"


@dataclass
class ModelDir:
    """A model loaded from (or about to be saved to) a model directory."""

    model: nn.Sequential
    spec: str
    input_shape: tuple[int, ...]
    classes: int
    metrics: dict[str, Any] = field(default_factory=dict)


def save_model(path: str | Path, model: nn.Sequential, *, spec: str, input_shape: Sequence[int],
               classes: int, metrics: dict[str, Any] | None = None) -> Path:
    """Write a model directory atomically (the whole directory appears at once).

    The weights are written from CPU copies, whatever device ``model`` is on.
    """
    architecture = describe(model)
    config = {
        "format": FORMAT,
        "spec": spec,
        "architecture": architecture,
        "input_shape": [int(d) for d in input_shape],
        "classes": int(classes),
        "params": count_params(model),
        "macs": count_macs(model, input_shape),
    }
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    with atomic.atomic_directory(path) as tmp:
        save_file(state, str(tmp / WEIGHTS))
        atomic.write_json(tmp / CONFIG, config)
        atomic.write_json(tmp / METRICS, metrics or {})
    return Path(path)


def load_model(path: str | Path, *, device: torch.device | None = None) -> ModelDir:
    """Load a model directory written by :func:`save_model` (eval mode, float32).

    The weights are read on the CPU, then the model is moved to ``device`` (default: stays
    on the CPU).
    """
    root = Path(path)
    config_path, weights_path = root / CONFIG, root / WEIGHTS
    for p in (config_path, weights_path):
        if not p.is_file():
            raise UserError(f"{root} is not a model directory: {p.name} is missing")
    try:
        config = json.loads(config_path.read_text())
        architecture, input_shape, classes = config["architecture"], config["input_shape"], config["classes"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise UserError(f"{config_path}: not a valid model config ({exc})") from None
    model = build(architecture, input_shape, classes)
    try:
        state = load_file(str(weights_path))
    except Exception as exc:  # safetensors raises several types for a damaged file
        raise UserError(f"{weights_path}: cannot read weights ({exc})") from None
    load_state(model, state, source=str(weights_path))
    metrics_path = root / METRICS
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    model.eval()
    if device is not None:
        model.to(device)
    return ModelDir(model, config.get("spec", architecture), tuple(input_shape), int(classes), metrics)


def load_state(model: nn.Module, state: dict[str, torch.Tensor], *, source: str) -> None:
    """Load ``state`` into ``model`` strictly, with one clear error on any mismatch."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise UserError(f"{source}: keys do not match the architecture "
                        f"(missing: {missing or 'none'}; unexpected: {unexpected or 'none'})")
    for key, value in state.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise UserError(f"{source}: '{key}' has shape {tuple(value.shape)}, "
                            f"the architecture needs {tuple(expected[key].shape)}")
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise UserError(f"{source}: '{key}' contains NaN or inf")
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()})


def update_metrics(path: str | Path, **values: Any) -> None:
    """Merge ``values`` into a model directory's ``metrics.json`` (atomically)."""
    metrics_path = Path(path) / METRICS
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    metrics.update(values)
    atomic.write_json(metrics_path, metrics)
