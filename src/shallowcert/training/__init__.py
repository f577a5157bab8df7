"""Supervised training (one generic loop with early stopping) and evaluation."""

from shallowcert.training.evaluate import accuracy, loss_and_accuracy, per_class_accuracy, predictions
from shallowcert.training.supervised import build_seeded, train_classifier
from shallowcert.training.loop import OPTIMIZERS, FitConfig, FitData, FitResult, LossFn, cross_entropy_loss, fit

__all__ = ["OPTIMIZERS", "FitConfig", "FitData", "FitResult", "LossFn", "accuracy", "build_seeded", "cross_entropy_loss",
           "fit", "loss_and_accuracy", "per_class_accuracy", "predictions", "train_classifier"]
