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
  independent, which they are not (a point hard for one seed is hard for another, and seeds
  differ), so its p-value is optimistic — the two-level bootstrap below accounts for both.
* :func:`paired_bootstrap` — a two-level (seed, point) percentile bootstrap confidence
  interval of the mean paired difference ``d = a - b`` (accuracy as 0/1, radii in input
  units, ...). The data is an ``S x N`` array ``d[s, n]`` (seeds x test points); the estimate
  is the mean of all ``S * N`` differences. Seeds and test points are two sources of
  variance: a model trained with another seed differs, and another draw of test points
  differs, so pooling the ``S * N`` pairs as independent ignores the first. Each of ``B``
  resamples therefore draws ``S`` seeds with replacement, then ``N`` test points with
  replacement, and takes the mean of ``d`` over the drawn seeds and points. Every seed is
  evaluated on the *same* test points (a crossed design), so one draw of points is shared by
  the drawn seeds (Owen 2007's "pigeonhole" bootstrap): drawing points independently per seed
  would treat a hard point as hard for one seed only and understate the point variance. The
  interval is the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the ``B``
  resampled means; a seeded generator makes it reproducible. With one seed it is the usual
  bootstrap over points. With several it errs on the wide side where the data hold no seed or
  point effect: the residual noise is counted at both levels, so on independent noise alone
  its interval is about 1.5 times as wide as the pooled one (3 seeds x 1,000 points) — an
  undecided verdict rather than a wrong one. With a few seeds the seed level is coarse (3
  seeds give 10 distinct seed draws), but not blind to the seeds, as pooling is
  (``levels="pooled"``: the ``S * N`` pairs resampled as independent, kept for comparison).
* :func:`decision_size` — for an undecided claim, roughly how many seeds or points would
  decide it at the effect seen. With per-seed means ``m_s = mean_n d[s, n]`` and per-point
  means ``p_n = mean_s d[s, n]``, the variance of the estimate is about
  ``V = var(m) / S + var(p) / N`` (sample variances). A two-sided interval of half-width
  ``z * sqrt(V)`` (``z`` the normal quantile of ``level``) excludes the threshold when
  ``z * sqrt(V) < |estimate - threshold|``; solving for ``S`` at the present ``N``, and for
  ``N`` at the present ``S``, gives the sizes (None where the other term alone is too wide).
  An order of magnitude, assuming the effect seen is the true one.
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


LEVELS = ("seeds-points", "pooled")


@dataclass(frozen=True)
class Interval:
    """A paired bootstrap confidence interval of a mean difference.

    ``seed_variance`` / ``point_variance``: ``var(m)`` and ``var(p)`` of :func:`decision_size`
    (None when not computed, or for one seed / one point)."""

    estimate: float
    low: float
    high: float
    seeds: int
    points: int
    level: float
    resamples: int
    levels: str = "seeds-points"
    seed_variance: float | None = None
    point_variance: float | None = None

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def _resampled_means(difference: np.ndarray, levels: str, rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` bootstrap means of the ``S x N`` ``difference`` (module docstring)."""
    seeds, n = difference.shape
    if levels == "pooled":
        flat = difference.ravel()
        return np.asarray(flat[rng.integers(0, flat.size, size=(count, flat.size))].mean(axis=1))
    points = rng.integers(0, n, size=(count, n))
    per_seed = difference[:, points].mean(axis=2)  # (S, count): each seed's mean over the drawn points
    weights = rng.multinomial(seeds, np.full(seeds, 1.0 / seeds), size=count) / seeds  # (count, S) drawn seeds
    return np.asarray((weights * per_seed.T).sum(axis=1))


def paired_bootstrap(a: np.ndarray | Sequence[float], b: np.ndarray | Sequence[float], *, level: float = 0.95,
                     resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED, chunk: int = 250,
                     levels: str = "seeds-points") -> Interval:
    """Percentile bootstrap interval of ``mean(a - b)``, resampling seeds, then test points
    (``levels="pooled"``: the pairs as independent; see the module docstring); ``a`` and ``b``
    are ``S x N`` (seeds x points) or length-``N`` vectors."""
    first, second = _seeds_by_points(a), _seeds_by_points(b)
    if first.shape != second.shape:
        raise ValueError(f"paired values must have the same shape, got {first.shape} and {second.shape}")
    if not 0 < level < 1 or resamples < 1:
        raise ValueError("level must lie in (0, 1) and resamples be at least 1")
    if levels not in LEVELS:
        raise ValueError(f"levels must be one of {LEVELS}, got {levels!r}")
    difference = first - second
    rng = np.random.default_rng(seed)
    means = np.concatenate([_resampled_means(difference, levels, rng, min(chunk, resamples - start))
                            for start in range(0, resamples, chunk)])
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    seeds, n = difference.shape
    seed_variance = float(difference.mean(axis=1).var(ddof=1)) if seeds > 1 else None
    point_variance = float(difference.mean(axis=0).var(ddof=1)) if n > 1 else None
    return Interval(float(difference.mean()), float(low), float(high), seeds, n, level, resamples, levels,
                    seed_variance, point_variance)


@dataclass(frozen=True)
class DecisionSize:
    """Roughly the seeds (at the present points) or points (at the present seeds) that would
    decide a claim at the effect seen; None where that alone would not (module docstring)."""

    seeds: int | None
    points: int | None


def decision_size(interval: Interval, threshold: float) -> DecisionSize:
    """Sizes that would make the interval exclude ``threshold`` if the effect seen were true:
    ``S' = var(m) / (g - var(p) / N)`` and ``N' = var(p) / (g - var(m) / S)`` with
    ``g = ((estimate - threshold) / z)^2`` (module docstring); a missing variance (one seed)
    counts as 0 for the other size and leaves its own size unknown (None)."""
    z = float(stats.norm.ppf((1 + interval.level) / 2))
    target = ((interval.estimate - threshold) / z) ** 2
    seed_var, point_var = interval.seed_variance, interval.point_variance

    def needed(own: float | None, other: float | None, other_size: int) -> int | None:
        room = target - (other or 0.0) / other_size
        if own is None or room <= 0:
            return None
        return max(1, math.ceil(own / room))

    return DecisionSize(needed(seed_var, point_var, interval.points), needed(point_var, seed_var, interval.seeds))


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
    test = ("bootstrap of seeds, then test points" if interval.levels == "seeds-points"
            else "bootstrap of pooled (seed, point) pairs")
    return (f"{test}, {interval.points:,} test points × {interval.seeds} seed"
            f"{'s' if interval.seeds != 1 else ''} (B={interval.resamples:,}): {what} "
            f"{signed(interval.estimate, digits)}, {interval.level:.0%} CI "
            f"[{signed(interval.low, digits)}, {signed(interval.high, digits)}]")


def describe_undecided(interval: Interval, threshold: float, *, digits: int = 4) -> str:
    """For an undecided claim: the effect seen and roughly what would decide it (:func:`decision_size`)."""
    size = decision_size(interval, threshold)
    effect = f"the effect seen is {signed(interval.estimate, digits)} against a threshold of {threshold:+g}"
    options = []
    if size.seeds is not None:
        options.append(f"about {size.seeds:,} seeds at {interval.points:,} points")
    if size.points is not None:
        options.append(f"about {size.points:,} points with {interval.seeds} seed{'s' if interval.seeds != 1 else ''}")
    if not options:
        return f"{effect}; neither more seeds nor more points alone would decide it at this effect"
    return f"{effect}; deciding it at this effect would need {' or '.join(options)}"


def describe_mcnemar(test: McNemar) -> str:
    p = f"{test.p_value:.2g}" if test.p_value >= 1e-4 else f"{test.p_value:.1e}"
    return (f"McNemar exact test pooled over {test.points:,} test points × {test.seeds} seed"
            f"{'s' if test.seeds != 1 else ''}: only the first right {test.only_a:,}, only the second right "
            f"{test.only_b:,}, p = {p}")


def is_finite_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
