"""Robustness of one model, as the certification stages report it: clean accuracy,
certified accuracy and robust error bound at epsilon, certified radii and their area,
and PGD accuracy — all on the same test points, certificates in float64.

Per point, ``<name>-radii.csv`` (the row's ``radii``) records the label, the predicted
class, ``correct`` (predicted = label), ``certified`` (correct *and* certified for the
label at epsilon: the points counted by the certified accuracy) and the certified radius
of the predicted class; the same first test points for every model, so models can be
compared point by point.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from shallowcert import atomic
from shallowcert.attacks import PGD, robust_accuracy
from shallowcert.certify import (SearchSettings, certification_area, certified_radius, certify_points,
                                 plot_certification_area)
from shallowcert.robust import CrownIbpSchedule, EpsilonSchedule, certified_accuracy_on, robust_fit
from shallowcert.study.context import StageContext
from shallowcert.study.costs import CostModel
from shallowcert.study.jobs import Job
from shallowcert.study.record import OMIT_NONE, Record
from shallowcert.training import FitConfig, FitResult

DOMAIN = (0.0, 1.0)
DTYPE = torch.float64


@dataclass(frozen=True)
class RadiusSearch(Record):
    """How the certified-radius search went (:meth:`shallowcert.certify.RadiusResult.summary`):
    radii in input units, ``seconds`` wall time."""

    search: str
    method: str
    dtype: str
    domain: list[float] | None
    n: int
    mean_radius: float
    rounds: int
    evaluations_per_point: float
    max_evaluations: int
    seconds: float
    newton_failures: int | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True)
class PgdCurve(Record):
    """PGD accuracy (fraction) along ``eps`` (input units)."""

    eps: list[float]
    robust_accuracy: list[float]


@dataclass(frozen=True)
class RobustnessRow(Record):
    """One model's robustness on the stage's test points: accuracies and the robust error
    bound at epsilon (fractions), certified radii of the predicted class (input units; the
    true-label mean counts misclassified points as 0), the search, the figure and per-point
    table it wrote, and PGD accuracy."""

    name: str
    spec: str
    n: int
    clean_accuracy: float
    certified_accuracy: float
    robust_error_bound: float
    mean_radius: float
    mean_true_label_radius: float
    median_radius: float
    radius_search: RadiusSearch
    figure: str
    radii: str
    pgd: PgdCurve


def robustness_row(ctx: StageContext, model: nn.Module, *, name: str, spec: str,
                   pgd_eps: list[float]) -> RobustnessRow:
    """Certify, search radii, attack; write ``<name>-radii.csv`` and ``<name>-area.png``."""
    section = ctx.config.certification
    points = ctx.test_points(section.points)
    x, y = points.floats(), points.labels
    verdict = certify_points(model, x, y, section.eps, method=section.method, domain=DOMAIN, dtype=DTYPE)
    radii = certified_radius(model, x, labels=y, method=section.method, domain=DOMAIN, dtype=DTYPE,
                             settings=SearchSettings(rtol=section.radius_rtol))
    assert radii.correct is not None  # the labels were given
    area = certification_area(radii.radius, radii.correct)
    figure, table = f"{name}-area.png", f"{name}-radii.csv"
    plot_certification_area(area, ctx.out / figure, title=f"Certification area: {name}")
    certified = verdict.correct & verdict.certified
    atomic.write_text(ctx.out / table, "index,label,predicted,correct,certified,radius\n" + "".join(
        f"{i},{int(y[i])},{int(radii.predicted[i])},{int(radii.correct[i])},{int(certified[i])},"
        f"{float(radii.radius[i]):.6g}\n" for i in range(len(y))))
    attack = PGD(steps=ctx.config.attacks.steps, relative_step=ctx.config.attacks.relative_step, seed=ctx.seed)
    sweep = robust_accuracy(model, x, y, attack, pgd_eps)
    return RobustnessRow(name=name, spec=spec, n=verdict.n, clean_accuracy=verdict.clean_accuracy,
                         certified_accuracy=verdict.certified_accuracy, robust_error_bound=verdict.robust_error_bound,
                         mean_radius=area.mean_radius, mean_true_label_radius=area.mean_true_label_radius,
                         median_radius=area.summary()["median_radius"],
                         radius_search=RadiusSearch.from_json(radii.summary()),
                         figure=figure, radii=table, pgd=PgdCurve(sweep.eps, sweep.robust_accuracy))


def train_robust(ctx: StageContext, model: nn.Module, *, eps: float, method: str, warmup_epochs: int,
                 config: FitConfig, validation_points: int = 1000) -> FitResult:
    """Certified training in place with ``method`` (:mod:`shallowcert.robust`): ``crown-ibp``
    with the ramps of Zhang et al. over ``warmup_epochs`` (eps from 0, kappa and beta from 1 to
    0), any other method with Wong & Kolter's loss and its linear epsilon warm-up. The epoch
    kept is the one with the best certified accuracy at ``eps`` on validation points, by the
    exact bound of :func:`shallowcert.robust.certificate_method`."""
    validate = certified_accuracy_on(ctx.dataset.val.head(validation_points), eps, method=method, domain=DOMAIN)
    ramp = max(1, warmup_epochs)
    schedule = (CrownIbpSchedule(eps, ramp_epochs=ramp) if method == "crown-ibp"
                else EpsilonSchedule(eps, warmup_epochs=ramp, start=min(1e-3, eps)))
    return robust_fit(model, ctx.dataset.train, schedule=schedule, config=config, validate=validate, method=method,
                      domain=DOMAIN, val=ctx.dataset.val, projections=ctx.config.certification.projections)


def certify_model(ctx: StageContext, *, name: str, pgd_eps: list[float]) -> RobustnessRow:
    """The robustness row of this stage's model ``name`` (a job of its own)."""
    loaded = ctx.load(ctx.stage, name)
    return robustness_row(ctx, loaded.model, name=name, spec=loaded.spec, pgd_eps=pgd_eps)


def certify_job(ctx: StageContext, costs: CostModel, name: str, spec: str, pgd_eps: list[float]) -> Job:
    """Certify, search radii and attack the model that job ``name`` trains, once it is done."""
    section = ctx.config.certification
    return Job(f"certify-{name}", certify_model, RobustnessRow, {"name": name, "pgd_eps": pgd_eps},
               cost=costs.robustness(spec, points=section.points, method=section.method, pgd_eps=len(pgd_eps)),
               outputs=(f"{name}-radii.csv", f"{name}-area.png"), after=(name,))
