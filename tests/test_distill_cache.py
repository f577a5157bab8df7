"""Teacher logits are cached on disk, reused, and keyed by weights and transfer set."""

import torch
from torch import nn

from shallowcert.distill import TransferSet, teacher_logits, weights_fingerprint
from shallowcert.models import build


class CountingTeacher(nn.Module):
    """Wraps a model and counts how many inputs it has seen."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.seen = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen += len(x)
        return self.model(x)


def make_teacher(seed: int) -> CountingTeacher:
    torch.manual_seed(seed)
    return CountingTeacher(build("snn:8", (1, 6, 6), 3))


def make_transfer(seed: int, n: int = 20, which: str = "train") -> TransferSet:
    images = torch.randint(0, 256, (n, 1, 6, 6), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))
    return TransferSet("tiny", which, images, None)


def test_logits_are_computed_once_then_read_from_the_cache(tmp_path):
    teacher, transfer = make_teacher(0), make_transfer(0)
    first = teacher_logits(teacher, transfer, cache_dir=tmp_path)
    assert teacher.seen == 20
    files = list(tmp_path.glob("*.safetensors"))
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    second = teacher_logits(teacher, transfer, cache_dir=tmp_path)
    assert teacher.seen == 20  # no forward pass the second time
    assert files[0].stat().st_mtime_ns == stamp
    assert torch.equal(first, second)
    expected = teacher.model(transfer.images.float() / 255)
    assert torch.allclose(first, expected, atol=1e-6)


def test_another_teacher_or_transfer_set_gets_its_own_entry(tmp_path):
    teacher_logits(make_teacher(0), make_transfer(0), cache_dir=tmp_path)
    other_teacher = make_teacher(1)
    teacher_logits(other_teacher, make_transfer(0), cache_dir=tmp_path)
    assert other_teacher.seen == 20
    teacher_logits(make_teacher(0), make_transfer(0, n=10), cache_dir=tmp_path)
    teacher_logits(make_teacher(0), make_transfer(0, which="extra"), cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.safetensors"))) == 4
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_a_damaged_cache_file_is_recomputed(tmp_path):
    teacher, transfer = make_teacher(0), make_transfer(0)
    teacher_logits(teacher, transfer, cache_dir=tmp_path)
    (path,) = tmp_path.glob("*.safetensors")
    path.write_bytes(b"not a safetensors file")
    again = teacher_logits(teacher, transfer, cache_dir=tmp_path)
    assert teacher.seen == 40 and again.shape == (20, 3)


def test_without_a_cache_dir_nothing_is_written(tmp_path):
    teacher = make_teacher(0)
    teacher_logits(teacher, make_transfer(0), cache_dir=None)
    teacher_logits(teacher, make_transfer(0), cache_dir=None)
    assert teacher.seen == 40 and not list(tmp_path.iterdir())


def test_weights_fingerprint_depends_on_values_only():
    a, b = make_teacher(0), make_teacher(0)
    assert weights_fingerprint(a) == weights_fingerprint(b)
    with torch.no_grad():
        b.model[1].bias[0] += 1e-3
    assert weights_fingerprint(a) != weights_fingerprint(b)
