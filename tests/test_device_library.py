"""Every compute path runs on the device of its inputs, checked on a stand-in device.

:mod:`fake_device` makes ``meta`` a computing device whose operations refuse CPU tensors
(as CUDA does), so a tensor created without ``device=`` fails here. Each test runs a path
on that device and on the CPU and asserts (1) where the results live (the conventions of
:mod:`shallowcert.device`) and (2) that the numbers are exactly the CPU's.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from fake_device import FakeDevice, MixedDevices, on_device, values
from shallowcert.attacks import ATTACKS, PGD, make_attack, robust_accuracy
from shallowcert.bounds import METHODS, InputSet, linear_certificate, lower_bounds, margin_spec
from shallowcert.certify import (SearchSettings, adversarial_distance, certification_area, certified_radius,
                                 certify_points)
from shallowcert.data import Dataset, Split
from shallowcert.device import model_device
from shallowcert.distill import DistillMethod, distill_student, teacher_logits, transfer_set
from shallowcert.models import build, load_model, save_model
from shallowcert.models.layers import Normalize
from shallowcert.prune import plot_filter_norms, pruning_report, remove_filters, search_pruning
from shallowcert.robust import EpsilonSchedule, robust_fit, robust_loss, robustness_metrics
from shallowcert.training import FitConfig, accuracy, train_classifier

DEVICE = torch.device("meta")
SHAPE = (1, 12, 12)
CLASSES = 4


def split(n: int, seed: int) -> Split:
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, *SHAPE), dtype=torch.uint8, generator=generator)
    return Split(images, torch.randint(0, CLASSES, (n,), generator=generator))


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    extra = split(40, 4).images
    return Dataset("tiny", CLASSES, split(60, 1), split(20, 2), split(20, 3), Path("."), lambda: extra)


def every_layer_net() -> nn.Sequential:
    """Normalisation, conv (patches), batch norm, average pooling, dense layers: every reader."""
    torch.manual_seed(0)
    norm = nn.BatchNorm2d(4)
    norm.running_mean.uniform_(-0.1, 0.1)
    norm.running_var.uniform_(0.5, 2.0)
    return nn.Sequential(Normalize([0.3], [0.5]), nn.Conv2d(1, 4, 3, stride=2, padding=1), norm, nn.ReLU(),
                         nn.AvgPool2d(2), nn.Conv2d(4, 6, 2), nn.ReLU(), nn.Flatten(), nn.Linear(24, 16), nn.ReLU(),
                         nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, CLASSES)).eval()


def conv_net() -> nn.Sequential:
    torch.manual_seed(1)
    return build("layers:c4k4s2p1,relu,c8k4s2p1,relu,flat,fc16,relu,fc", SHAPE, CLASSES).eval()


def points(n: int = 6, seed: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    data = split(n, seed)
    return data.floats(), data.labels


def same(device_result: torch.Tensor, cpu_result: torch.Tensor) -> bool:
    return torch.equal(values(device_result), cpu_result)


def test_the_stand_in_device_refuses_cpu_tensors() -> None:
    """The harness itself: a tensor made without ``device=`` next to device data fails."""
    with FakeDevice():
        x = torch.rand(3, 2).to(DEVICE)
        assert x.device == DEVICE and on_device(x * 2 + torch.zeros(3, 2, device=x.device))
        with pytest.raises(MixedDevices):
            x + torch.zeros(3, 2)
        with pytest.raises(MixedDevices):
            torch.where(x > 0, x, torch.ones(3, 2))
        assert on_device(x[torch.tensor([0, 2])])  # CPU indices are fine, as on CUDA
        assert float((x * torch.tensor(2.0)).sum()) == pytest.approx(float(values(x).sum()) * 2)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("domain", [None, (0.0, 1.0)])
def test_bounds_come_back_on_the_input_device(method: str, domain: tuple[float, float] | None) -> None:
    net = every_layer_net().double()
    x, y = points(3)
    x = x.double()
    eps = torch.full((len(x),), 0.02, dtype=torch.float64)
    spec = margin_spec(y, CLASSES).double()
    expected = lower_bounds(net, InputSet(x, eps, domain=domain), spec, method=method, alpha_steps=2)
    wide = linear_certificate(net, InputSet(x, 2 * eps, domain=domain), spec, method=method, alpha_steps=2)
    narrow = linear_certificate(net, InputSet(x, eps, domain=domain), spec, method=method, alpha_steps=2,
                                known_states=wide.states)
    with FakeDevice():
        net.to(DEVICE)
        xd, ed, sd = x.to(DEVICE), eps.to(DEVICE), spec.to(DEVICE)
        bounds = lower_bounds(net, InputSet(xd, ed, domain=domain), sd, method=method, alpha_steps=2)
        wide_d = linear_certificate(net, InputSet(xd, 2 * ed, domain=domain), sd, method=method, alpha_steps=2)
        narrow_d = linear_certificate(net, InputSet(xd, ed, domain=domain), sd, method=method, alpha_steps=2,
                                      known_states=wide_d.states)
    assert on_device(bounds) and same(bounds, expected)
    assert on_device(narrow_d.coefficients) and same(narrow_d.coefficients, narrow.coefficients)
    assert same(narrow_d.offset, narrow.offset)
    assert all(on_device(s) and same(s, c) for s, c in zip(narrow_d.states, narrow.states))


def test_chunked_bounds_and_their_gradients_stay_on_the_device() -> None:
    """Chunks (with checkpointing under autograd) never move data back to the CPU."""
    x, y = points(4)
    spec = margin_spec(y, CLASSES)
    eps = torch.full((4,), 0.01)
    net = conv_net()
    loss = lower_bounds(net, InputSet(x, eps), spec, memory_budget=1).sum()
    (expected,) = torch.autograd.grad(loss, net[0].weight)
    with FakeDevice():
        net.to(DEVICE)
        loss = lower_bounds(net, InputSet(x.to(DEVICE), eps.to(DEVICE)), spec.to(DEVICE), memory_budget=1).sum()
        (gradient,) = torch.autograd.grad(loss, net[0].weight)
    assert on_device(gradient) and torch.allclose(values(gradient), expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attacks_run_on_the_input_device(name: str) -> None:
    net = conv_net()
    x, y = points()
    attack = make_attack(name, **({} if name == "fgsm" else {"steps": 4}))
    eps = 0.5 if name == "l2pgd" else 0.05
    expected = attack(net, x, y, eps=eps, early_stop=True)
    with FakeDevice():
        net.to(DEVICE)
        result = attack(net, x.to(DEVICE), y.to(DEVICE), eps=eps, early_stop=True)
    assert all(on_device(t) for t in (result.adversarial, result.success, result.perturbation))
    assert same(result.adversarial, expected.adversarial) and same(result.success, expected.success)


def test_attack_sweep_moves_batches_and_returns_cpu_results() -> None:
    net = conv_net()
    x, y = points(10)
    attack = PGD(steps=3, relative_step=0.5)
    expected = robust_accuracy(net, x, y, attack, [0.0, 0.02, 0.1], batch_size=4)
    with FakeDevice():
        result = robust_accuracy(net, x, y, attack, [0.0, 0.02, 0.1], batch_size=4, device=DEVICE)
        assert model_device(net) == DEVICE
    assert result.breaking_eps.device.type == "cpu" and not on_device(result.breaking_eps)
    assert torch.equal(result.breaking_eps, expected.breaking_eps)
    assert result.robust_accuracy == expected.robust_accuracy


@pytest.mark.slow
@pytest.mark.parametrize("search, domain", [("bisect", (0.0, 1.0)), ("bisect", None), ("newton", None)])
def test_certification_runs_on_the_device_and_returns_cpu_results(search: str,
                                                                  domain: tuple[float, float] | None) -> None:
    net = conv_net()
    x, y = points(4)
    attack = PGD(steps=5, relative_step=0.25, random_start=False)
    settings = SearchSettings(rtol=0.05, max_rounds=8)
    options = {"attack": attack, "rounds": 1, "first": 0.01, "max_radius": 0.2}
    verdict = certify_points(net, x, y, 0.01, method="crown", dtype=torch.float64, batch_size=3)
    radius = certified_radius(net, x, labels=y, domain=domain, dtype=torch.float64, search=search, batch_size=3,
                              settings=settings)
    distance = adversarial_distance(net, x, radius.predicted, lower=radius.radius, **options)
    with FakeDevice():
        verdict_d = certify_points(net, x, y, 0.01, method="crown", dtype=torch.float64, batch_size=3, device=DEVICE)
        radius_d = certified_radius(net, x, labels=y, domain=domain, dtype=torch.float64, search=search,
                                    batch_size=3, settings=settings)  # default: the model's device, now DEVICE
        distance_d = adversarial_distance(net, x, radius_d.predicted, lower=radius_d.radius, **options)
        area = certification_area(radius.radius.to(DEVICE), radius.correct.to(DEVICE))
    results = [verdict_d.correct, verdict_d.certified, radius_d.radius, radius_d.predicted, radius_d.correct,
               radius_d.evaluations, distance_d]
    assert all(t.device.type == "cpu" and not on_device(t) for t in results)
    assert torch.equal(verdict_d.certified, verdict.certified) and torch.equal(radius_d.radius, radius.radius)
    assert torch.equal(radius_d.evaluations, radius.evaluations) and torch.equal(distance_d, distance)
    if search == "newton":
        assert torch.equal(radius_d.newton_returned, radius.newton_returned)
    assert on_device(area.running_accuracy) and area.mean_radius == float(radius.radius.mean())


def test_training_moves_the_model_and_each_batch(dataset: Dataset) -> None:
    config = FitConfig(epochs=2, batch_size=16, seed=3)
    expected, fit_cpu = train_classifier("scnn1:3", dataset, config)
    with FakeDevice():
        model, fit = train_classifier("scnn1:3", dataset, config, device=DEVICE)
        assert model_device(model) == DEVICE
        assert accuracy(model, dataset.test) == accuracy(expected, dataset.test)
    assert fit.history == fit_cpu.history
    assert all(torch.equal(values(a), b) for a, b in zip(model.state_dict().values(), expected.state_dict().values()))


@pytest.mark.parametrize("method", ["hinton", "adversarial"])
def test_distillation_computes_teacher_logits_on_the_device(dataset: Dataset, tmp_path: Path, method: str) -> None:
    config = FitConfig(epochs=1, batch_size=16, seed=0)
    distill = DistillMethod(method, temperature=2.0, eps=0.05, attack_steps=2)
    teacher = conv_net()
    expected, _ = distill_student(teacher, "snn:8", dataset, method=distill, config=config, cache_dir=tmp_path / "a")
    logits = teacher_logits(teacher, transfer_set(dataset, "extra"), cache_dir=None)
    with FakeDevice():
        logits_d = teacher_logits(conv_net().to(DEVICE), transfer_set(dataset, "extra"), cache_dir=None)
        assert not on_device(logits_d) and torch.equal(logits_d, logits)  # computed on the device, kept on the CPU
        student, fit = distill_student(teacher, "snn:8", dataset, method=distill, config=config,
                                       cache_dir=tmp_path / "b", device=DEVICE)
        assert model_device(teacher) == DEVICE and model_device(student) == DEVICE
        again, _ = distill_student(teacher, "snn:8", dataset, method=distill, config=config,
                                   cache_dir=tmp_path / "b")  # the cached logits (CPU) are moved per batch
    assert all(torch.equal(values(a), b) for a, b in zip(student.state_dict().values(), expected.state_dict().values()))
    assert all(torch.equal(values(a), values(b))
               for a, b in zip(again.state_dict().values(), student.state_dict().values()))


def test_robust_training_and_its_metrics_run_on_the_device(dataset: Dataset) -> None:
    config = FitConfig(epochs=1, batch_size=20, seed=0)
    schedule = EpsilonSchedule(0.01)
    x, y = dataset.test.floats(), dataset.test.labels
    reference = build("snn:8", SHAPE, CLASSES)
    model = build("snn:8", SHAPE, CLASSES)
    model.load_state_dict(reference.state_dict())
    fit_cpu = robust_fit(reference, dataset.train, schedule=schedule, config=config, validate=lambda m: 0.0)
    metrics_cpu = robustness_metrics(reference, x, y, 0.01)
    with FakeDevice():
        fit = robust_fit(model, dataset.train, schedule=schedule, config=config, validate=lambda m: 0.0,
                         device=DEVICE)
        loss = robust_loss(model, x.to(DEVICE), y.to(DEVICE), 0.01)
        metrics = robustness_metrics(model, x, y, 0.01)
    assert model_device(model) == DEVICE and on_device(loss.loss)
    assert fit.history == fit_cpu.history and metrics == metrics_cpu


def test_pruning_search_runs_on_the_device(dataset: Dataset, tmp_path: Path) -> None:
    model = conv_net()
    expected = search_pruning(model, dataset.val, input_shape=SHAPE, max_drop=0.1)
    report = pruning_report(model, remove_filters(model, expected.plan, input_shape=SHAPE), expected.plan, dataset)
    with FakeDevice():
        result = search_pruning(model, dataset.val, input_shape=SHAPE, max_drop=0.1, device=DEVICE)
        pruned = remove_filters(model, result.plan, input_shape=SHAPE)
        assert model_device(model) == DEVICE and model_device(pruned) == DEVICE
        assert pruning_report(model, pruned, result.plan, dataset) == report
        assert len(plot_filter_norms(model, result.plan, tmp_path)) == 2
    assert result == expected


def test_checkpoints_are_written_from_cpu_tensors_and_loaded_onto_a_device(tmp_path: Path, monkeypatch) -> None:
    import shallowcert.models.checkpoint as checkpoint

    written: dict[str, torch.Tensor] = {}
    real_save = checkpoint.save_file

    def spy(state: dict[str, torch.Tensor], path: str) -> None:
        written.update(state)
        real_save(state, path)

    monkeypatch.setattr(checkpoint, "save_file", spy)
    model = conv_net()
    expected = {k: v.clone() for k, v in model.state_dict().items()}
    with FakeDevice():
        save_model(tmp_path / "m", model.to(DEVICE), spec="x", input_shape=SHAPE, classes=CLASSES)
        loaded = load_model(tmp_path / "m", device=DEVICE)
        assert model_device(loaded.model) == DEVICE
    assert written and all(type(t) is torch.Tensor and t.device.type == "cpu" for t in written.values())
    assert all(torch.equal(values(loaded.model.state_dict()[k]), v) for k, v in expected.items())
