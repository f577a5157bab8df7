"""Certified (provably robust) training: Wong & Kolter's robust loss with an epsilon warm-up.

Example::

    from shallowcert.robust import EpsilonSchedule, robust_fit
    schedule = EpsilonSchedule(0.1, warmup_epochs=10)
    robust_fit(model, dataset.train, schedule=schedule, config=FitConfig(epochs=20), validate=...)
"""

from shallowcert.robust.evaluate import robustness_metrics
from shallowcert.robust.loss import RobustLoss, negated_margin_bounds, robust_loss
from shallowcert.robust.schedule import EpsilonSchedule
from shallowcert.robust.train import certified_accuracy_on, robust_fit, robust_loss_fn

__all__ = ["EpsilonSchedule", "certified_accuracy_on", "RobustLoss", "negated_margin_bounds", "robust_fit", "robust_loss", "robust_loss_fn",
           "robustness_metrics"]
