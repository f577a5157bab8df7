"""The statistics behind the claims: known cases, a hand-computed p-value, coverage, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats

from shallowcert.report.stats import (Interval, decide_interval, decide_mcnemar, decision_size, describe_undecided,
                                      majority, mcnemar_exact, mean_sd, paired_bootstrap)


def test_mean_and_sample_standard_deviation() -> None:
    spread = mean_sd([1.0, 2.0, 4.0])
    assert spread.mean == pytest.approx(7 / 3) and spread.n == 3
    assert spread.sd == pytest.approx(np.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2))
    assert mean_sd([0.5]).sd is None


def test_mcnemar_p_value_by_hand() -> None:
    # 8 points only A gets right, 2 only B, 5 both, 3 neither: p = 2 * P[Bin(10, 1/2) <= 2] = 2 * 56 / 1024
    a = np.array([1] * 8 + [0] * 2 + [1] * 5 + [0] * 3)
    b = np.array([0] * 8 + [1] * 2 + [1] * 5 + [0] * 3)
    test = mcnemar_exact(a, b)
    assert (test.only_a, test.only_b) == (8, 2)
    assert test.p_value == pytest.approx(112 / 1024)
    assert test.p_value == pytest.approx(scipy_stats.binomtest(8, 10, 0.5).pvalue)
    assert test.difference == pytest.approx(6 / 18)
    assert decide_mcnemar(test) is None  # p = 0.109: not significant
    assert mcnemar_exact([1] * 10, [0] * 10).p_value == pytest.approx(2 / 1024)
    assert decide_mcnemar(mcnemar_exact([0] * 10, [1] * 10)) is False


def test_mcnemar_pools_the_seeds() -> None:
    a = np.array([[1, 1, 0, 1], [1, 0, 0, 1]])
    b = np.array([[0, 1, 0, 0], [1, 1, 0, 0]])
    test = mcnemar_exact(a, b)
    assert (test.seeds, test.points, test.only_a, test.only_b) == (2, 4, 3, 1)
    assert test.p_value == pytest.approx(2 * (1 + 4) / 16)


def test_identical_models_are_undecided() -> None:
    rng = np.random.default_rng(1)
    correct = rng.random((3, 500)) < 0.8
    radius = rng.random((3, 500)) * 0.05
    assert decide_mcnemar(mcnemar_exact(correct, correct)) is None
    assert mcnemar_exact(correct, correct).p_value == 1.0
    interval = paired_bootstrap(radius, radius)
    assert interval.contains(0.0) and interval.estimate == 0.0
    assert decide_interval(interval, above=0.0) is None


def test_noise_alone_is_undecided_and_a_clear_gap_is_decided() -> None:
    rng = np.random.default_rng(2)
    a = rng.random((2, 1000)) < 0.80
    b = rng.random((2, 1000)) < 0.80  # same accuracy, independent errors
    assert decide_interval(paired_bootstrap(a, b), above=0.0) is None
    assert decide_mcnemar(mcnemar_exact(a, b)) is None
    better = rng.random((2, 1000)) < 0.95
    assert decide_mcnemar(mcnemar_exact(better, b)) is True
    assert decide_mcnemar(mcnemar_exact(b, better)) is False
    interval = paired_bootstrap(better, b)
    assert interval.low > 0.1 and decide_interval(interval, above=0.0) is True
    assert decide_interval(paired_bootstrap(b, better), above=0.0) is False


def test_bootstrap_interval_covers_the_true_mean_difference() -> None:
    rng = np.random.default_rng(3)
    true_difference, trials = 0.3, 200
    hits = 0
    for trial in range(trials):
        a = rng.normal(1.0 + true_difference, 1.0, size=(2, 150))
        b = rng.normal(1.0, 1.0, size=(2, 150))
        hits += paired_bootstrap(a, b, resamples=1000, seed=trial).contains(true_difference)
    assert 0.89 <= hits / trials <= 0.99, hits / trials  # nominal 95%


def test_bootstrap_is_deterministic_given_its_seed() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.random(300), rng.random(300)
    assert paired_bootstrap(a, b, seed=7) == paired_bootstrap(a, b, seed=7)
    assert paired_bootstrap(a, b, seed=7) != paired_bootstrap(a, b, seed=8)
    assert paired_bootstrap(a, b, resamples=2000).resamples == 2000


def test_bootstrap_rejects_unpaired_data() -> None:
    with pytest.raises(ValueError, match="same shape"):
        paired_bootstrap(np.zeros((2, 10)), np.zeros((2, 11)))
    with pytest.raises(ValueError, match="same shape"):
        mcnemar_exact(np.zeros(10), np.zeros(9))


@pytest.mark.parametrize("low, high, expected", [(0.001, 0.008, True), (-0.002, 0.004, True), (0.004, 0.02, None),
                                                 (0.012, 0.03, False), (0.0, 0.01, True)])
def test_decision_against_a_margin(low: float, high: float, expected: bool | None) -> None:
    # the pruning claim: accuracy drop at most 0.01
    interval = Interval((low + high) / 2, low, high, 1, 100, 0.95, 2000)
    assert decide_interval(interval, below=0.01) is expected


def test_majority_of_comparisons() -> None:
    assert majority([True, True, None]) is True
    assert majority([True, False, None]) is None
    assert majority([False, False, True]) is False
    assert majority([None, None]) is None


def _seeded_differences(seed_effects: list[float], points: int, *, seed: int, point_sd: float = 0.3,
                        ) -> tuple[np.ndarray, np.ndarray]:
    """``a`` and ``b`` (seeds x points) whose differences are a per-seed effect, a per-point effect
    shared by the seeds (the same test points) and noise."""
    rng = np.random.default_rng(seed)
    point_effect = rng.normal(0.0, point_sd, size=points)
    b = rng.normal(0.0, 1.0, size=(len(seed_effects), points))
    a = b + np.asarray(seed_effects)[:, None] + point_effect[None, :] + rng.normal(0.0, 0.3, size=b.shape)
    return a, b


def test_two_level_bootstrap_is_wider_than_pooling_when_seeds_disagree() -> None:
    a, b = _seeded_differences([0.25, 0.0, -0.1], 1000, seed=5)
    two_level = paired_bootstrap(a, b)
    pooled = paired_bootstrap(a, b, levels="pooled")
    assert two_level.estimate == pytest.approx(pooled.estimate)
    assert two_level.high - two_level.low > 3 * (pooled.high - pooled.low)
    assert two_level.contains(0.0) and not pooled.contains(0.0)  # pooling would call this effect decided
    assert decide_interval(pooled, above=0.0) is True and decide_interval(two_level, above=0.0) is None
    # seeds that agree and independent points: wider only by the pigeonhole's over-count of the noise
    a, b = _seeded_differences([0.05, 0.05, 0.05], 1000, seed=6, point_sd=0.0)
    ratio = np.ptp([paired_bootstrap(a, b).low, paired_bootstrap(a, b).high]) / np.ptp(
        [paired_bootstrap(a, b, levels="pooled").low, paired_bootstrap(a, b, levels="pooled").high])
    assert 1.0 < ratio < 1.7, ratio
    with pytest.raises(ValueError, match="levels"):
        paired_bootstrap(a, b, levels="seeds")


def test_one_seed_is_the_bootstrap_over_points() -> None:
    rng = np.random.default_rng(7)
    a, b = rng.random(400), rng.random(400)
    assert paired_bootstrap(a, b) == paired_bootstrap(a[None, :], b[None, :])
    interval = paired_bootstrap(a, b)
    assert interval.seed_variance is None and interval.point_variance == pytest.approx(np.var(a - b, ddof=1))


def test_decision_size_says_how_many_points_decide_an_effect() -> None:
    rng = np.random.default_rng(8)

    def draw(points: int) -> Interval:
        return paired_bootstrap(0.03 + rng.normal(0.0, 0.3, size=points), np.zeros(points))

    small = draw(300)
    assert decide_interval(small, above=0.0) is None
    size = decision_size(small, 0.0)
    assert size.seeds is None and size.points is not None and size.points > 300
    decided = sum(decide_interval(draw(2 * size.points), above=0.0) is True for _ in range(10))
    undecided = sum(decide_interval(draw(size.points // 4), above=0.0) is None for _ in range(10))
    assert decided >= 8 and undecided >= 6
    assert f"about {size.points:,} points with 1 seed" in describe_undecided(small, 0.0)


def test_decision_size_with_seeds_that_disagree_asks_for_seeds() -> None:
    a, b = _seeded_differences([0.25, 0.0, -0.1], 1000, seed=5)
    interval = paired_bootstrap(a, b)
    size = decision_size(interval, 0.0)
    assert size.seeds is not None and size.seeds > 3
    assert size.points is None  # with 3 seeds that disagree this much, more points alone cannot decide
    text = describe_undecided(interval, 0.0)
    assert f"about {size.seeds:,} seeds at 1,000 points" in text and "+0.0" in text
    assert "neither" in describe_undecided(Interval(0.0, -1.0, 1.0, 3, 100, 0.95, 2000, "seeds-points", 1.0, 1.0), 0.0)
