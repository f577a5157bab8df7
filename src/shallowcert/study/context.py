"""What a stage sees: the config, the data, its work directory and earlier stages' artifacts.

Every saved model also gets ``<name>/predictions.json``: its predicted label for every
point of the test split, in order (``{"split": "test", "label": [...], "predicted": [...]}``),
so that the report can compare models point by point (paired tests). Its path, relative
to the stage's work directory, is the row's ``predictions``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from torch import nn

from shallowcert.data import Dataset, Split, load_dataset
from shallowcert.models import ModelDir, count_macs, count_params, load_model, save_model
from shallowcert.study.store import ArtifactStore
from shallowcert import atomic
from shallowcert.training import FitConfig, FitResult, accuracy, predictions

PREDICTIONS = "predictions.json"


def study_dataset(config: dict[str, Any]) -> Dataset:
    """The configured dataset with ``train_limit`` / ``transfer_limit`` applied."""
    data = config["data"]
    dataset = load_dataset(data["dataset"], data_dir=data["data_dir"], seed=config["seed"], val_size=data["val_size"])
    if data["train_limit"] is not None:
        dataset.train = dataset.train.head(data["train_limit"])
    if dataset.transfer_builder is not None and data["transfer_limit"] is not None:
        build, limit = dataset.transfer_builder, data["transfer_limit"]
        dataset.transfer_builder = lambda: build()[:limit]
    return dataset


@dataclass
class StageContext:
    config: dict[str, Any]
    store: ArtifactStore
    out: Path
    dataset_loader: Callable[[], Dataset]
    _dataset: Dataset | None = field(default=None, repr=False)

    @property
    def dataset(self) -> Dataset:
        if self._dataset is None:
            self._dataset = self.dataset_loader()
        return self._dataset

    @property
    def cache_dir(self) -> Path:
        """Teacher logits cached across stages (keyed by teacher weights and transfer set)."""
        return self.store.root / "cache" / "teacher-logits"

    @property
    def seed(self) -> int:
        return int(self.config["seed"])

    def fit_config(self, training: dict[str, Any], *, epochs: int | None = None) -> FitConfig:
        return FitConfig(epochs=epochs or training["epochs"], optimizer=training["optimizer"], lr=training["lr"],
                         batch_size=training["batch_size"], seed=self.seed, patience=training["patience"])

    def load(self, stage: str, name: str) -> ModelDir:
        """A model written by an earlier stage."""
        return load_model(self.store.stage_dir(stage) / name)

    def test_points(self, n: int) -> Split:
        return self.dataset.test.head(n)

    def save(self, name: str, model: nn.Module, *, spec: str, fit: FitResult | None = None,
             **metrics: Any) -> dict[str, Any]:
        """Save ``model`` and its test predictions under the stage's directory; return its summary
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
