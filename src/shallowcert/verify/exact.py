"""The exact L-inf robust radius of each point, by bisection on the complete verifier.

For a point ``x`` with label ``y`` the robust radius is ``r* = sup {eps : class y wins
everywhere in the ball of radius eps (clipped to the domain)}``. Two ends bracket it:

* ``lower``: a radius where the property was proved (``unsat``): first the certified radius
  (:func:`shallowcert.certify.certified_radius` with the bound ``bound``, CROWN by default,
  in float64; 0 when ``x`` is misclassified), then every bisection step the verifier proves;
* ``upper``: the distance ``||x' - x||_inf`` of a counterexample ``x'`` re-checked by the
  verifier (``sat``), first near the closest adversarial example PGD finds
  (:func:`shallowcert.certify.adversarial_distance`), doubling the radius when there is none.

Each step runs :func:`shallowcert.verify.verify` at the middle radius with half the
point's remaining time (``time_limit`` seconds per point; all of it once under
``2 * MIN_SHARE``); a step that runs out of time makes its radius a ceiling, and the
search goes on below it (raising ``lower``) until the time is spent. A point is **settled** when
``upper - lower <= rtol * upper``; otherwise (time out, ``unknown``, no counterexample up to
``max_radius``) it is reported unsettled with the bracket it reached — never a guess.

The gap ``r* - certified`` is what a bound gives away; ``certified <= lower <= r* <= upper``
always, so on a settled point the gap is known to within ``rtol * upper``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from shallowcert.certify import SearchSettings, adversarial_distance, certified_radius
from shallowcert.checks import inputs_and_labels, positive_float
from shallowcert.verify.complete import verify
from shallowcert.verify.property import robustness_property
from shallowcert.verify.result import VerificationResult

MIN_SHARE = 0.5  # seconds: the least time one bisection step is given while more remains


@dataclass(frozen=True)
class ExactRadius:
    """Per point ``(N,)`` float64: ``lower`` (proved), ``upper`` (counterexample distance,
    ``inf`` when none was found), ``certified`` (the certified radius the search started
    from); bool ``settled``; ``seconds`` spent per point; ``rtol`` the tolerance asked."""

    lower: torch.Tensor
    upper: torch.Tensor
    certified: torch.Tensor
    settled: torch.Tensor
    seconds: torch.Tensor
    rtol: float

    def summary(self) -> dict[str, object]:
        """Counts and means for the JSON record (means over settled points where noted)."""
        settled = self.settled
        finite = torch.isfinite(self.upper)
        return {
            "n": int(self.lower.numel()), "settled": int(settled.sum()), "unsettled": int((~settled).sum()),
            "rtol": self.rtol, "mean_lower": float(self.lower.mean()),
            "mean_upper": float(self.upper[finite].mean()) if bool(finite.any()) else None,
            "mean_certified": float(self.certified.mean()),
            "mean_gap_lower_minus_certified": float((self.lower - self.certified).mean()),
            "mean_gap_upper_minus_certified": (float((self.upper - self.certified)[finite].mean())
                                               if bool(finite.any()) else None),
            "seconds": float(self.seconds.sum()),
        }

    def per_point(self) -> dict[str, list[Any]]:
        """The per-point columns as JSON lists (``upper`` None where no counterexample was found)."""
        return {"lower": self.lower.tolist(), "upper": [u if math.isfinite(u) else None for u in self.upper.tolist()],
                "certified": self.certified.tolist(), "settled": self.settled.tolist(),
                "seconds": self.seconds.tolist()}


@dataclass(frozen=True)
class ExactSettings:
    """How each point's radius is bracketed (radii in input units).

    ``time_limit``: seconds per point; ``rtol``: a point is settled when ``upper - lower <=
    rtol * upper``; ``verifier``: the complete verifier's bound (:func:`shallowcert.verify.verify`);
    ``certified_by`` and ``search``: the bound and the search of the certified radius the
    bracket starts from, the radius whose gap to the exact one is measured (``search`` None:
    the default search at tolerance ``rtol``); ``domain``: the balls are clipped to it;
    ``max_radius``: no counterexample is sought beyond it; ``seed``: of the verifier's attacks.
    """

    time_limit: float
    rtol: float = 0.01
    verifier: str = "alpha-crown"
    certified_by: str = "crown"
    search: SearchSettings | None = None
    domain: tuple[float, float] | None = (0.0, 1.0)
    max_radius: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        positive_float("time_limit", self.time_limit)
        positive_float("rtol", self.rtol)

    def certified_search(self) -> SearchSettings:
        return self.search if self.search is not None else SearchSettings(rtol=self.rtol)


Verifier = Callable[[float, float], VerificationResult]  # (radius, seconds) -> the verifier's answer


def exact_radius(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, settings: ExactSettings, *,
                 device: torch.device | str | None = None) -> ExactRadius:
    """Bracket each point's robust radius (module docstring); ``x`` ``(N, ...)`` in [0, 1],
    ``labels`` ``(N,)``; the verifier runs on ``device`` (default: the model's)."""
    inputs_and_labels(x, labels)
    certified = certified_radius(model, x, labels=labels, method=settings.certified_by, domain=settings.domain,
                                 dtype=torch.float64, settings=settings.certified_search())
    start = certified.radius.double() * (certified.predicted == labels).double()
    hint = adversarial_distance(model, x, labels, lower=start.float())
    with torch.no_grad():
        classes = int(model(x[:1]).shape[1])

    def verifier(center: torch.Tensor, label: int) -> Verifier:
        def check(eps: float, seconds: float) -> VerificationResult:
            prop = robustness_property(center, eps, label, classes, domain=settings.domain)
            return verify(model, prop, timeout=seconds, method=settings.verifier, device=device, seed=settings.seed)
        return check

    results = [_bisect(verifier(x[i].double(), int(labels[i])), x[i].double(), float(start[i]), float(hint[i]),
                       settings) for i in range(len(x))]
    lower, upper, _, seconds = (torch.tensor(column, dtype=torch.float64) for column in zip(*results))
    return ExactRadius(lower, upper, start.cpu(), torch.tensor([r[2] for r in results], dtype=torch.bool),
                       seconds, settings.rtol)


def _bisect(check: Verifier, center: torch.Tensor, lower: float, hint: float,
            settings: ExactSettings) -> tuple[float, float, bool, float]:
    """(lower, upper, settled, seconds) of one point, from the proved radius ``lower`` and the
    counterexample distance ``hint`` (inf: none known)."""
    began = time.monotonic()
    deadline = began + settings.time_limit
    rtol, max_radius = settings.rtol, settings.max_radius
    upper = ceiling = math.inf  # ceiling: the smallest radius the verifier could not decide in its share
    guess = hint if math.isfinite(hint) else max(2 * lower, 1e-3)
    while True:
        remaining = deadline - time.monotonic()
        top = min(upper, ceiling)
        if remaining <= 0 or (math.isfinite(top) and top - lower <= rtol * top):
            break
        if math.isfinite(top):
            eps = (lower + top) / 2
        elif lower >= max_radius:
            break
        else:
            eps = min(guess, max_radius)
        share = remaining if remaining < 2 * MIN_SHARE else max(remaining / 2, MIN_SHARE)
        result = check(eps, share)
        if result.status == "unsat":
            lower = max(lower, eps)
            guess = 2 * eps
        elif result.status == "sat":
            assert result.counterexample is not None  # sat always comes with one
            distance = float((result.counterexample.cpu().double() - center.cpu()).abs().max())
            upper = min(upper, distance)
        else:
            ceiling = eps
    settled = math.isfinite(upper) and upper - lower <= rtol * upper
    return lower, upper, settled, time.monotonic() - began
