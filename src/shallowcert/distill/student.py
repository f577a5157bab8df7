"""Distil a teacher into a freshly built student with the shared fit loop."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from shallowcert.data import Dataset
from shallowcert.device import model_device
from shallowcert.distill.cache import teacher_logits
from shallowcert.distill.methods import DistillMethod
from shallowcert.distill.targets import pack_logits_and_labels
from shallowcert.distill.transfer import transfer_set
from shallowcert.errors import UserError
from shallowcert.training import FitConfig, FitData, FitResult, accuracy, build_seeded, fit

log = logging.getLogger(__name__)


def distill_student(teacher: nn.Module, student_spec: str, dataset: Dataset, *, method: DistillMethod,
                    config: FitConfig, transfer: str = "train", cache_dir: str | Path | None = None,
                    limit: int | None = None, device: torch.device | None = None) -> tuple[nn.Sequential, FitResult]:
    """Train ``student_spec`` (seeded by ``config.seed``) to imitate ``teacher``.

    The student learns on the transfer set ``transfer`` (``train`` or ``extra``, first
    ``limit`` points if given) against the teacher's cached logits (``cache_dir``, see
    :mod:`shallowcert.distill.cache`), with ``method``'s loss; the epoch with the best
    student accuracy on the validation split is kept (never the test split).

    ``device``: where the teacher's logits are computed and the student trains (default: the
    teacher's device; the teacher is moved there in place). The logits are kept on the CPU
    and moved per batch; the student is initialised on the CPU and returned on ``device``.
    """
    device = model_device(teacher) if device is None else device
    teacher.to(device)
    data = transfer_set(dataset, transfer, limit=limit)
    if method.needs_labels and data.labels is None:
        raise UserError(f"method '{method.name}' needs labels; the '{transfer}' transfer set has none "
                        "(use --transfer train)")
    logits = teacher_logits(teacher, data, cache_dir=cache_dir)
    if logits.shape[1] != dataset.classes:
        raise UserError(f"the teacher has {logits.shape[1]} outputs but dataset '{dataset.name}' "
                        f"has {dataset.classes} classes")
    targets = pack_logits_and_labels(logits, data.labels) if method.needs_labels and data.labels is not None else logits
    student = build_seeded(student_spec, dataset, config.seed)
    log.info("distilling into %s with %s on %d '%s' points", student_spec, method.settings(), len(data), transfer)
    result = fit(student, FitData(dataset.train, val=dataset.val, inputs=data.images, targets=targets),
                 loss_fn=method.loss_fn(), config=config, validate=lambda m: accuracy(m, dataset.val),
                 desc=f"distill {student_spec}", device=device)
    return student, result
