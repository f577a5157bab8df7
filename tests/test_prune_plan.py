"""L1 scores and the count / ratio / threshold rules."""

import pytest
import torch

from shallowcert.errors import UserError
from shallowcert.models import build
from shallowcert.prune import filter_l1_norms, make_plan, weakest_filters


def net_with_known_norms():
    net = build("scnn2:4-5", (1, 12, 12), 3)
    with torch.no_grad():
        for j, scale in enumerate([3.0, 1.0, 4.0, 2.0]):
            net[0].weight[j] = scale / 25  # L1 norm = scale (25 weights)
        for j, scale in enumerate([5.0, 0.5, 2.5, 1.5, 4.5]):
            net[3].weight[j] = -scale / 100  # 4 in-channels x 25 weights, negative signs count by |W|
    return net


def test_l1_norm_is_the_sum_of_absolute_kernel_weights():
    net = net_with_known_norms()
    assert torch.allclose(filter_l1_norms(net[0]), torch.tensor([3.0, 1.0, 4.0, 2.0]))
    assert torch.allclose(filter_l1_norms(net[3]), torch.tensor([5.0, 0.5, 2.5, 1.5, 4.5]))
    assert weakest_filters(net[0], 2) == (1, 3)


def test_rules_select_the_weakest_filters():
    net = net_with_known_norms()
    assert make_plan(net, "count", 1) == {0: (1,), 3: (1,)}
    assert make_plan(net, "ratio", 0.5) == {0: (1, 3), 3: (1, 3)}  # floor(0.5 * 5) = 2
    assert make_plan(net, "threshold", 2.6) == {0: (1, 3), 3: (1, 2, 3)}
    assert make_plan(net, "count", {3: 3}) == {3: (1, 2, 3)}
    assert make_plan(net, "ratio", 0.2) == {3: (1,)}  # floor(0.8) = 0 filters of layer 0


@pytest.mark.parametrize("rule, values, message", [
    ("count", 4, "would leave none"),
    ("ratio", 1.0, r"\[0, 1\)"),
    ("threshold", 10.0, "would leave none"),
    ("count", 1.5, "whole number"),
    ("count", {2: 1}, "MaxPool2d, not a Conv2d"),
    ("prune", 1, "unknown pruning rule"),
])
def test_bad_rules_are_user_errors(rule, values, message):
    with pytest.raises(UserError, match=message):
        make_plan(net_with_known_norms(), rule, values)
