"""Robustness metrics of a campaign: statistics per point, R(x), AUC, failure rate.

Works on the tidy results table of a campaign (one row per trial, ``docs/metrics.md`` lists the
columns) as a pandas DataFrame. A *point* is one (codec, scope, rate); a *curve* is the mean
validation accuracy of one (codec, scope) as a function of the raw bit error rate (RBER) p.
Accuracies are fractions in [0, 1]; rates are probabilities in [0, 1].

Sources (the seed papers, ``docs/decisions.md#sources``; formulas and worked examples in
``docs/metrics.md``):

- R(x), seed 000 (Qin, Sun, Vucinic), sec. III: "the maximum RBER that the average validation
  accuracy is larger than or equal to A·x", A the undistorted model's accuracy; improvement
  factors of table III (R with weight nulling / R without).
- AUC, seed 003 (Hoang, Hanif, Shafique), sec. IV-B: area under the accuracy vs normalised
  fault rate curve by the trapezoid rule, both axes normalised so that 100 % accuracy at every
  fault rate has AUC 1.
- failure rate, seed 002 (Schorn, Guntoro, Ascheid), sec. V-D: the fraction of the originally
  correctly classified samples that the faulty network classifies wrongly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

import numpy as np
import pandas as pd

from host.errors import FlipLabError

POINT = ["codec", "scope", "rate"]
"""The columns that identify one point of a campaign grid."""

PASS_TOLERANCE = 1e-12
"""Mean accuracies within this of x·A count as ≥ x·A (absorbs float rounding of means)."""

Status = Literal["bracketed", "above_grid", "below_grid", "clean_fails", "no_data"]

CurveLike: TypeAlias = pd.DataFrame | pd.Series | Mapping[float, float]


# --------------------------------------------------------------------------- statistics

def _require_columns(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise FlipLabError(f"{what} needs the column(s) {', '.join(missing)}")


def summarise(df: pd.DataFrame, *,
              reference_correct: int | Mapping[str, int] | None = None) -> pd.DataFrame:
    """Statistics of the trial accuracies at each point (codec, scope, rate).

    Args:
        df: results, one row per trial, with at least ``codec``, ``scope``, ``rate``,
            ``accuracy``; ``flips``, ``nulled``, ``corrected``, ``failures`` are averaged
            when present.
        reference_correct: samples the undistorted model classifies correctly (one count,
            or one per codec: activation faults count against each codec's fault-free
            quantised network); when given, ``failure_rate`` (seed 002) is the mean over
            trials of failures / that count.

    Returns:
        One row per point, sorted by codec, scope, rate, with ``n`` (trials), ``mean``,
        ``std`` (sample standard deviation, ddof=1; NaN for one trial), ``median``, ``q1``,
        ``q3`` (25th and 75th percentiles, linear interpolation as numpy and matplotlib's box
        plots), ``min``, ``max`` of the accuracy, and ``<column>_mean`` of the counters.
    """
    _require_columns(df, [*POINT, "accuracy"], "summarise")
    if df.empty:
        raise FlipLabError("summarise: the results table has no rows")
    groups = df.groupby(POINT, sort=True)["accuracy"]
    out = pd.DataFrame({
        "n": groups.count(),
        "mean": groups.mean(),
        "std": groups.std(ddof=1),
        "median": groups.median(),
        "q1": groups.quantile(0.25),
        "q3": groups.quantile(0.75),
        "min": groups.min(),
        "max": groups.max(),
    })
    for column in ("flips", "nulled", "corrected", "failures"):
        if column in df.columns:
            out[f"{column}_mean"] = df.groupby(POINT, sort=True)[column].mean()
    if reference_correct is not None and "failures" in df.columns:
        if isinstance(reference_correct, Mapping):
            missing = sorted(set(df["codec"]) - set(reference_correct))
            if missing:
                raise FlipLabError(f"summarise: no reference count for codec(s) "
                                   f"{', '.join(map(str, missing))}")
            parts = [pd.Series(failure_rate(g["failures"], reference_correct[codec]),
                               index=g.index) for codec, g in df.groupby("codec")]
            rates = pd.concat(parts).reindex(df.index)
        else:
            rates = pd.Series(failure_rate(df["failures"], reference_correct), index=df.index)
        out["failure_rate"] = rates.groupby([df[c] for c in POINT], sort=True).mean()
    return out.reset_index()


def mean_ci(values: Sequence[float] | np.ndarray, confidence: float = 0.95
            ) -> tuple[float, float, float]:
    """Mean of ``values`` and its two-sided Student-t confidence interval.

    ``mean ± t_{(1+confidence)/2, n-1} · s / sqrt(n)`` with s the sample standard deviation
    (ddof=1). With one value the interval is unknown: ``(mean, nan, nan)``.

    Args:
        values: the trial values (e.g. accuracies in [0, 1]); at least one, all finite.
        confidence: coverage of the interval, in (0, 1).

    Returns:
        ``(mean, low, high)``.
    """
    a = np.asarray(values, dtype=float).ravel()
    if a.size == 0:
        raise FlipLabError("mean_ci needs at least one value")
    if not np.all(np.isfinite(a)):
        raise FlipLabError("mean_ci: the values must be finite numbers")
    if not 0.0 < confidence < 1.0:
        raise FlipLabError(f"confidence must be in (0, 1), got {confidence}")
    mean = float(a.mean())
    if a.size < 2:
        return mean, math.nan, math.nan
    from scipy import stats  # here, not at import: scipy.stats costs every command ~0.5 s

    sem = float(stats.sem(a))
    if sem == 0.0:
        return mean, mean, mean
    low, high = stats.t.interval(confidence, a.size - 1, loc=mean, scale=sem)
    return mean, float(low), float(high)


def failure_rate(failures: int | float | pd.Series | np.ndarray, reference_correct: int
                 ) -> float | pd.Series | np.ndarray:
    """Seed 002's failure rate: failures / samples the undistorted model classifies correctly.

    Args:
        failures: samples that the clean model classifies correctly and the variant does not
            (a count or an array of counts, one per trial).
        reference_correct: the number of originally correct samples, ≥ 1.

    Returns:
        The failure rate(s) in [0, 1], same shape as ``failures``.
    """
    if reference_correct is None or int(reference_correct) < 1:
        raise FlipLabError("failure rate needs at least one originally correct sample")
    f = failures if isinstance(failures, pd.Series) else np.asarray(failures, dtype=float)
    if np.any(np.asarray(f) < 0) or np.any(np.asarray(f) > reference_correct):
        raise FlipLabError(f"failures must be in [0, {reference_correct}] (the originally "
                           "correct samples)")
    out = f / float(reference_correct)
    return float(out) if np.ndim(out) == 0 else out


# --------------------------------------------------------------------------- curves

def _one_curve_frame(df: pd.DataFrame, what: str) -> pd.DataFrame:
    _require_columns(df, ["rate", "accuracy"], what)
    for column in ("codec", "scope"):
        if column in df.columns and df[column].nunique() > 1:
            found = ", ".join(map(str, sorted(df[column].unique())))
            raise FlipLabError(f"{what} needs one curve: filter to one {column} "
                               f"(found {found})")
    if df.empty:
        raise FlipLabError(f"{what}: the results table has no rows")
    return df


def mean_curve(df_or_curve: CurveLike) -> pd.Series:
    """The mean accuracy per rate, as a Series indexed by rate (ascending, float).

    Args:
        df_or_curve: the trial rows of one (codec, scope) (columns ``rate``, ``accuracy``),
            or an already averaged curve: a Series indexed by rate, or a mapping rate → mean
            accuracy.
    """
    if isinstance(df_or_curve, pd.DataFrame):
        df = _one_curve_frame(df_or_curve, "a curve")
        curve = df.groupby("rate", sort=True)["accuracy"].mean()
    elif isinstance(df_or_curve, pd.Series):
        curve = df_or_curve.sort_index()
    elif isinstance(df_or_curve, Mapping):
        curve = pd.Series(dict(df_or_curve), dtype=float).sort_index()
    else:
        raise FlipLabError("a curve is a results DataFrame, a Series indexed by rate, "
                           "or a mapping rate -> accuracy")
    curve = pd.Series(np.asarray(curve.to_numpy(), dtype=float),
                      index=pd.Index(np.asarray(curve.index, dtype=float), name="rate"),
                      name="accuracy")
    if curve.empty:
        raise FlipLabError("the curve has no points")
    if curve.index.has_duplicates:
        raise FlipLabError("the curve has the same rate twice")
    if np.any(~np.isfinite(curve.index)) or curve.index.min() < 0 or curve.index.max() > 1:
        raise FlipLabError("curve rates must be in [0, 1]")
    if np.any(~np.isfinite(curve.to_numpy())):
        raise FlipLabError("curve accuracies must be finite numbers")
    return curve


def _check_x(x: float) -> float:
    if not 0.0 <= float(x) <= 1.0:
        raise FlipLabError(f"x must be in [0, 1] (R(x) compares with x·A), got {x}")
    return float(x)


def _check_reference(reference_accuracy: float) -> float:
    a = float(reference_accuracy)
    if not 0.0 < a <= 1.0:
        raise FlipLabError(f"the reference accuracy A must be in (0, 1], got {reference_accuracy}")
    return a


@dataclass(frozen=True)
class Robustness:
    """R(x) of one curve on its tested grid (seed 000), with how to read it.

    Attributes:
        x: the criterion, in [0, 1] (0.99 and 0.95 in the paper).
        threshold: x·A, the accuracy a rate must keep (fraction).
        rber: the grid R(x): the largest tested rate whose mean accuracy is ≥ x·A.
            ``status`` says how much to trust it:
            ``"bracketed"`` – the next tested rate above fails: R(x) lies in [rber, next_rate);
            ``"above_grid"`` – even the largest tested rate passes: rber is that rate and the
            true R(x) is at least that (a lower bound);
            ``"below_grid"`` – only the clean point (rate 0) passes: rber = 0.0, the true R(x)
            lies in [0, next_rate);
            ``"clean_fails"`` – not even the clean point passes (the codec's quantisation alone
            costs more than 1 - x): rber is NaN;
            ``"no_data"`` – no reference accuracy to compare with: rber is NaN.
        monotone: False when some tested rate below ``rber`` fails x·A (the curve crosses the
            threshold more than once; ``rber`` is still the literal definition, the largest
            passing rate, and ``first_failing`` is the smallest failing one).
        next_rate: the smallest tested rate above ``rber`` (it fails); NaN if none.
        first_failing: the smallest tested rate that fails; NaN if none.
        rber_interpolated: the *interpolated* estimate: the rate where the straight line through
            (log p, mean accuracy) of ``rber`` and ``next_rate`` crosses x·A. Only for
            ``"bracketed"`` with rber > 0; NaN otherwise (log p has no 0).
    """

    x: float
    threshold: float
    rber: float
    status: Status
    monotone: bool
    next_rate: float
    first_failing: float
    rber_interpolated: float

    def __float__(self) -> float:
        return self.rber


def _interpolate_log(p1: float, m1: float, p2: float, m2: float, threshold: float) -> float:
    """Rate where the line through (log p1, m1), (log p2, m2) reaches ``threshold``.

    Kept inside [p1, p2] against float rounding (and the ``PASS_TOLERANCE`` of m1).
    """
    t = min(max((m1 - threshold) / (m1 - m2), 0.0), 1.0)
    p = math.exp(math.log(p1) + t * (math.log(p2) - math.log(p1)))
    return float(min(max(p, p1), p2))


def r_at(df_or_curve: CurveLike, x: float, reference_accuracy: float) -> Robustness:
    """Seed 000's robustness R(x) on the tested grid: the largest rate with mean accuracy ≥ x·A.

    Args:
        df_or_curve: one (codec, scope): its trial rows (the mean over trials is taken per
            rate) or its mean curve (see :func:`mean_curve`). The clean row (rate 0) counts as
            a tested rate.
        x: the criterion in [0, 1], e.g. 0.99 or 0.95.
        reference_accuracy: A in (0, 1], the undistorted model's accuracy on the same samples
            (the paper's choice), or the codec's own clean accuracy.

    Returns:
        A :class:`Robustness`; ``float(result)`` is the grid R(x) (``result.rber``).
    """
    x = _check_x(x)
    a = _check_reference(reference_accuracy)
    curve = mean_curve(df_or_curve)
    rates = curve.index.to_numpy()
    passes = curve.to_numpy() >= x * a - PASS_TOLERANCE
    return _robustness(x, x * a, rates, curve.to_numpy(), passes)


def _robustness(x: float, threshold: float, rates: np.ndarray, means: np.ndarray,
                passes: np.ndarray) -> Robustness:
    failing = rates[~passes]
    first_failing = float(failing[0]) if failing.size else math.nan
    if not passes.any():
        return Robustness(x, threshold, math.nan, "clean_fails", True, math.nan, first_failing,
                          math.nan)
    last = int(np.flatnonzero(passes)[-1])
    rber = float(rates[last])
    monotone = bool(passes[: last + 1].all())
    if last == rates.size - 1:
        return Robustness(x, threshold, rber, "above_grid", monotone, math.nan, first_failing,
                          math.nan)
    next_rate = float(rates[last + 1])
    if rber == 0.0:
        return Robustness(x, threshold, 0.0, "below_grid", monotone, next_rate, first_failing,
                          math.nan)
    interp = _interpolate_log(rber, float(means[last]), next_rate, float(means[last + 1]),
                              threshold)
    return Robustness(x, threshold, rber, "bracketed", monotone, next_rate, first_failing,
                      interp)


@dataclass(frozen=True)
class InterpolatedR:
    """The interpolated R(x) estimate with a percentile bootstrap confidence interval.

    Attributes:
        rber_interpolated: log-p linear interpolation between the last passing and the first
            failing grid rate (see :class:`Robustness`); NaN unless the grid R(x) is
            ``"bracketed"``.
        ci_low, ci_high: the bootstrap interval of the same estimate at ``confidence``; a
            resample whose R(x) is not bracketed contributes its grid value (0.0 below the
            grid, the largest rate above it), so an interval touching those values means the
            grid is too short to bound it.
        confidence: coverage in (0, 1).
        n_boot: number of bootstrap resamples.
        grid: the grid R(x) of the full data.
    """

    rber_interpolated: float
    ci_low: float
    ci_high: float
    confidence: float
    n_boot: int
    grid: Robustness


def r_interpolated(df: pd.DataFrame, x: float, reference_accuracy: float, *,
                   confidence: float = 0.95, n_boot: int = 2000, seed: int = 0) -> InterpolatedR:
    """Interpolated R(x) of one (codec, scope) with a bootstrap interval over its trials.

    Each resample draws, independently at every rate, as many trials as were run at that rate
    (with replacement, ``numpy.random.default_rng(seed)``), averages them and computes the
    interpolated R(x) of that mean curve; the interval is the (1 - confidence)/2 and
    (1 + confidence)/2 quantiles of those values.

    Args:
        df: the trial rows of one (codec, scope), columns ``rate``, ``accuracy``.
        x: criterion in [0, 1]; reference_accuracy: A in (0, 1].
        confidence: coverage in (0, 1); n_boot: resamples, ≥ 1; seed: bootstrap seed.
    """
    if not isinstance(df, pd.DataFrame):
        raise FlipLabError("the bootstrap needs the trial rows (a DataFrame), not a mean curve")
    if not 0.0 < confidence < 1.0:
        raise FlipLabError(f"confidence must be in (0, 1), got {confidence}")
    if int(n_boot) < 1:
        raise FlipLabError(f"n_boot must be at least 1, got {n_boot}")
    grid = r_at(df, x, reference_accuracy)
    if grid.status != "bracketed":
        return InterpolatedR(math.nan, math.nan, math.nan, confidence, int(n_boot), grid)
    df = _one_curve_frame(df, "the bootstrap")
    threshold = grid.threshold
    rng = np.random.default_rng(seed)
    per_rate = [g["accuracy"].to_numpy(dtype=float) for _, g in df.groupby("rate", sort=True)]
    rates = np.array(sorted(df["rate"].unique()), dtype=float)
    means = np.empty((int(n_boot), rates.size))
    for j, values in enumerate(per_rate):
        draw = rng.integers(0, values.size, size=(int(n_boot), values.size))
        means[:, j] = values[draw].mean(axis=1)
    estimates = _vector_interpolated(rates, means, threshold)
    low, high = np.quantile(estimates, [(1 - confidence) / 2, (1 + confidence) / 2])
    return InterpolatedR(grid.rber_interpolated, float(low), float(high), confidence,
                         int(n_boot), grid)


def _vector_interpolated(rates: np.ndarray, means: np.ndarray, threshold: float) -> np.ndarray:
    """Interpolated R(x) of each row of ``means`` (one mean curve per row), censored at the
    grid: 0.0 below it, the largest rate above it, NaN if no rate passes."""
    passes = means >= threshold - PASS_TOLERANCE
    any_pass = passes.any(axis=1)
    last = rates.size - 1 - np.argmax(passes[:, ::-1], axis=1)
    out = rates[last].astype(float)
    out[~any_pass] = math.nan
    inner = any_pass & (last < rates.size - 1) & (rates[last] > 0)
    rows = np.flatnonzero(inner)
    if rows.size:
        i = last[rows]
        m1, m2 = means[rows, i], means[rows, i + 1]
        t = np.clip((m1 - threshold) / (m1 - m2), 0.0, 1.0)
        lp1, lp2 = np.log(rates[i]), np.log(rates[i + 1])
        out[rows] = np.clip(np.exp(lp1 + t * (lp2 - lp1)), rates[i], rates[i + 1])
    return out


# --------------------------------------------------------------------------- AUC

def auc(df_or_curve: CurveLike, *, relative_to: float | None = None,
        scale: Literal["linear", "log"] = "linear") -> float:
    """Seed 003's AUC: area under mean accuracy vs normalised fault rate, trapezoid rule.

    ``scale="linear"`` is the paper's: the fault rate axis is p / p_max over [0, p_max] (the
    paper's "fault range from 0 to 1e-5"), so the curve must include the clean point p = 0;
    accuracy is the fraction in [0, 1], so 100 % accuracy at every rate gives AUC = 1.
    ``scale="log"`` (ours, for log-spaced sweeps) uses (log p - log p_min) / (log p_max -
    log p_min) over the positive rates only. ``relative_to`` divides the accuracies by an
    accuracy (e.g. the clean accuracy A), so that "no degradation" gives AUC = 1.

    Args:
        df_or_curve: trial rows of one (codec, scope) or its mean curve.
        relative_to: None (the paper) or an accuracy in (0, 1].
        scale: "linear" or "log".

    Returns:
        The area, in [0, 1] without ``relative_to``.
    """
    curve = mean_curve(df_or_curve)
    rates, acc = curve.index.to_numpy(), curve.to_numpy()
    if relative_to is not None:
        acc = acc / _check_reference(relative_to)
    if scale == "linear":
        if rates[0] != 0.0:
            raise FlipLabError("AUC over [0, p_max] needs the clean point at rate 0")
        if rates.size < 2:
            raise FlipLabError("AUC needs at least one rate above 0")
        u = rates / rates[-1]
    elif scale == "log":
        positive = rates > 0
        rates, acc = rates[positive], acc[positive]
        if rates.size < 2:
            raise FlipLabError("AUC on a log scale needs at least two rates above 0")
        lr = np.log(rates)
        u = (lr - lr[0]) / (lr[-1] - lr[0])
    else:
        raise FlipLabError(f"AUC scale must be 'linear' or 'log', got {scale!r}")
    from scipy import integrate

    return float(integrate.trapezoid(acc, u))


# --------------------------------------------------------------------------- comparisons

def improvement_factor(r: float, r_baseline: float) -> float:
    """Seed 000 table III: R(x) of a codec / R(x) of the baseline (e.g. with / without nulling).

    NaN when either is NaN or the baseline is 0.0 (it tolerates no tested rate, so the ratio
    is unbounded on this grid).
    """
    if math.isnan(r) or math.isnan(r_baseline) or r_baseline == 0.0:
        return math.nan
    return r / r_baseline


def auc_gain(auc_protected: float, auc_baseline: float) -> float:
    """Seed 003's AUC improvement, relative: ``AUC_clip / AUC_base - 1`` (1.7332 is the
    paper's "173.32 % improvement"). NaN when either is NaN or the baseline is 0.0."""
    if math.isnan(auc_protected) or math.isnan(auc_baseline) or auc_baseline == 0.0:
        return math.nan
    return auc_protected / auc_baseline - 1.0


def accuracy_vs_bit_errors(df: pd.DataFrame) -> pd.DataFrame:
    """Seed 000 Fig. 4 (bottom) as a table: accuracy vs number of bit errors in one layer.

    Args:
        df: results with ``scope`` values ``"layer:<name>"`` (other scopes are ignored) and
            the columns ``codec``, ``rate``, ``accuracy``, ``flips``.

    Returns:
        One row per (codec, layer, rate) with ``n`` trials, ``flips_mean`` (mean bit errors
        injected into that layer), ``accuracy_mean`` and ``accuracy_std`` (ddof=1); empty
        when the run has no layer scopes.
    """
    _require_columns(df, ["codec", "scope", "rate", "accuracy", "flips"],
                     "accuracy vs bit errors")
    layers = df[df["scope"].astype(str).str.startswith("layer:")].copy()
    columns = ["codec", "layer", "rate", "n", "flips_mean", "accuracy_mean", "accuracy_std"]
    if layers.empty:
        return pd.DataFrame(columns=columns)
    layers["layer"] = layers["scope"].astype(str).str.slice(len("layer:"))
    g = layers.groupby(["codec", "layer", "rate"], sort=True)
    out = pd.DataFrame({
        "n": g["accuracy"].count(),
        "flips_mean": g["flips"].mean(),
        "accuracy_mean": g["accuracy"].mean(),
        "accuracy_std": g["accuracy"].std(ddof=1),
    }).reset_index()
    return out[columns]
