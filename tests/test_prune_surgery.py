"""Filter removal: exact parameter counts, unchanged function for dead filters, save/reload."""

import pytest
import torch
from torch import nn

from shallowcert.errors import UserError
from shallowcert.models import build, count_macs, count_params, describe, load_model, save_model
from shallowcert.prune import make_plan, remove_filters

SHAPE = (1, 28, 28)


def model(spec, seed=0):
    torch.manual_seed(seed)
    return build(spec, SHAPE, 10).eval()


def kill_filters(net, plan, *, bias=0.0):
    """Zero the weights of the planned filters and set their bias (0 keeps them dead after ReLU)."""
    with torch.no_grad():
        for index, removed in plan.items():
            net[index].weight[list(removed)] = 0.0
            net[index].bias[list(removed)] = bias


def test_parameter_and_mac_counts_match_the_hand_computation():
    net = model("scnn2:4-6")
    # conv0 4*1*25+4, conv3 6*4*25+6, fc 6*7*7*10+10
    assert count_params(net) == 104 + 606 + 2950
    pruned = remove_filters(net, {0: (1,), 3: (0, 5)}, input_shape=SHAPE)
    # conv0 3*1*25+3, conv3 4*3*25+4, fc 4*7*7*10+10
    assert count_params(pruned) == 78 + 304 + 1970
    assert count_macs(pruned, SHAPE) == 3 * 28 * 28 * 25 + 4 * 14 * 14 * 3 * 25 + 4 * 49 * 10
    assert describe(pruned) == "layers:c3k5p2,relu,mp2,c4k5p2,relu,mp2,flat,fc"
    assert count_params(net) == 3660  # the original is untouched


@pytest.mark.parametrize("spec", ["scnn2:6-8", "wong-small", "cert-teacher:6-6-6-6-20",
                                  "layers:norm,c6k3p1,bn,relu,ap2,c5k3,relu,mp2,flat,fc12,relu,fc"])
def test_removing_dead_filters_keeps_the_function(spec):
    net = model(spec)
    for layer in net:  # non-trivial normalisation and batch-norm statistics
        if isinstance(layer, nn.BatchNorm2d):
            layer.running_mean.uniform_(-1, 1)
            layer.running_var.uniform_(0.5, 2)
            layer.weight.data.uniform_(0.5, 2)
    plan = {i: tuple(range(0, layer.out_channels, 2)) for i, layer in enumerate(net) if isinstance(layer, nn.Conv2d)}
    kill_filters(net, plan)
    for index, dead in plan.items():  # a dead filter feeding batch norm needs a zero-shift channel to stay dead
        after = net[index + 1]
        if isinstance(after, nn.BatchNorm2d):
            after.running_mean[list(dead)] = 0.0
            after.bias.data[list(dead)] = 0.0
    pruned = remove_filters(net, plan, input_shape=SHAPE)
    x = torch.rand(8, *SHAPE)
    assert count_params(pruned) < count_params(net)
    assert torch.allclose(pruned(x), net(x), atol=1e-5)


def test_live_filters_are_removed_like_zeroing_their_channels():
    net = model("scnn2:6-8")
    plan = {0: (1, 4), 3: (0, 2, 7)}
    masks = {i: torch.ones(net[i].out_channels) for i in plan}
    for i, removed in plan.items():
        masks[i][list(removed)] = 0.0
    pruned = remove_filters(net, plan, input_shape=SHAPE)
    hooks = [net[i + 1].register_forward_hook(lambda m, a, out, k=masks[i]: out * k.view(1, -1, 1, 1)) for i in plan]
    x = torch.rand(8, *SHAPE)
    masked = net(x)
    for h in hooks:
        h.remove()
    assert torch.allclose(pruned(x), masked, atol=1e-5)
    assert not torch.allclose(net(x), masked, atol=1e-3)  # the removed filters did matter


def test_nonzero_bias_on_a_zero_filter_changes_the_function():
    net = model("scnn2:6-8")
    plan = {3: (1,)}
    kill_filters(net, plan, bias=1.0)  # a constant positive feature map reaches the classifier
    x = torch.rand(4, *SHAPE)
    assert not torch.allclose(remove_filters(net, plan, input_shape=SHAPE)(x), net(x), atol=1e-4)


def test_pruned_model_saves_and_reloads_with_identical_outputs(tmp_path):
    net = model("scnn2:6-8")
    pruned = remove_filters(net, make_plan(net, "ratio", 0.5), input_shape=SHAPE)
    save_model(tmp_path / "m", pruned, spec=describe(pruned), input_shape=SHAPE, classes=10)
    loaded = load_model(tmp_path / "m")
    x = torch.rand(5, *SHAPE)
    assert describe(loaded.model) == "layers:c3k5p2,relu,mp2,c4k5p2,relu,mp2,flat,fc"
    assert torch.equal(loaded.model(x), pruned(x))


@pytest.mark.parametrize("plan, message", [
    ({1: (0,)}, "not a Conv2d"),
    ({9: (0,)}, "does not exist"),
    ({0: (0, 0)}, "distinct"),
    ({0: (7,)}, "distinct"),
    ({0: tuple(range(6))}, "all 6 filters"),
])
def test_bad_plans_are_user_errors(plan, message):
    with pytest.raises(UserError, match=message):
        remove_filters(model("scnn2:6-8"), plan, input_shape=SHAPE)
