"""Statistics that decide the study's claims: spread over seeds and paired tests on test points.

Every model of a run is evaluated on the same test points, and with several seeds every
seed evaluates the same points again. Two models are therefore compared *point by point*
(paired), which is far more sensitive than comparing two accuracies:

* :func:`mean_sd` — mean and sample standard deviation over seeds,
  ``sd = sqrt(sum_s (x_s - mean)^2 / (S - 1))`` (undefined for one seed).
* :func:`mcnemar_exact` — McNemar's exact test for two classifiers on the same points.
  With ``b`` = points only A gets right and ``c`` = points only B gets right, under the
  null hypothesis (equal accuracy) ``b ~ Binomial(b + c, 1/2)`` given the ``b + c``
  discordant points, and the two-sided p-value is
  ``p = min(1, 2 * P[X <= min(b, c)])``, ``X ~ Binomial(b + c, 1/2)`` (``p = 1`` when
  ``b + c = 0``). With several seeds the paired outcomes of all seeds are pooled
  (``b = sum_s b_s``, ``c = sum_s c_s``); the test then treats the ``S x N`` pairs as
  independent, which they are not quite (a point hard for one seed is hard for another),
  so its p-value is somewhat optimistic — the bootstrap below does not assume this.
* :func:`paired_bootstrap` — a percentile bootstrap confidence interval of the mean
  paired difference ``d = a - b`` (accuracy as 0/1, radii in input units, ...). The data
  is an ``S x N`` array (seeds x test points); the estimate is the mean of all ``S * N``
  differences, and each of ``B`` resamples draws ``N`` test points with replacement and
  keeps every seed's difference on a drawn point (points are the resampling unit, seeds
  are pooled; equal weight per seed). The interval is the ``(1 - level) / 2`` and
  ``(1 + level) / 2`` quantiles of the ``B`` resampled means. A seeded generator makes
  it reproducible. It measures the test-point sampling noise of the comparison; the
  spread between seeds shows in the tables' ``± sd``.
* :func:`decide_interval` / :func:`decide_mcnemar` — the verdict: a claim *holds* or
  *fails* only when the interval lies entirely on one side of the claim's threshold (or,
  for McNemar, ``p < alpha`` with the sign of ``b - c``); otherwise it is *undecided*
  (the difference is within the noise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats

ALPHA = 0.05
RESAMPLES = 2000
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class Spread:
    """A quantity over seeds: mean and sample standard deviation (None for one seed)."""

    mean: float
    sd: float | None
    n: int
    integers: bool = False  # every value was an integer (a count): shown with one decimal


def mean_sd(values: Sequence[float]) -> Spread:
    """Mean and sample standard deviation (``ddof = 1``) of ``values`` (one per seed)."""
    data = np.asarray(values, dtype=np.float64)
    if data.ndim != 1 or data.size == 0:
        raise ValueError("mean_sd needs a non-empty sequence of numbers")
    sd = float(data.std(ddof=1)) if data.size > 1 else None
    integers = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values)
    return Spread(float(data.mean()), sd, int(data.size), integers)


def _seeds_by_points(values: np.ndarray | Sequence[float] | Sequence[Sequence[float]]) -> np.ndarray:
    """``values`` as a float64 ``S x N`` array (a vector is one seed)."""
    data = np.asarray(values, dtype=np.float64)
    if data.ndim == 1:
        data = data[None, :]
    if data.ndim != 2 or data.size == 0:
        raise ValueError(f"expected a non-empty (seeds x points) array, got shape {data.shape}")
    return data


@dataclass(frozen=True)
class McNemar:
    """McNemar's exact test of two classifiers on the same points (pooled over seeds)."""

    seeds: int
    points: int        # test points per seed
    only_a: int        # b: pairs A classifies correctly and B does not
    only_b: int        # c: pairs B classifies correctly and A does not
    p_value: float     # two-sided exact binomial p-value

    @property
    def difference(self) -> float:
        """Accuracy of A minus accuracy of B over all pairs: ``(b - c) / (S * N)``."""
        return (self.only_a - self.only_b) / (self.seeds * self.points)


def mcnemar_exact(correct_a: np.ndarray | Sequence[float], correct_b: np.ndarray | Sequence[float]) -> McNemar:
    """McNemar's exact test; ``correct_a`` / ``correct_b`` are 0/1 per (seed, point), same shape."""
    a, b = _seeds_by_points(correct_a) != 0, _seeds_by_points(correct_b) != 0
    if a.shape != b.shape:
        raise ValueError(f"paired outcomes must have the same shape, got {a.shape} and {b.shape}")
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    discordant = only_a + only_b
    p = 1.0 if discordant == 0 else min(1.0, 2.0 * float(stats.binom.cdf(min(only_a, only_b), discordant, 0.5)))
    return McNemar(a.shape[0], a.shape[1], only_a, only_b, p)


@dataclass(frozen=True)
class Interval:
    """A paired bootstrap confidence interval of a mean difference."""

    estimate: float
    low: float
    high: float
    seeds: int
    points: int
    level: float
    resamples: int

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def paired_bootstrap(a: np.ndarray | Sequence[float], b: np.ndarray | Sequence[float], *, level: float = 0.95,
                     resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED, chunk: int = 250) -> Interval:
    """Percentile bootstrap interval of ``mean(a - b)``, resampling test points (see the module
    docstring); ``a`` and ``b`` are ``S x N`` (seeds x points) or length-``N`` vectors."""
    first, second = _seeds_by_points(a), _seeds_by_points(b)
    if first.shape != second.shape:
        raise ValueError(f"paired values must have the same shape, got {first.shape} and {second.shape}")
    if not 0 < level < 1 or resamples < 1:
        raise ValueError("level must lie in (0, 1) and resamples be at least 1")
    per_point = (first - second).mean(axis=0)  # equal weight per seed: mean over seeds, then over points
    n = per_point.size
    rng = np.random.default_rng(seed)
    means = np.concatenate([per_point[rng.integers(0, n, size=(min(chunk, resamples - start), n))].mean(axis=1)
                            for start in range(0, resamples, chunk)])
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return Interval(float(per_point.mean()), float(low), float(high), first.shape[0], n, level, resamples)


def decide_interval(interval: Interval, *, above: float | None = None, below: float | None = None) -> bool | None:
    """Verdict on the claim "difference > ``above``" or "difference <= ``below``" (give one):
    True when the whole interval satisfies it, False when the whole interval contradicts it,
    None (undecided: within noise) otherwise."""
    if (above is None) == (below is None):
        raise ValueError("give exactly one of above= and below=")
    if above is not None:
        return True if interval.low > above else False if interval.high < above else None
    assert below is not None
    return True if interval.high <= below else False if interval.low > below else None


def decide_mcnemar(test: McNemar, *, alpha: float = ALPHA) -> bool | None:
    """Verdict on "A is more accurate than B": True when ``p < alpha`` and ``b > c``, False when
    ``p < alpha`` and ``b < c``, None (undecided) otherwise."""
    if test.p_value >= alpha or test.only_a == test.only_b:
        return None
    return test.only_a > test.only_b


def majority(verdicts: Sequence[bool | None]) -> bool | None:
    """A claim over several comparisons: True when more than half of them hold, False when more
    than half fail, None otherwise (no correction for multiple comparisons)."""
    if sum(v is True for v in verdicts) * 2 > len(verdicts):
        return True
    if sum(v is False for v in verdicts) * 2 > len(verdicts):
        return False
    return None


def signed(value: float, digits: int = 4) -> str:
    """``+0.0031`` / ``-0.0120``: a difference with its sign."""
    return f"{value:+.{digits}f}"


def describe_interval(interval: Interval, *, what: str, digits: int = 4) -> str:
    """One sentence naming the test, its size and its result."""
    return (f"paired bootstrap over {interval.points:,} test points × {interval.seeds} seed"
            f"{'s' if interval.seeds != 1 else ''} (B={interval.resamples:,}): {what} "
            f"{signed(interval.estimate, digits)}, {interval.level:.0%} CI "
            f"[{signed(interval.low, digits)}, {signed(interval.high, digits)}]")


def describe_mcnemar(test: McNemar) -> str:
    p = f"{test.p_value:.2g}" if test.p_value >= 1e-4 else f"{test.p_value:.1e}"
    return (f"McNemar exact test pooled over {test.points:,} test points × {test.seeds} seed"
            f"{'s' if test.seeds != 1 else ''}: only the first right {test.only_a:,}, only the second right "
            f"{test.only_b:,}, p = {p}")


def is_finite_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
