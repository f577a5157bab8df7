"""User mistakes and unsupported layers give one clear error, never a silent skip."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bounds_support import random_mlp
from shallowcert.bounds import InputSet, lower_bounds, margin_spec
from shallowcert.errors import UnsupportedLayerError, UserError


def _set(n: int = 2, d: int = 4, eps: float = 0.1) -> InputSet:
    return InputSet(torch.rand(n, d, dtype=torch.float64), torch.full((n,), eps, dtype=torch.float64))


def test_unsupported_layer_is_refused_by_index_and_type() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True), nn.Flatten(),
                          nn.Linear(2 * 3 * 3, 3))
    x = InputSet(torch.rand(1, 1, 8, 8), torch.tensor([0.1]))
    with pytest.raises(UnsupportedLayerError, match=r"layer 2 \(MaxPool2d\)"):
        lower_bounds(model, x)


@pytest.mark.parametrize("layer, pattern", [
    (nn.Dropout(0.5).train(), r"Dropout\).*training"),
    (nn.BatchNorm1d(4).train(), r"BatchNorm1d\).*eval"),
    (nn.Tanh(), r"Tanh"),
])
def test_random_or_nonlinear_layers_are_refused(layer: nn.Module, pattern: str) -> None:
    model = nn.Sequential(nn.Linear(4, 4), layer, nn.Linear(4, 3)).double()
    with pytest.raises(UnsupportedLayerError, match=pattern):
        lower_bounds(model, _set())


def test_dilated_convolution_is_refused() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3, dilation=2), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    with pytest.raises(UnsupportedLayerError, match="dilation"):
        lower_bounds(model, InputSet(torch.rand(1, 1, 8, 8), torch.tensor([0.1])))


def test_eval_mode_dropout_is_accepted() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4, 3)).double().eval()
    assert lower_bounds(model, _set()).shape == (2, 3)


@pytest.mark.parametrize("eps", [-0.1, float("nan"), float("inf")])
def test_bad_epsilon(eps: float) -> None:
    with pytest.raises(UserError, match="epsilon"):
        _set(eps=eps)


def test_nan_weights() -> None:
    model = random_mlp([4, 5, 3], seed=0)
    with torch.no_grad():
        model[0].weight[0, 0] = float("nan")
    with pytest.raises(UserError, match="NaN"):
        lower_bounds(model, _set())


def test_nan_input() -> None:
    with pytest.raises(UserError, match="NaN"):
        InputSet(torch.full((1, 3), float("nan")), torch.tensor([0.1]))


def test_spec_shape_and_method_are_checked() -> None:
    model = random_mlp([4, 5, 3], seed=0)
    with pytest.raises(UserError, match="spec must have shape"):
        lower_bounds(model, _set(), torch.zeros(2, 2, 4, dtype=torch.float64))
    with pytest.raises(UserError, match="unknown bounds method"):
        lower_bounds(model, _set(), method="deeppoly")
    with pytest.raises(UserError, match="labels"):
        margin_spec(torch.tensor([0, 3]), 3)


def test_eps_ball_outside_domain_is_an_empty_set() -> None:
    model = random_mlp([4, 5, 3], seed=0)
    outside = InputSet(torch.full((1, 4), 2.0, dtype=torch.float64), torch.tensor([0.1], dtype=torch.float64))
    with pytest.raises(UserError, match="empty input set"):
        lower_bounds(model, outside)
