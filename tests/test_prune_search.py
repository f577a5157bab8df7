"""The pruning search: within tolerance on validation, measured for real, never on test."""

import pytest
import torch

import shallowcert.prune.search as search_module
from shallowcert.data import Split
from shallowcert.models import build
from shallowcert.prune import remove_filters, search_pruning
from shallowcert.training import accuracy

SHAPE = (1, 12, 12)


@pytest.fixture()
def net_and_val():
    torch.manual_seed(0)
    net = build("scnn2:6-8", SHAPE, 4).eval()
    with torch.no_grad():  # two dead filters per layer: removable at no cost
        for index, dead in ((0, [2, 5]), (3, [0, 6])):
            net[index].weight[dead] = 0.0
            net[index].bias[dead] = 0.0
    images = torch.randint(0, 256, (300, *SHAPE), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        net[-1].bias.sub_(net(images.float() / 255).mean(dim=0))  # centred logits: varied predictions
        labels = net(images.float() / 255).argmax(dim=1)
    labels[:60] = (labels[:60] + 1) % 4  # baseline accuracy 0.8, so a drop can be seen both ways
    return net, Split(images, labels)


def test_zero_tolerance_removes_at_least_the_dead_filters_and_keeps_accuracy(net_and_val):
    net, val = net_and_val
    result = search_pruning(net, val, input_shape=SHAPE, max_drop=0.0)
    assert set(result.plan[0]) >= {2, 5} and set(result.plan[3]) >= {0, 6}
    assert result.val_accuracy_before == pytest.approx(0.8)
    measured = accuracy(remove_filters(net, result.plan, input_shape=SHAPE), val)
    assert measured == result.val_accuracy_after >= result.val_accuracy_before
    assert 0 < result.evaluations <= 3 + 3  # bisection: ceil(log2 6) + ceil(log2 8)


def test_larger_tolerance_prunes_more_and_stays_within_it(net_and_val):
    net, val = net_and_val
    strict = search_pruning(net, val, input_shape=SHAPE, max_drop=0.0)
    loose = search_pruning(net, val, input_shape=SHAPE, max_drop=0.15)

    def removed(plan):
        return sum(len(v) for v in plan.values())

    assert removed(loose.plan) > removed(strict.plan)
    assert loose.val_accuracy_after >= loose.val_accuracy_before - 0.15
    everything = search_pruning(net, val, input_shape=SHAPE, max_drop=1.0)
    assert {k: len(v) for k, v in everything.plan.items()} == {0: 5, 3: 7}


def test_search_evaluates_only_the_validation_split(net_and_val, monkeypatch):
    net, val = net_and_val
    seen = []

    def spy(model, split, **kwargs):
        seen.append(split)
        return accuracy(model, split, **kwargs)

    monkeypatch.setattr(search_module, "accuracy", spy)
    result = search_pruning(net, val, input_shape=SHAPE, max_drop=0.0)
    assert len(seen) == result.evaluations + 1 and all(split is val for split in seen)
