"""distill_student on a tiny in-memory dataset whose labels are the teacher's predictions."""

from pathlib import Path

import pytest
import torch

from shallowcert.data import Dataset, Split
from shallowcert.distill import DistillMethod, distill_student
from shallowcert.errors import UserError
from shallowcert.models import build
from shallowcert.training import FitConfig, accuracy, build_seeded

SHAPE = (1, 6, 6)


def labelled_by(teacher, n, seed):
    images = torch.randint(0, 256, (n, *SHAPE), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        labels = teacher(images.float() / 255).argmax(dim=1)
    return Split(images, labels)


@pytest.fixture(scope="module")
def teacher_and_data():
    torch.manual_seed(0)
    teacher = build("snn:32", SHAPE, 3).eval()
    sample = torch.randint(0, 256, (2000, *SHAPE), generator=torch.Generator().manual_seed(8)).float() / 255
    with torch.no_grad():
        teacher[-1].weight.mul_(10)  # confident teacher
        teacher[-1].bias.sub_(teacher(sample).mean(dim=0))  # centred logits: the classes are balanced
    extra = torch.randint(0, 256, (300, *SHAPE), dtype=torch.uint8, generator=torch.Generator().manual_seed(9))
    dataset = Dataset("tiny", 3, labelled_by(teacher, 600, 1), labelled_by(teacher, 300, 2),
                      labelled_by(teacher, 100, 3), Path("."), lambda: extra)
    return teacher, dataset


CONFIG = FitConfig(epochs=6, lr=3e-3, batch_size=50, seed=0, patience=6)


@pytest.mark.parametrize("method", [DistillMethod("logits"), DistillMethod("temperature", temperature=2.0),
                                    DistillMethod("hinton", temperature=4.0, alpha=0.9)])
def test_student_learns_to_agree_with_the_teacher(teacher_and_data, method, tmp_path):
    teacher, dataset = teacher_and_data
    before = accuracy(build_seeded("snn:32", dataset, 0), dataset.val)
    student, result = distill_student(teacher, "snn:32", dataset, method=method, config=CONFIG, cache_dir=tmp_path)
    after = accuracy(student, dataset.val)
    assert after > before + 0.2  # labels are the teacher's predictions: accuracy = agreement
    assert result.best_score == pytest.approx(after)  # the kept epoch is the best on validation
    assert len(list(tmp_path.glob("*.safetensors"))) == 1


def test_adversarial_distillation_runs_on_the_unlabelled_transfer_set(teacher_and_data):
    teacher, dataset = teacher_and_data
    config = FitConfig(epochs=1, batch_size=100, seed=0)
    method = DistillMethod("adversarial", eps=0.05, attack_steps=2)
    student, result = distill_student(teacher, "snn:8", dataset, method=method, config=config, transfer="extra",
                                      limit=200)
    assert student(torch.rand(2, *SHAPE)).shape == (2, 3)
    assert len(result.history) == 1


def test_hinton_needs_labelled_transfer_data(teacher_and_data):
    teacher, dataset = teacher_and_data
    with pytest.raises(UserError, match="needs labels"):
        distill_student(teacher, "snn:8", dataset, method=DistillMethod("hinton"), config=CONFIG, transfer="extra")


def test_teacher_with_the_wrong_number_of_classes_is_refused(teacher_and_data):
    _, dataset = teacher_and_data
    wrong = build("snn:8", SHAPE, 4)
    with pytest.raises(UserError, match="4 outputs"):
        distill_student(wrong, "snn:8", dataset, method=DistillMethod("logits"), config=CONFIG)


@pytest.mark.parametrize("options, message", [
    ({"name": "soft"}, "unknown distillation method"),
    ({"name": "temperature", "temperature": 0.0}, "temperature"),
    ({"name": "hinton", "alpha": 1.5}, "alpha"),
    ({"name": "adversarial", "eps": -0.1}, "eps"),
    ({"name": "adversarial", "attack_steps": 0}, "attack steps"),
])
def test_bad_method_options_are_user_errors(options, message):
    with pytest.raises(UserError, match=message):
        DistillMethod(**options)


def test_settings_record_only_what_the_method_uses():
    assert DistillMethod("logits", temperature=3.0).settings() == {"method": "logits"}
    assert DistillMethod("hinton", temperature=3.0, alpha=0.2).settings() == \
        {"method": "hinton", "temperature": 3.0, "alpha": 0.2}
    assert DistillMethod("adversarial", eps=0.1, attack_steps=4).settings()["step_size"] == pytest.approx(0.0625)
