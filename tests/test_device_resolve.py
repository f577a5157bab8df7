"""resolve_device: auto/cpu/cuda[:N] -> torch.device, one UserError line for what cannot run here."""

from __future__ import annotations

import pytest
import torch

from shallowcert.device import model_device, resolve_device
from shallowcert.errors import UserError


@pytest.fixture
def two_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend CUDA is there with two devices (nothing is allocated on them)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


def test_cpu_is_always_available(no_gpu: None) -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


def test_auto_picks_cuda_only_when_available(no_gpu: None, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device() == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("auto") == torch.device("cuda")


def test_cuda_names_an_existing_device(two_gpus: None) -> None:
    assert resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(UserError, match="2 CUDA device"):
        resolve_device("cuda:2")


@pytest.mark.parametrize("name", ["cuda", "cuda:0", "CUDA:1"])
def test_cuda_without_cuda_is_a_user_error(no_gpu: None, name: str) -> None:
    with pytest.raises(UserError, match="CUDA is not available") as error:
        resolve_device(name)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("name", ["nonsense", "gpu", "cuda:", "cuda:x", "cuda:-1", "cpu:0", "mps", ""])
def test_unknown_names_are_user_errors(two_gpus: None, name: str) -> None:
    with pytest.raises(UserError, match="unknown device"):
        resolve_device(name)


def test_model_device_follows_parameters_then_buffers() -> None:
    assert model_device(torch.nn.Linear(2, 2)) == torch.device("cpu")
    assert model_device(torch.nn.Linear(2, 2, device="meta")) == torch.device("meta")
    assert model_device(torch.nn.BatchNorm1d(2, affine=False, device="meta")) == torch.device("meta")
    assert model_device(torch.nn.ReLU()) == torch.device("cpu")
