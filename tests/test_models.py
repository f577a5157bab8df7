"""Specs build the documented architectures; counts match hand computation; checkpoints round-trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from shallowcert.errors import UserError
from shallowcert.models import (Normalize, build, count_macs, count_params, describe, layer_costs, load_model,
                                save_model)

# (spec, input shape, classes, parameters counted by hand, output shapes of the last conv stage)
HAND_COUNTS = [
    # flat 784 -> 100 -> 10: 784*100+100 + 100*10+10
    ("snn:100", (1, 28, 28), 10, 784 * 100 + 100 + 100 * 10 + 10),
    # conv 1->8 5x5: 8*25+8; pool 28->14; fc 8*14*14 -> 10
    ("scnn1:8", (1, 28, 28), 10, 8 * 25 + 8 + 8 * 14 * 14 * 10 + 10),
    # conv 3->16 5x5, pool 32->16, conv 16->32 5x5, pool 16->8, fc 32*8*8 -> 10
    ("scnn2:16-32", (3, 32, 32), 10, (16 * 3 * 25 + 16) + (32 * 16 * 25 + 32) + 32 * 64 * 10 + 10),
    # 28 -> 14 -> 7 (k4 s2 p1); fc 32*7*7 -> 100 -> 10
    ("wong-small", (1, 28, 28), 10, (16 * 16 + 16) + (32 * 16 * 16 + 32) + (32 * 49 * 100 + 100) + (100 * 10 + 10)),
    # 32x17: convs keep size, pool -> 16x8, pool -> 8x4
    ("teacher-svhn", (3, 32, 17), 10,
     (32 * 27 + 32) + (32 * 32 * 9 + 32) + (64 * 32 * 9 + 64) + (64 * 8 * 4 * 256 + 256) + (256 * 10 + 10)),
    ("teacher-cifar10", (3, 32, 32), 10,
     (32 * 27 + 32) + (32 * 32 * 9 + 32) + (64 * 32 * 9 + 64) + (64 * 64 * 9 + 64) + (64 * 8 * 8 * 512 + 512)
     + (512 * 10 + 10)),
    # 28 -> 14 -> 7 -> 3 -> 1 (k4 s2 p1)
    ("cert-teacher", (1, 28, 28), 10,
     (16 * 16 + 16) + (32 * 16 * 16 + 32) + (32 * 32 * 16 + 32) + (64 * 32 * 16 + 64) + (64 * 100 + 100)
     + (100 * 10 + 10)),
    ("snn:5", (3, 4, 4), 100, 48 * 5 + 5 + 5 * 100 + 100),
]


@pytest.mark.parametrize("spec, shape, classes, params", HAND_COUNTS)
def test_parameter_counts_match_hand_computation(spec, shape, classes, params) -> None:
    model = build(spec, shape, classes)
    assert count_params(model) == params
    assert model(torch.zeros(2, *shape)).shape == (2, classes)


def test_wong_small_is_the_published_architecture() -> None:
    model = build("wong-small", (1, 28, 28), 10)
    kinds = [type(m) for m in model]
    assert kinds == [nn.Conv2d, nn.ReLU, nn.Conv2d, nn.ReLU, nn.Flatten, nn.Linear, nn.ReLU, nn.Linear]
    assert (model[0].stride, model[0].padding, model[0].kernel_size) == ((2, 2), (1, 1), (4, 4))
    # convex_adversarial's published models are nn.Sequential with these state_dict keys
    assert sorted(model.state_dict()) == sorted(
        f"{i}.{p}" for i in (0, 2, 5, 7) for p in ("weight", "bias"))


def test_macs_match_hand_computation() -> None:
    model = build("wong-small", (1, 28, 28), 10)
    costs = layer_costs(model, (1, 28, 28))
    assert costs[0].output_shape == (16, 14, 14) and costs[0].macs == 16 * 14 * 14 * 1 * 16
    assert costs[2].macs == 32 * 7 * 7 * 16 * 16
    assert costs[5].macs == 1568 * 100 and costs[7].macs == 100 * 10
    assert count_macs(model, (1, 28, 28)) == sum(c.macs for c in costs)
    assert all(c.macs == 0 for c in costs if c.layer in ("ReLU", "Flatten"))


def test_generic_grammar_and_describe_round_trip() -> None:
    spec = "layers:norm,c8k3s2p1,bn,relu,ap2,mp2s1,flat,drop0.5,fc20,relu,fc"
    model = build(spec, (3, 16, 16), 7)
    assert describe(model) == spec
    assert isinstance(model[0], Normalize) and isinstance(model[2], nn.BatchNorm2d)
    for named in ("scnn2:4-6", "wong-small", "cert-teacher:2-3-4-5-6"):
        generic = describe(build(named, (1, 28, 28), 10))
        assert describe(build(generic, (1, 28, 28), 10)) == generic


@pytest.mark.parametrize("spec, message", [
    ("resnet:50", "unknown model spec"),
    ("snn", "needs 1 width"),
    ("scnn2:16", "needs 2 positive integer width"),
    ("snn:0", "positive integer"),
    ("layers:flat,fc10,relu,c8k3,fc", "needs an image input"),
    ("layers:c8k3,fc", "'flat' must come before"),
    ("layers:c8k3,relu,flat,fc20", "the last layer has 20 outputs"),
    ("layers:c8k40,flat,fc", "shrinks"),
    ("layers:conv8,flat,fc", "cannot read layer token 'conv8'"),
    ("layers:flat,relu", "must end with 'fc'"),
])
def test_bad_specs_are_refused_clearly(spec: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        build(spec, (1, 28, 28), 10)


def test_save_load_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build("layers:norm,c4k3p1,bn,relu,mp2,flat,fc", (1, 8, 8), 3)
    with torch.no_grad():
        model[0].mean.fill_(0.3)
        model[0].std.fill_(0.2)
        model[2].running_mean.uniform_()
    model.eval()
    save_model(tmp_path / "m", model, spec="custom", input_shape=(1, 8, 8), classes=3, metrics={"val_accuracy": 0.5})
    loaded = load_model(tmp_path / "m")
    x = torch.rand(5, 1, 8, 8)
    assert torch.equal(loaded.model(x), model(x))
    assert loaded.spec == "custom" and loaded.metrics["val_accuracy"] == 0.5
    config = json.loads((tmp_path / "m" / "model.json").read_text())
    assert config["architecture"] == describe(model) and config["params"] == count_params(model)
    assert not list(tmp_path.glob(".*tmp")), "no temporary files may be left behind"


def test_pruned_widths_reload(tmp_path: Path) -> None:
    model = build("scnn2:5-7", (1, 28, 28), 10)  # widths that no named spec default has
    save_model(tmp_path / "m", model, spec="scnn2:16-32", input_shape=(1, 28, 28), classes=10)
    loaded = load_model(tmp_path / "m")
    assert loaded.model[0].out_channels == 5 and loaded.model[3].out_channels == 7


def test_damaged_checkpoints_are_refused(tmp_path: Path) -> None:
    model = build("snn:4", (1, 4, 4), 2)
    save_model(tmp_path / "m", model, spec="snn:4", input_shape=(1, 4, 4), classes=2)
    (tmp_path / "m" / "model.safetensors").write_bytes(b"\x00" * 30)
    with pytest.raises(UserError, match="cannot read weights"):
        load_model(tmp_path / "m")
    with pytest.raises(UserError, match="not a model directory"):
        load_model(tmp_path / "empty")
    save_model(tmp_path / "m2", model, spec="snn:4", input_shape=(1, 4, 4), classes=2)
    (tmp_path / "m2" / "model.json").write_text((tmp_path / "m2" / "model.json").read_text().replace("fc4", "fc5"))
    with pytest.raises(UserError, match="has shape"):
        load_model(tmp_path / "m2")


def test_nan_weights_are_refused(tmp_path: Path) -> None:
    model = build("snn:4", (1, 4, 4), 2)
    with torch.no_grad():
        model[1].weight[0, 0] = float("nan")
    save_model(tmp_path / "m", model, spec="snn:4", input_shape=(1, 4, 4), classes=2)
    with pytest.raises(UserError, match="NaN or inf"):
        load_model(tmp_path / "m")
