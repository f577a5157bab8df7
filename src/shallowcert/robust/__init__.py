"""Certified (provably robust) training: bound-based losses and their schedules.

Example::

    from shallowcert.robust import EpsilonSchedule, robust_fit
    schedule = EpsilonSchedule(0.1, warmup_epochs=10)
    robust_fit(model, dataset.train, schedule=schedule, config=FitConfig(epochs=20), validate=...)

Methods: Wong & Kolter's loss with any bound of the engine (:mod:`~shallowcert.robust.loss`),
with its ℓ1 terms estimated by random projections (``dual-projected``,
:mod:`~shallowcert.robust.projected`), and CROWN-IBP with the schedule of Zhang et al.
(:mod:`~shallowcert.robust.crown_ibp`).
"""

from shallowcert.robust.crown_ibp import CrownIbpSchedule, CrownIbpValues, crown_ibp_loss
from shallowcert.robust.evaluate import robustness_metrics
from shallowcert.robust.loss import RobustLoss, negated_margin_bounds, robust_loss
from shallowcert.robust.projected import DEFAULT_PROJECTIONS, projected_lower_bounds, projected_robust_loss
from shallowcert.robust.schedule import EpsilonSchedule
from shallowcert.robust.train import (TRAIN_METHODS, certificate_method, certified_accuracy_on, check_train_method,
                                      robust_fit, robust_loss_fn)

__all__ = ["DEFAULT_PROJECTIONS", "TRAIN_METHODS", "CrownIbpSchedule", "CrownIbpValues", "EpsilonSchedule",
           "RobustLoss", "certificate_method", "certified_accuracy_on", "check_train_method", "crown_ibp_loss",
           "negated_margin_bounds", "projected_lower_bounds", "projected_robust_loss", "robust_fit", "robust_loss",
           "robust_loss_fn", "robustness_metrics"]
