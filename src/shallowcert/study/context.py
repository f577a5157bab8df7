"""What a job sees: the config, the data, its seed, its device, its seed directory and the
artifacts of earlier stages for the same seed.

Every saved model also gets ``<name>/predictions.json``: its predicted label for every
point of the test split, in order (``{"split": "test", "label": [...], "predicted": [...]}``),
so that the report can compare models point by point (paired tests). Its path, relative
to the seed directory, is the row's ``predictions``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import torch
from torch import nn

from shallowcert import atomic
from shallowcert.data import Dataset, Split, load_dataset
from shallowcert.models import ModelDir, count_macs, count_params, load_model, save_model
from shallowcert.study.record import OMIT_NONE, R, Record
from shallowcert.study.stage import StageName
from shallowcert.study.store import ArtifactStore, fingerprint
from shallowcert.training import FitConfig, FitResult, accuracy, predictions

if TYPE_CHECKING:
    from shallowcert.study.config import StudyConfig

PREDICTIONS = "predictions.json"
History = list[dict[str, float]]  # one entry per epoch (see shallowcert.training.loop)

_DATASETS: dict[str, Dataset] = {}


@dataclass(frozen=True)
class DataConfig(Record):
    """The ``data`` section: which dataset, and how it is split and cut down."""

    dataset: str
    split_seed: int
    data_dir: str | None
    val_size: int | None
    train_limit: int | None
    transfer_limit: int | None


@dataclass(frozen=True)
class TrainingConfig(Record):
    """A ``training`` subsection: the optimisation of one kind of model."""

    epochs: int
    optimizer: str
    lr: float
    batch_size: int
    patience: int


@dataclass(frozen=True)
class ModelRow(Record):
    """A saved model's summary (:meth:`StageContext.save`): accuracies on the validation and
    test splits (fractions), size (parameters, multiply-accumulates per input), the path of
    its per-point test predictions and, when it was trained here, its best epoch and
    learning curves."""

    name: str
    spec: str
    val_accuracy: float
    test_accuracy: float
    params: int
    macs: int
    predictions: str
    best_epoch: int | None = field(default=None, metadata=OMIT_NONE)
    history: History | None = field(default=None, metadata=OMIT_NONE)


def study_dataset(data: DataConfig) -> Dataset:
    """The configured dataset with ``train_limit`` / ``transfer_limit`` applied.

    The validation split and the transfer set depend on ``data.split_seed`` only, so every
    training seed sees the same data.
    """
    dataset = load_dataset(data.dataset, data_dir=data.data_dir, seed=data.split_seed, val_size=data.val_size)
    if data.train_limit is not None:
        dataset.train = dataset.train.head(data.train_limit)
    if dataset.transfer_builder is not None and data.transfer_limit is not None:
        build, limit = dataset.transfer_builder, data.transfer_limit
        dataset.transfer_builder = lambda: build()[:limit]
    return dataset


def cached_study_dataset(data: DataConfig) -> Dataset:
    """:func:`study_dataset`, loaded once per process (a worker runs many jobs on the same data)."""
    key = fingerprint(data.to_json())
    if key not in _DATASETS:
        _DATASETS.clear()
        _DATASETS[key] = study_dataset(data)
    return _DATASETS[key]


@dataclass
class StageContext:
    """What a job sees: the config, the artifacts, its stage, seed, data and device."""

    config: StudyConfig
    store: ArtifactStore
    stage: StageName
    seed: int
    dataset_loader: Callable[[], Dataset]
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    _dataset: Dataset | None = field(default=None, repr=False)

    @property
    def dataset(self) -> Dataset:
        if self._dataset is None:
            self._dataset = self.dataset_loader()
        return self._dataset

    @property
    def out(self) -> Path:
        """This stage's directory for this seed: ``RUN_DIR/<stage>/seed-<s>``."""
        return self.store.seed_dir(self.stage, self.seed)

    @property
    def cache_dir(self) -> Path:
        """Teacher logits cached across stages (keyed by teacher weights and transfer set)."""
        return self.store.root / "cache" / "teacher-logits"

    def fit_config(self, training: TrainingConfig, *, epochs: int | None = None) -> FitConfig:
        """``training`` for this seed (``epochs``: in place of the section's)."""
        return FitConfig(epochs=epochs or training.epochs, optimizer=training.optimizer, lr=training.lr,
                         batch_size=training.batch_size, seed=self.seed, patience=training.patience)

    def load(self, stage: StageName, name: str) -> ModelDir:
        """A model written by ``stage`` (this stage or an earlier one) for this seed."""
        return load_model(self.store.seed_dir(stage, self.seed) / name, device=self.device)

    def results(self, stage: StageName, kind: type[R]) -> R:
        """An earlier stage's results for this seed, as its result record ``kind``."""
        return kind.from_json(self.store.seed_results(stage, self.seed))

    def test_points(self, n: int) -> Split:
        return self.dataset.test.head(n)

    def save(self, name: str, model: nn.Module, *, spec: str, fit: FitResult | None = None,
             history: History | None = None) -> ModelRow:
        """Save ``model`` and its test predictions under this seed's directory; return its summary
        row (with ``best_epoch`` and the learning curves when ``fit`` is given; ``history``:
        curves of a model trained elsewhere)."""
        if not isinstance(model, nn.Sequential):
            raise TypeError(f"the study saves nn.Sequential models, not {type(model).__name__}")
        test = self.dataset.test
        predicted = predictions(model, test)
        row = ModelRow(name=name, spec=spec, val_accuracy=accuracy(model, self.dataset.val),
                       test_accuracy=float((predicted == test.labels).double().mean()), params=count_params(model),
                       macs=count_macs(model, self.dataset.input_shape), predictions=f"{name}/{PREDICTIONS}",
                       best_epoch=fit.best_epoch if fit is not None else None,
                       history=fit.history if fit is not None else history)
        metrics = row.to_json()
        del metrics["name"]
        save_model(self.out / name, model, spec=spec, input_shape=self.dataset.input_shape,
                   classes=self.dataset.classes, metrics=metrics)
        atomic.write_text(self.out / row.predictions, json.dumps(
            {"split": "test", "label": test.labels.tolist(), "predicted": predicted.tolist()}, separators=(",", ":")))
        return row
