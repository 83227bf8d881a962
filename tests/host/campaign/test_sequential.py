"""Tests of host.campaign.sequential on synthetic accuracy populations with a known mean.

A population: N samples of difficulty d_i = (i + 1/2)/N; trial t draws a severity
s_t ~ Beta(m·k, (1 - m)·k) and classifies sample i correctly iff d_i < s_t. Its full-test-set
accuracy is acc_t = #{i: d_i < s_t}/N, and the mean over trials, the value a full grid
estimates, is exactly mu = mean_i P(s > d_i) = mean_i Beta.sf(d_i) (scipy.stats.beta).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from host.campaign.sequential import Estimate, SequentialRule, decide, next_step, sample_order, two_stage, verdict
from host.errors import FlipLabError
from host.metrics import mean_ci

N = 2000
D = (np.arange(N) + 0.5) / N
SEEDS = 200


def population_mean(m: float, k: float) -> float:
    return float(stats.beta.sf(D, m * k, (1 - m) * k).mean())


def run(m: float, k: float, threshold: float, rule: SequentialRule, seed: int):
    rng = np.random.default_rng([seed, 77])
    severity: list[float] = []
    orders: dict[int, np.ndarray] = {}

    def count(t: int, start: int, stop: int) -> int:
        while len(severity) <= t:
            severity.append(float(rng.beta(m * k, (1 - m) * k)))
        if t not in orders:
            orders[t] = sample_order(seed, t, N)
        return int(np.count_nonzero(D[orders[t][start:stop]] < severity[t]))

    return decide(count, threshold, rule)


RULE = SequentialRule(N, confidence=0.95, ci=0.005, min_trials=8, max_trials=200)


@pytest.mark.parametrize("offset", [-0.012, 0.012])
def test_the_decision_is_right_at_the_stated_confidence(offset):
    # a threshold 0.012 from the population mean (beyond the ±0.005 indifference zone): over
    # 200 seeds, wrong sides are no more frequent than 1 - confidence (one-sided binomial test)
    m, k = 0.95, 400.0
    mu = population_mean(m, k)
    threshold = mu - offset
    wrong = 0
    for seed in range(SEEDS):
        d = run(m, k, threshold, RULE, seed)
        wrong += (d.estimate.mean >= threshold) != (mu >= threshold)
    assert stats.binomtest(wrong, SEEDS, 1 - RULE.confidence,
                           alternative="greater").pvalue > 0.01, wrong


def test_the_stopped_interval_covers_the_full_test_set_mean():
    # the hardest case for stopping: the threshold at the mean itself (the probe runs until the
    # interval is ±ci narrow), and two far ones that stop on a fraction of the samples
    for m, k, shift in [(0.95, 400.0, 0.0), (0.9, 60.0, 0.05), (0.97, 2000.0, -0.03)]:
        mu = population_mean(m, k)
        missed = 0
        fractions = []
        for seed in range(SEEDS):
            d = run(m, k, mu + shift, RULE, seed)
            missed += not d.estimate.low <= mu <= d.estimate.high
            fractions.append(d.estimate.samples / N)
        assert stats.binomtest(missed, SEEDS, 1 - RULE.confidence,
                               alternative="greater").pvalue > 0.01, (m, missed)
        if shift:  # far from the threshold: decided on a fraction of the test set
            assert np.median(fractions) < 0.5


def test_a_far_probe_is_decided_on_few_samples_and_trials():
    d = run(0.5, 50.0, 0.95, RULE, seed=1)
    assert d.verdict == "below" and d.looks == 1
    assert d.estimate.trials == RULE.min_trials and d.estimate.samples == RULE.n0 < N


def test_full_test_set_is_the_plain_student_t_interval():
    # n = N: no sampling variance (finite-population correction 0), the interval is
    # host.metrics.mean_ci of the trial accuracies at the look's level
    correct = np.array([1890, 1901, 1876, 1912, 1899])
    e = two_stage(correct, N, N, 0.99)
    assert e.within == 0.0
    mean, low, high = mean_ci(correct / N, 0.99)
    assert (e.mean, e.low, e.high) == pytest.approx((mean, low, high))


def test_within_variance_is_the_binomial_one_with_the_finite_population_correction():
    # one trial's within variance: y(1-y)/(n-1)·(1-n/N); hand-worked for y = 0.9, n = 101
    e = two_stage(np.array([90.9, 90.9]), 101, 1010, 0.95)
    assert e.within == pytest.approx(0.9 * 0.1 / 100 * (1 - 0.1))
    # equal trial accuracies on a sample are not certainty: the binomial floor keeps a width
    p = (181.8 + 2) / (202 + 4)
    half = stats.t.ppf(0.975, 1) * np.sqrt(p * (1 - p) / 101 * 0.9 / 2)
    assert (e.low, e.high) == pytest.approx((0.9 - half, min(0.9 + half, 1.0)))


def test_all_right_on_a_few_samples_is_not_certainty():
    # 8 trials each right on all of 64 samples: s^2 = 0, the floor p(1-p)(1-n/N)/n holds
    e = two_stage(np.full(8, 64), 64, 10_000, 0.99)
    p = 514 / 516
    half = stats.t.ppf(0.995, 7) * np.sqrt(p * (1 - p) / 64 * (1 - 64 / 10_000) / 8)
    assert e.mean == 1.0 and e.low == pytest.approx(1 - half) and e.high == 1.0


def test_looks_and_level():
    rule = SequentialRule(10_000, confidence=0.95, min_trials=8, max_trials=200)
    # n: 313 -> 626 -> ... -> 10,000 is 5 doublings; T: 8 -> 16 -> ... -> 200 is 5
    assert rule.n0 == 313 and rule.looks() == 11 and rule.designs() == 36
    assert rule.level == pytest.approx(1 - 0.05 / 36)


def test_next_step_follows_the_variance_components():
    rule = SequentialRule(10_000, trial_cost=256)
    # trials all alike (no between variance): only more samples help
    assert next_step(Estimate(0.9, 0.8, 1.0, 8, 313, 0.0, 3e-4), rule) == "samples"
    # large between variance: more trials
    assert next_step(Estimate(0.9, 0.8, 1.0, 8, 313, 1e-2, 3e-4), rule) == "trials"
    # trials at their limit: samples while they dominate the variance, else stop
    assert next_step(Estimate(0.9, 0.8, 1.0, 200, 313, 1e-4, 3e-4), rule) == "samples"
    assert next_step(Estimate(0.9, 0.8, 1.0, 200, 313, 1e-2, 3e-4), rule) is None
    # both at their limits: none
    assert next_step(Estimate(0.9, 0.8, 1.0, 200, 10_000, 1e-2, 0.0), rule) is None


def test_verdicts():
    e = Estimate(0.95, 0.94, 0.96, 8, 100, 0.0, 0.0)
    assert verdict(e, 0.93, 0.005) == "above" and verdict(e, 0.97, 0.005) == "below"
    assert verdict(e, 0.95, 0.011) == "within" and verdict(e, 0.95, 0.005) == "unresolved"


def test_bad_rules():
    with pytest.raises(FlipLabError, match="confidence"):
        SequentialRule(100, confidence=1.0)
    with pytest.raises(FlipLabError, match="min_trials"):
        SequentialRule(100, min_trials=1)
    with pytest.raises(FlipLabError, match="ci"):
        SequentialRule(100, ci=0.0)
