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
from typing import Any, Callable

import torch
from torch import nn

from shallowcert import atomic
from shallowcert.data import Dataset, Split, load_dataset
from shallowcert.models import ModelDir, count_macs, count_params, load_model, save_model
from shallowcert.study.store import ArtifactStore, fingerprint
from shallowcert.training import FitConfig, FitResult, accuracy, predictions

PREDICTIONS = "predictions.json"

_DATASETS: dict[str, Dataset] = {}


def study_dataset(config: dict[str, Any]) -> Dataset:
    """The configured dataset with ``train_limit`` / ``transfer_limit`` applied.

    The validation split and the transfer set depend on ``data.split_seed`` only, so every
    training seed sees the same data.
    """
    data = config["data"]
    dataset = load_dataset(data["dataset"], data_dir=data["data_dir"], seed=data["split_seed"],
                           val_size=data["val_size"])
    if data["train_limit"] is not None:
        dataset.train = dataset.train.head(data["train_limit"])
    if dataset.transfer_builder is not None and data["transfer_limit"] is not None:
        build, limit = dataset.transfer_builder, data["transfer_limit"]
        dataset.transfer_builder = lambda: build()[:limit]
    return dataset


def cached_study_dataset(config: dict[str, Any]) -> Dataset:
    """:func:`study_dataset`, loaded once per process (a worker runs many jobs on the same data)."""
    key = fingerprint(config["data"])
    if key not in _DATASETS:
        _DATASETS.clear()
        _DATASETS[key] = study_dataset(config)
    return _DATASETS[key]


@dataclass
class StageContext:
    config: dict[str, Any]
    store: ArtifactStore
    stage: str
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

    def fit_config(self, training: dict[str, Any], *, epochs: int | None = None) -> FitConfig:
        return FitConfig(epochs=epochs or training["epochs"], optimizer=training["optimizer"], lr=training["lr"],
                         batch_size=training["batch_size"], seed=self.seed, patience=training["patience"])

    def load(self, stage: str, name: str) -> ModelDir:
        """A model written by ``stage`` (this stage or an earlier one) for this seed."""
        return load_model(self.store.seed_dir(stage, self.seed) / name, device=self.device)

    def results(self, stage: str) -> dict[str, Any]:
        """An earlier stage's results for this seed."""
        return self.store.seed_results(stage, self.seed)

    def test_points(self, n: int) -> Split:
        return self.dataset.test.head(n)

    def save(self, name: str, model: nn.Module, *, spec: str, fit: FitResult | None = None,
             **metrics: Any) -> dict[str, Any]:
        """Save ``model`` and its test predictions under this seed's directory; return its summary
        row (with ``best_epoch`` and the learning curves ``history`` when ``fit`` is given)."""
        test = self.dataset.test
        predicted = predictions(model, test)
        if fit is not None:
            metrics = {"best_epoch": fit.best_epoch, "history": fit.history, **metrics}
        row = {"spec": spec, "val_accuracy": accuracy(model, self.dataset.val),
               "test_accuracy": float((predicted == test.labels).double().mean()), "params": count_params(model),
               "macs": count_macs(model, self.dataset.input_shape), "predictions": f"{name}/{PREDICTIONS}", **metrics}
        save_model(self.out / name, model, spec=spec, input_shape=self.dataset.input_shape,
                   classes=self.dataset.classes, metrics=row)
        atomic.write_text(self.out / row["predictions"], json.dumps(
            {"split": "test", "label": test.labels.tolist(), "predicted": predicted.tolist()}, separators=(",", ":")))
        return {"name": name, **row}
