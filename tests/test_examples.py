"""The README's Python quick start, ``examples/own_model.py``: it runs, and refuses a layer the
bound engine cannot bound with a message naming it."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch
from torch import nn

from shallowcert.attacks import PGD, robust_accuracy
from shallowcert.data import Split
from shallowcert.errors import UnsupportedLayerError

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "own_model.py"


def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("own_model", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_the_example_certifies_and_draws_the_area(tmp_path: Path) -> None:
    figure = tmp_path / "area.png"
    result = subprocess.run([sys.executable, str(EXAMPLE), "--out", str(figure), "--points", "20"],
                            capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "certified accuracy at eps=0.05" in result.stdout
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_quick_start_is_sound_against_pgd(tmp_path: Path) -> None:
    """No attack breaks more points than the quick start's certified accuracy leaves: PGD
    accuracy at eps >= certified accuracy at eps, on a small net and 60 random images."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    images = torch.randint(0, 256, (60, 1, 2, 2), dtype=torch.uint8)
    with torch.no_grad():
        labels = model(images.float() / 255).argmax(1)
    eps = 0.02
    result = example().certify_own_model(model, Split(images, labels), eps, tmp_path / "area.png")
    attacked = robust_accuracy(model, images.float() / 255, labels, PGD(steps=50, seed=0), [eps])
    assert 0.0 < result["certified_accuracy"] <= attacked.robust_accuracy[0]
    assert result["mean_radius"] > 0 and (tmp_path / "area.png").is_file()


def test_an_unsupported_layer_is_refused_by_name(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    images = torch.zeros((5, 1, 2, 2), dtype=torch.uint8)
    with pytest.raises(UnsupportedLayerError, match=r"layer 2 \(Tanh\) is not supported by the bounds engine"):
        example().certify_own_model(model, Split(images, torch.zeros(5, dtype=torch.int64)), 0.05,
                                    tmp_path / "area.png")
    assert not (tmp_path / "area.png").exists()
