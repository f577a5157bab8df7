"""The exact robust radius of a certification model on its first test points, and how far
the certified radius falls short of it: the ``exact-<model>`` jobs of the certification stage.

For each of the first ``exact_points`` certified test points (the same points, in the same
order, as ``<name>-radii.csv``), :func:`shallowcert.verify.exact.exact_radius` brackets the
exact L-inf radius ``r*`` of the predicted class (float64, balls clipped to [0, 1], radii in
input units) by bisection on the complete verifier, ``exact_time_limit`` seconds per point,
starting from the certified radius of the stage's bound (``certification.method``, search
tolerance ``radius_rtol``, so the same radius as the radii table). A point is settled when
its bracket ``[lower, upper]`` is within ``radius_rtol`` of ``upper``; unsettled points keep
the bracket they reached (``upper`` is ``null`` when no counterexample was found). Deep
teachers often stay unsettled: that is expected and reported, never guessed.

Per point, ``<name>-exact.json`` records ``index``, ``label``, ``predicted`` and the columns
``lower``, ``upper``, ``certified``, ``settled``, ``seconds``; the job's result carries the
summary (:meth:`shallowcert.verify.exact.ExactRadius.summary`) and names the file.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from shallowcert import atomic
from shallowcert.model_state import model_in_dtype
from shallowcert.study.context import StageContext
from shallowcert.study.costs import CostModel
from shallowcert.study.jobs import Job
from shallowcert.study.record import Record
from shallowcert.study.robustness import DOMAIN, DTYPE
from shallowcert.verify.exact import ExactSettings, exact_radius


@dataclass(frozen=True)
class ExactSummary(Record):
    """One model's exact radii (:meth:`shallowcert.verify.exact.ExactRadius.summary`): the bound
    the search started from, seconds per point allowed, the per-point file, point counts,
    means of the bracket ends and of the certified radius (input units; ``mean_upper`` and
    its gap over the points with a counterexample, None without one), total seconds."""

    name: str
    spec: str
    bound: str
    time_limit: float
    file: str
    n: int
    settled: int
    unsettled: int
    rtol: float
    mean_lower: float
    mean_upper: float | None
    mean_certified: float
    mean_gap_lower_minus_certified: float
    mean_gap_upper_minus_certified: float | None
    seconds: float


def exact_file(name: str) -> str:
    return f"{name}-exact.json"


def exact_model(ctx: StageContext, *, name: str) -> ExactSummary:
    """Bracket the exact radius of this stage's model ``name`` on the first points; write
    ``<name>-exact.json``; return the summary."""
    section = ctx.config.certification
    loaded = ctx.load(ctx.stage, name)
    points = ctx.test_points(section.exact_count())
    x = points.floats()
    with torch.no_grad():
        predicted = model_in_dtype(loaded.model, DTYPE)(x.to(ctx.device, DTYPE)).argmax(dim=1).cpu()
    settings = ExactSettings(section.exact_time_limit, rtol=section.radius_rtol, certified_by=section.method,
                             domain=DOMAIN, seed=ctx.seed)
    exact = exact_radius(loaded.model, x, predicted, settings, device=ctx.device)
    atomic.write_json(ctx.out / exact_file(name), {
        "index": list(range(len(points))), "label": points.labels.tolist(), "predicted": predicted.tolist(),
        **exact.per_point()})
    return ExactSummary.from_json({"name": name, "spec": loaded.spec, "bound": section.method,
                                   "time_limit": section.exact_time_limit, "file": exact_file(name),
                                   **exact.summary()})


def exact_job(ctx: StageContext, costs: CostModel, name: str) -> Job:
    """The exact radii of the model that job ``name`` trains, once it is done."""
    section = ctx.config.certification
    return Job(f"exact-{name}", exact_model, ExactSummary, {"name": name},
               cost=costs.exact(points=section.exact_count(), time_limit=section.exact_time_limit),
               outputs=(exact_file(name),), after=(name,))
