"""Sequential stopping over trials *and* samples: is the mean accuracy at one rate above x·A?

The quantity a grid estimates at a rate p is mu(p), the mean over trials (corrupted models) of
each model's accuracy on the *full* test set of N samples. A probe of ``host robustness``
estimates it with a two-stage sample (docs/campaigns.md#sequential-stopping):

- stage 1: trials t = 0, 1, ..., T-1, each an independent corrupted model (the nested pattern
  of (seed, t));
- stage 2: for each trial, the first n samples of its own random order of the test set (a
  permutation seeded by (seed, t)): a simple random sample without replacement.

With y_t = (samples of trial t's n that it classifies correctly) / n, the estimator is
ybar = mean_t y_t. E[y_t | t] = acc_t (the full-test-set accuracy of model t), so
E[ybar] = mu. Its variance is Var(ybar) = (S_b + E_t[V_t]) / T, where S_b is the variance of
acc_t between trials and V_t = (1 - n/N) * s_t^2 / n the sampling variance of y_t within
trial t (s_t^2 the variance of the 0/1 correctness over the N samples). Because the trials
are independent and the second-stage samples are drawn independently per trial, the sample
variance s^2 of the y_t is an unbiased estimate of S_b + E_t[V_t] (Cochran, *Sampling
Techniques*, 3rd ed., sec. 10.2 and 11.2, first-stage units drawn from an infinite
population): se = s / sqrt(T) covers *both* sources of variance, and the interval is
ybar ± t_{T-1} · se (scipy.stats.t). When n = N the within part is 0 and this is the plain
Student-t interval over trials.

Since Var(y_t) = mu(1 - mu)·f/n + S_b·(1 - f/n) with f = (1 - n/N)·N/(N - 1) <= 1, the
variance used is max(s^2, p(1 - p)(1 - n/N)/n) with p = (C + 2)/(Tn + 4) (Agresti-Coull's
centre, C all right answers): a floor that only matters for few samples whose accuracies
are all 0 or 1, where s^2 would claim certainty.

Looks and confidence. A probe looks at its data after every step and stops as soon as the
interval lies wholly on one side of x·A (``above`` / ``below``) or is narrower than ±ci
(``within``: the mean decides, x·A lies in the indifference zone). Each step doubles either
the trials or the samples per trial, so the data of a look are those of one point (T, n) of
the doubling lattice, the same data whichever path led there (trial t's samples are always
the first n of its order). Every look's interval is computed at level 1 - alpha/K, K the
number of lattice points (:meth:`SequentialRule.designs`; Bonferroni), so the intervals of
*all* points hold together with probability at least ``confidence``: the stopped interval
covers mu and the decision is right (outside the ±ci indifference zone) at the stated
confidence, however the data choose the path and the stopping time. (Each interval is a
Student-t one, so this holds as far as the t approximation does for the mean of T trials.)

Which to double. The estimated within part is w = mean_t y_t(1 - y_t)/(n - 1) · (1 - n/N)
and the between part b = max(s^2 - w, 0). With a cost of ``trial_cost`` sample-inferences per
trial (drawing the pattern, decoding, one executor call) plus one per sample, the cost of a
given variance is least at n* = sqrt(W · trial_cost / b), W = w·n/(1 - n/N) the per-sample
variance (the classic optimum of two-stage sampling, Cochran sec. 10.6). The rule doubles the
samples while n < n*/sqrt(2) and n < N, and the trials otherwise; both decisions read only
the data, never a clock, so a search is reproducible. Once the trials are at their limit, the
samples double only while the sampling part w still exceeds the between-trial part b (halving
w then narrows the variance by more than a quarter); otherwise no number of samples can narrow
the interval much, and the probe stops ``unresolved``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from host.errors import FlipLabError

VERDICTS = ("above", "below", "within", "unresolved")


@dataclass(frozen=True)
class SequentialRule:
    """When a probe stops and how it grows.

    Attributes:
        samples: N, the size of the test set.
        confidence: the probability that every look's interval covers mu (so the stopped one
            does, and the decision is right outside the indifference zone), in (0, 1).
        ci: half-width of the indifference zone around x·A (accuracy fraction).
        min_trials, max_trials: trials at the first look, and at most.
        first_samples: samples per trial at the first look (default: N/32, at least 64).
        trial_cost: cost of one trial besides its samples, in sample-inferences.
    """

    samples: int
    confidence: float = 0.95
    ci: float = 0.005
    min_trials: int = 8
    max_trials: int = 200
    first_samples: int | None = None
    trial_cost: float = 256.0

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise FlipLabError("sequential stopping needs at least one sample")
        if not 0.0 < self.confidence < 1.0:
            raise FlipLabError(f"confidence must be in (0, 1), got {self.confidence}")
        if not self.ci > 0.0:
            raise FlipLabError(f"ci must be > 0 (an accuracy half-width), got {self.ci}")
        if self.min_trials < 2 or self.max_trials < self.min_trials:
            raise FlipLabError(f"need 2 <= min_trials <= max_trials, got {self.min_trials}, "
                               f"{self.max_trials}")
        if self.first_samples is not None and self.first_samples < 1:
            raise FlipLabError(f"first_samples must be >= 1, got {self.first_samples}")

    @property
    def n0(self) -> int:
        """Samples per trial at the first look."""
        n = self.first_samples or max(64, math.ceil(self.samples / 32))
        return min(n, self.samples)

    def doublings(self) -> tuple[int, int]:
        """How often the samples (up to N) and the trials (up to ``max_trials``) can double."""
        grow_n = math.ceil(math.log2(self.samples / self.n0)) if self.samples > self.n0 else 0
        grow_t = math.ceil(math.log2(self.max_trials / self.min_trials)) \
            if self.max_trials > self.min_trials else 0
        return grow_n, grow_t

    def looks(self) -> int:
        """The most looks a probe can take: the first, then one per doubling."""
        return 1 + sum(self.doublings())

    def designs(self) -> int:
        """The (trials, samples per trial) pairs a look can see: every point of the doubling
        lattice, whichever path the data choose through it."""
        grow_n, grow_t = self.doublings()
        return (1 + grow_n) * (1 + grow_t)

    @property
    def level(self) -> float:
        """The two-sided coverage of one look's interval: 1 - (1 - confidence) / designs."""
        return 1.0 - (1.0 - self.confidence) / self.designs()


@dataclass(frozen=True)
class Estimate:
    """The two-stage estimate of mu at one look.

    Attributes:
        mean: ybar, the mean over trials of each trial's accuracy on its samples.
        low, high: the interval at the look's level, within [0, 1] (equal to ``mean`` only
            when every trial ran on all N samples and they agree).
        trials: T.
        samples: n, samples per trial.
        between: estimated variance of the full-test-set accuracy between trials (b).
        within: estimated mean sampling variance of one trial's accuracy (w).
    """

    mean: float
    low: float
    high: float
    trials: int
    samples: int
    between: float
    within: float


def two_stage(correct: np.ndarray, n: int, population: int, level: float) -> Estimate:
    """The estimate from ``correct[t]`` right answers out of ``n`` samples for each trial t
    (the module docstring derives it)."""
    c = np.asarray(correct, dtype=float).ravel()
    if c.size < 2:
        raise FlipLabError("a two-stage estimate needs at least two trials")
    if not 1 <= n <= population:
        raise FlipLabError(f"need 1 <= samples per trial <= {population}, got {n}")
    y = c / n
    mean = float(y.mean())
    s2 = float(y.var(ddof=1))
    fpc = 1.0 - n / population
    within = float(np.mean(y * (1.0 - y))) / (n - 1) * fpc if n > 1 else 0.0
    between = max(s2 - within, 0.0)
    # Var(y_t) = mu(1 - mu)·f/n + S_b·(1 - f/n) >= mu(1 - mu)·f/n (f <= 1): a floor under s^2,
    # with mu taken as Agresti-Coull's (C + 2)/(Tn + 4), for few samples near 0 or 1
    p = (float(c.sum()) + 2.0) / (c.size * n + 4.0)
    var = max(s2, p * (1.0 - p) / n * fpc)
    if var == 0.0:
        return Estimate(mean, mean, mean, c.size, n, between, within)
    from scipy import stats  # here, not at import: scipy costs every command ~0.6 s CPU

    low, high = stats.t.interval(level, c.size - 1, loc=mean, scale=math.sqrt(var / c.size))
    return Estimate(mean, max(float(low), 0.0), min(float(high), 1.0), c.size, n, between,
                    within)


def verdict(est: Estimate, threshold: float, ci: float) -> str:
    """``above`` / ``below`` (the interval lies wholly on that side of ``threshold``),
    ``within`` (narrower than ±ci around a mean near the threshold) or ``unresolved``."""
    if est.low >= threshold:
        return "above"
    if est.high < threshold:
        return "below"
    if (est.high - est.low) / 2 <= ci:
        return "within"
    return "unresolved"


def next_step(est: Estimate, rule: SequentialRule) -> str | None:
    """What the next look doubles: ``"samples"``, ``"trials"``, or None (both at their
    limits: the probe stays unresolved)."""
    n, population = est.samples, rule.samples
    can_n = n < population
    can_t = est.trials < rule.max_trials
    if not (can_n or can_t):
        return None
    if not can_t:  # more samples only while they can still narrow the interval much
        return "samples" if est.within > est.between else None
    if not can_n:
        return "trials"
    per_sample = est.within * n / (1.0 - n / population)
    if est.between <= 0.0:
        return "samples" if per_sample > 0.0 else "trials"
    best = math.sqrt(per_sample * rule.trial_cost / est.between)
    return "samples" if n * math.sqrt(2.0) < best else "trials"


def grow(est: Estimate, step: str, rule: SequentialRule) -> tuple[int, int]:
    """(trials, samples per trial) after ``step``."""
    if step == "samples":
        return est.trials, min(2 * est.samples, rule.samples)
    return min(2 * est.trials, rule.max_trials), est.samples


def sample_order(seed: int, trial: int, population: int) -> np.ndarray:
    """Trial ``trial``'s own random order of the test set: its first n are its samples."""
    return np.random.default_rng([seed, trial, 0x5E9]).permutation(population)


@dataclass(frozen=True)
class Decision:
    """One probe's outcome: the verdict, the estimate at the stopping look, each trial's
    accuracy on its samples, and how many looks it took."""

    verdict: str
    estimate: Estimate
    accuracies: list[float]
    looks: int


def decide(count: Callable[[int, int, int], int], threshold: float,
           rule: SequentialRule) -> Decision:
    """Run one probe: ``count(t, start, stop)`` is the number of samples
    ``order_t[start:stop]`` that trial t classifies correctly; trials and samples per trial
    grow as :func:`next_step` says until the verdict is not ``unresolved`` or both reach their
    limits."""
    trials, n = rule.min_trials, rule.n0
    correct: list[int] = []
    seen: list[int] = []  # samples of each trial counted so far
    for look in range(1, rule.looks() + 1):
        for t in range(trials):
            if t == len(correct):
                correct.append(0)
                seen.append(0)
            if seen[t] < n:
                correct[t] += count(t, seen[t], n)
                seen[t] = n
        est = two_stage(np.asarray(correct), n, rule.samples, rule.level)
        v = verdict(est, threshold, rule.ci)
        step = next_step(est, rule) if v == "unresolved" else None
        if step is None:
            return Decision(v, est, [c / n for c in correct], look)
        trials, n = grow(est, step, rule)
    raise AssertionError("unreachable: looks() bounds the doublings")
