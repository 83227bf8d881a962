"""Tests of host.metrics against hand-worked examples, the seeds' formulas and properties.

Every expected number below is worked out by hand in the comment next to it (or taken from
a paper's table), not computed with the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats

from host.errors import FlipLabError
from host.metrics import (
    Robustness,
    accuracy_vs_bit_errors,
    auc,
    failure_rate,
    improvement_factor,
    mean_ci,
    mean_curve,
    r_at,
    r_interpolated,
    summarise,
)

SETTINGS = settings(max_examples=60, deadline=None)


def trials_frame(curve_trials: dict[float, list[float]], codec: str = "fixed8",
                 scope: str = "model") -> pd.DataFrame:
    """Results rows of one (codec, scope): {rate: [accuracy of each trial]}."""
    rows = [{"codec": codec, "scope": scope, "rate": rate, "trial": t, "accuracy": acc}
            for rate, accs in curve_trials.items() for t, acc in enumerate(accs)]
    return pd.DataFrame(rows)


# A 4-rate table (plus the clean point), A = 0.98:
#   p      0      1e-3   3e-3   1e-2
#   mean   0.975  0.972  0.950  0.900
# x = 0.95: x·A = 0.931  -> 0, 1e-3, 3e-3 pass, 1e-2 fails -> R(0.95) = 3e-3
# x = 0.99: x·A = 0.9702 -> 0, 1e-3 pass, 3e-3 fails        -> R(0.99) = 1e-3
HAND_CURVE = {0.0: 0.975, 1e-3: 0.972, 3e-3: 0.950, 1e-2: 0.900}
HAND_A = 0.98


# --------------------------------------------------------------------------- R(x) on the grid

def test_r_at_hand_worked_table():
    r95 = r_at(HAND_CURVE, 0.95, HAND_A)
    assert r95.rber == 3e-3 and r95.status == "bracketed" and r95.next_rate == 1e-2
    assert math.isclose(r95.threshold, 0.931)
    r99 = r_at(HAND_CURVE, 0.99, HAND_A)
    assert r99.rber == 1e-3 and r99.status == "bracketed" and r99.next_rate == 3e-3
    assert float(r99) == 1e-3 and r99.monotone


def test_r_at_interpolates_on_log_p_by_hand():
    # x = 0.95: between (3e-3, 0.950) and (1e-2, 0.900), threshold 0.931:
    # t = (0.950 - 0.931) / (0.950 - 0.900) = 0.38
    # p = 3e-3 * (1e-2 / 3e-3) ** 0.38 = 3e-3 * e^(0.38 * 1.2039728) = 3e-3 * 1.58012 = 4.7404e-3
    r95 = r_at(HAND_CURVE, 0.95, HAND_A)
    assert r95.rber_interpolated == pytest.approx(4.7404e-3, rel=1e-4)
    # x = 0.99: between (1e-3, 0.972) and (3e-3, 0.950), threshold 0.9702:
    # t = 0.0018 / 0.022 = 0.0818182; p = 1e-3 * 3 ** 0.0818182 = 1e-3 * 1.09400 = 1.0940e-3
    assert r_at(HAND_CURVE, 0.99, HAND_A).rber_interpolated == pytest.approx(1.0940e-3, rel=1e-4)


def test_r_at_takes_the_mean_over_trials():
    # means per rate are those of HAND_CURVE: (0.97 + 0.974) / 2 = 0.972, (0.96+0.94)/2 = 0.95 …
    df = trials_frame({0.0: [0.975], 1e-3: [0.97, 0.974], 3e-3: [0.96, 0.94],
                       1e-2: [0.95, 0.85, 0.90]})
    assert r_at(df, 0.95, HAND_A).rber == 3e-3
    assert r_at(df, 0.99, HAND_A).rber == 1e-3
    assert mean_curve(df).to_dict() == pytest.approx(HAND_CURVE)


def test_r_at_counts_a_mean_exactly_at_the_threshold_as_passing():
    # 0.95 * 0.8 = 0.76; the mean of (0.75, 0.77) is 0.76 up to rounding: passes ("≥")
    df = trials_frame({0.0: [0.8], 1e-3: [0.75, 0.77], 1e-2: [0.5, 0.5]})
    assert r_at(df, 0.95, 0.8).rber == 1e-3


def test_r_at_above_grid_returns_the_largest_rate_with_a_flag():
    r = r_at({0.0: 0.99, 1e-4: 0.99, 1e-3: 0.985}, 0.95, 0.99)
    assert r.status == "above_grid" and r.rber == 1e-3
    assert math.isnan(r.rber_interpolated) and math.isnan(r.next_rate)


def test_r_at_below_grid_returns_zero_with_a_flag():
    # only the clean point passes: R = 0.0 and the true R lies in [0, 1e-4)
    r = r_at({0.0: 0.99, 1e-4: 0.80, 1e-3: 0.50}, 0.95, 0.99)
    assert r.status == "below_grid" and r.rber == 0.0 and r.next_rate == 1e-4
    assert math.isnan(r.rber_interpolated)


def test_r_at_clean_fails_is_nan_not_a_number_that_looks_valid():
    # the codec's clean accuracy 0.90 is already below 0.99 * 0.98
    r = r_at({0.0: 0.90, 1e-4: 0.89}, 0.99, 0.98)
    assert r.status == "clean_fails" and math.isnan(r.rber) and r.first_failing == 0.0


def test_r_at_non_monotone_curve_keeps_the_definition_and_says_so():
    # 1e-3 dips below 0.95 * 1.0, 3e-3 passes again: the largest passing rate is 3e-3
    r = r_at({0.0: 1.0, 1e-4: 0.99, 1e-3: 0.94, 3e-3: 0.96, 1e-2: 0.5}, 0.95, 1.0)
    assert r.rber == 3e-3 and not r.monotone and r.first_failing == 1e-3
    assert r.status == "bracketed" and r.next_rate == 1e-2


def test_r_at_without_the_clean_row_uses_the_tested_rates():
    r = r_at({1e-4: 0.80, 1e-3: 0.50}, 0.95, 0.99)
    assert r.status == "clean_fails" and math.isnan(r.rber)
    assert r_at({1e-4: 0.99, 1e-3: 0.50}, 0.95, 0.99).rber == 1e-4


def test_r_at_refuses_bad_input():
    with pytest.raises(FlipLabError, match="one curve"):
        r_at(pd.concat([trials_frame({0.0: [1.0]}), trials_frame({0.0: [1.0]}, codec="int8")]),
             0.95, 1.0)
    with pytest.raises(FlipLabError, match="x must be"):
        r_at(HAND_CURVE, 1.5, HAND_A)
    with pytest.raises(FlipLabError, match="reference accuracy"):
        r_at(HAND_CURVE, 0.95, 0.0)
    with pytest.raises(FlipLabError, match="rates must be"):
        r_at({-1.0: 0.5}, 0.95, 0.9)
    with pytest.raises(FlipLabError, match="no rows"):
        r_at(trials_frame({}).reindex(columns=["rate", "accuracy"]), 0.95, 0.9)


curves = st.dictionaries(
    st.sampled_from([0.0, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1]),
    st.floats(0.0, 1.0), min_size=1, max_size=10)


@SETTINGS
@given(curve=curves, x1=st.floats(0.0, 1.0), x2=st.floats(0.0, 1.0), a=st.floats(0.05, 1.0))
def test_r_is_non_increasing_in_x(curve, x1, x2, a):
    lo, hi = sorted((x1, x2))
    r_lo, r_hi = r_at(curve, lo, a).rber, r_at(curve, hi, a).rber
    if math.isnan(r_lo):
        assert math.isnan(r_hi)  # nothing passes the lower bar, so nothing passes the higher
    elif not math.isnan(r_hi):
        assert r_hi <= r_lo


@SETTINGS
@given(curve=curves, x=st.floats(0.0, 1.0), a=st.floats(0.05, 1.0))
def test_r_is_the_largest_tested_rate_that_passes(curve, x, a):
    r = r_at(curve, x, a)
    passing = [p for p, m in curve.items() if m >= x * a - 1e-12]
    if not passing:
        assert math.isnan(r.rber)
    else:
        assert r.rber == max(passing)
        if r.status == "bracketed":
            assert r.rber <= r.rber_interpolated <= r.next_rate
            assert curve[r.next_rate] < x * a


# --------------------------------------------------------------------------- bootstrap

def noisy_trials(seed: int, n_trials: int = 10, sd: float = 0.01) -> tuple[pd.DataFrame, float]:
    """Trials around a known curve, linear in log10 p: m(p) = 0.97 - 0.1 * (log10 p + 4).

    With A = 1 and x = 0.95 the true crossing is at log10 p = -4 + 0.2, p = 10**-3.8.
    """
    rng = np.random.default_rng(seed)
    rates = [1e-4, 10**-3.5, 1e-3, 10**-2.5, 1e-2]
    data = {0.0: [0.98]}
    for p in rates:
        data[p] = list(0.97 - 0.1 * (math.log10(p) + 4) + rng.normal(0, sd, n_trials))
    return trials_frame(data), 10**-3.8


def test_bootstrap_is_reproducible_by_seed():
    df, _ = noisy_trials(1)
    a = r_interpolated(df, 0.95, 1.0, n_boot=300, seed=5)
    b = r_interpolated(df, 0.95, 1.0, n_boot=300, seed=5)
    assert (a.ci_low, a.ci_high) == (b.ci_low, b.ci_high)
    assert a.rber_interpolated == r_at(df, 0.95, 1.0).rber_interpolated


def test_bootstrap_without_spread_collapses_to_the_estimate():
    df = trials_frame({0.0: [1.0], 1e-3: [0.96] * 5, 1e-2: [0.90] * 5})
    est = r_interpolated(df, 0.95, 1.0, n_boot=200)
    # t = 0.01 / 0.06 = 1/6: p = 1e-3 * 10 ** (1/6) = 1.46780e-3
    assert est.rber_interpolated == pytest.approx(1.46780e-3, rel=1e-5)
    assert est.ci_low == pytest.approx(est.rber_interpolated)
    assert est.ci_high == pytest.approx(est.rber_interpolated)


def test_bootstrap_interval_covers_the_true_crossing_most_of_the_time():
    # nominal 95 %: out of 40 independent campaigns at least 30 intervals contain the truth
    # (for a correct 95 % interval, P(fewer than 31 of 40) = stats.binom.cdf(30, 40, 0.95) ≈ 1e-5)
    hits = 0
    for seed in range(40):
        df, truth = noisy_trials(seed)
        est = r_interpolated(df, 0.95, 1.0, n_boot=400, seed=seed)
        hits += est.ci_low <= truth <= est.ci_high
    assert hits >= 31


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), sd=st.floats(0.001, 0.03), n=st.integers(3, 12))
def test_bootstrap_interval_contains_the_point_estimate(seed, sd, n):
    df, _ = noisy_trials(seed, n_trials=n, sd=sd)
    est = r_interpolated(df, 0.95, 1.0, n_boot=400, seed=seed)
    assume(not math.isnan(est.rber_interpolated))
    assert est.ci_low <= est.rber_interpolated <= est.ci_high


def test_bootstrap_is_nan_unless_bracketed():
    df = trials_frame({0.0: [1.0], 1e-3: [0.99, 0.98], 1e-2: [0.97, 0.99]})
    est = r_interpolated(df, 0.95, 1.0)
    assert est.grid.status == "above_grid" and math.isnan(est.ci_low)
    with pytest.raises(FlipLabError, match="trial rows"):
        r_interpolated(HAND_CURVE, 0.95, HAND_A)


# --------------------------------------------------------------------------- statistics

def test_summarise_hand_worked_point():
    df = trials_frame({0.0: [0.95], 1e-3: [0.9, 0.8, 0.7, 0.6]})
    df["failures"] = [0, 5, 15, 25, 35]
    s = summarise(df, reference_correct=100).set_index("rate").loc[1e-3]
    # mean 0.75; std = sqrt((0.15² + 0.05² + 0.05² + 0.15²) / 3) = sqrt(0.05 / 3) = 0.1290994
    assert s["n"] == 4 and s["mean"] == pytest.approx(0.75)
    assert s["std"] == pytest.approx(0.1290994, rel=1e-6)
    # sorted 0.6 0.7 0.8 0.9: median 0.75; q1 at position 0.75 -> 0.675; q3 at 2.25 -> 0.825
    assert s["median"] == pytest.approx(0.75)
    assert s["q1"] == pytest.approx(0.675) and s["q3"] == pytest.approx(0.825)
    assert (s["min"], s["max"]) == (0.6, 0.9)
    # failures 5, 15, 25, 35 of 100 originally correct: rates 0.05 … 0.35, mean 0.2
    assert s["failure_rate"] == pytest.approx(0.2) and s["failures_mean"] == 20
    clean = summarise(df).set_index("rate").loc[0.0]
    assert clean["n"] == 1 and math.isnan(clean["std"])


def test_summarise_keeps_points_apart():
    df = pd.concat([trials_frame({1e-3: [0.9, 0.7]}, codec="a"),
                    trials_frame({1e-3: [0.5, 0.3]}, codec="b"),
                    trials_frame({1e-3: [0.1, 0.2]}, codec="a", scope="layer:fc1")])
    s = summarise(df).set_index(["codec", "scope"])["mean"]
    assert s[("a", "model")] == pytest.approx(0.8)
    assert s[("b", "model")] == pytest.approx(0.4)
    assert s[("a", "layer:fc1")] == pytest.approx(0.15)


def test_mean_ci_hand_worked():
    # 1, 2, 3, 4: mean 2.5, s = 1.2909944, s/sqrt(4) = 0.6454972, t(0.975, 3) = 3.1824463
    # half width 2.0542603 -> (0.4457397, 4.5542603)
    mean, low, high = mean_ci([1, 2, 3, 4])
    assert mean == 2.5
    assert low == pytest.approx(0.4457397, rel=1e-6) and high == pytest.approx(4.5542603, rel=1e-6)
    # 90 %: t(0.95, 3) = 2.3533634 -> half width 2.3533634 * 0.6454972 = 1.5190896
    assert mean_ci([1, 2, 3, 4], 0.90)[2] == pytest.approx(4.0190896, rel=1e-6)


def test_mean_ci_edge_cases():
    assert mean_ci([0.7]) == (0.7, pytest.approx(math.nan, nan_ok=True),
                              pytest.approx(math.nan, nan_ok=True))
    assert mean_ci([0.5, 0.5, 0.5]) == (0.5, 0.5, 0.5)
    with pytest.raises(FlipLabError):
        mean_ci([])
    with pytest.raises(FlipLabError):
        mean_ci([0.1, math.nan])
    with pytest.raises(FlipLabError):
        mean_ci([0.1, 0.2], confidence=1.0)


def test_mean_ci_covers_the_true_mean_at_its_confidence():
    rng = np.random.default_rng(3)
    samples = rng.normal(0.8, 0.05, size=(800, 6))
    hits = sum(low <= 0.8 <= high for _, low, high in map(mean_ci, samples))
    assert stats.binomtest(hits, 800, 0.95).pvalue > 1e-3


@SETTINGS
@given(st.lists(st.floats(0.0, 1.0), min_size=2, max_size=30), st.floats(0.5, 0.999))
def test_mean_ci_contains_the_mean(values, confidence):
    mean, low, high = mean_ci(values, confidence)
    assert low <= mean + 1e-12 and mean <= high + 1e-12
    assert mean == pytest.approx(float(np.mean(values)))


def test_failure_rate_hand_worked():
    # 980 originally correct samples, 49 of them now wrong: 49 / 980 = 0.05
    assert failure_rate(49, 980) == 0.05
    assert list(failure_rate(np.array([0, 98, 980]), 980)) == [0.0, 0.1, 1.0]
    with pytest.raises(FlipLabError, match="originally correct"):
        failure_rate(1, 0)
    with pytest.raises(FlipLabError):
        failure_rate(981, 980)


def test_failure_rate_per_codec_reference_hand_worked():
    """Activation faults: each codec's failures over its own fault-free network's correct
    count (fixed8: 50 correct, parity8: 40)."""
    df = pd.DataFrame({"codec": ["fixed8", "fixed8", "parity8", "parity8"],
                       "scope": "model", "rate": 1e-3, "accuracy": 0.5,
                       "failures": [5, 15, 4, 8]})
    out = summarise(df, reference_correct={"fixed8": 50, "parity8": 40}).set_index("codec")
    assert out.loc["fixed8", "failure_rate"] == pytest.approx((5 / 50 + 15 / 50) / 2)  # 0.2
    assert out.loc["parity8", "failure_rate"] == pytest.approx((4 / 40 + 8 / 40) / 2)  # 0.15
    with pytest.raises(FlipLabError, match="no reference count for codec"):
        summarise(df, reference_correct={"fixed8": 50})


# --------------------------------------------------------------------------- AUC

def test_auc_hand_worked_linear():
    # p/p_max = 0, 0.5, 1; accuracy 0.8, 0.6, 0.2:
    # 0.5 * (0.8 + 0.6) / 2 + 0.5 * (0.6 + 0.2) / 2 = 0.35 + 0.2 = 0.55
    assert auc({0.0: 0.8, 0.5e-5: 0.6, 1e-5: 0.2}) == pytest.approx(0.55)


def test_auc_hand_worked_log():
    # log10 p = -4, -3, -1 -> u = 0, 1/3, 1; accuracy 1.0, 0.8, 0.2:
    # (1/3) * 0.9 + (2/3) * 0.5 = 0.3 + 0.33333 = 0.63333 (the clean point is not used)
    curve = {0.0: 1.0, 1e-4: 1.0, 1e-3: 0.8, 1e-1: 0.2}
    assert auc(curve, scale="log") == pytest.approx(0.633333, rel=1e-5)


@SETTINGS
@given(st.lists(st.floats(1e-7, 0.5), min_size=1, max_size=12, unique=True))
def test_auc_of_the_ideal_curve_is_one(rates):
    curve = {0.0: 1.0, **{p: 1.0 for p in rates}}
    assert auc(curve) == pytest.approx(1.0)
    # and a codec that never degrades, relative to its own clean accuracy
    assert auc({p: 0.8 for p in curve}, relative_to=0.8) == pytest.approx(1.0)


@SETTINGS
@given(st.lists(st.floats(1e-7, 0.5), min_size=1, max_size=12, unique=True))
def test_auc_of_a_linear_decline_is_a_half(rates):
    # accuracy 1 - p/p_max: the trapezoid rule is exact on a straight line, area 1/2
    p_max = max(rates)
    curve = {0.0: 1.0, **{p: 1.0 - p / p_max for p in rates}}
    assert auc(curve) == pytest.approx(0.5)


def test_auc_needs_its_range():
    with pytest.raises(FlipLabError, match="clean point"):
        auc({1e-4: 1.0, 1e-3: 0.5})
    with pytest.raises(FlipLabError, match="two rates"):
        auc({0.0: 1.0, 1e-3: 0.5}, scale="log")
    with pytest.raises(FlipLabError, match="scale"):
        auc(HAND_CURVE, scale="sqrt")


# --------------------------------------------------------------------------- comparisons

@pytest.mark.parametrize("with_nulling, without, printed", [
    # seed 000 table III: R with weight nulling / R without, as printed in the paper
    (0.025, 0.006, 4.2), (0.003, 0.0003, 10), (4e-4, 1e-5, 40), (1.5e-4, 2e-7, 750),
    (0.034, 0.012, 2.8), (0.006, 0.001, 6), (9e-4, 2e-5, 45), (2.5e-4, 1e-6, 250),
])
def test_improvement_factor_reproduces_table_iii(with_nulling, without, printed):
    assert float(f"{improvement_factor(with_nulling, without):.2g}") == printed


def test_improvement_factor_is_undefined_against_a_zero_baseline():
    assert math.isnan(improvement_factor(1e-3, 0.0))
    assert math.isnan(improvement_factor(math.nan, 1e-3))


def test_accuracy_vs_bit_errors_hand_worked():
    rows = [
        ("layer:conv1", 1e-3, 0, 0.9, 2), ("layer:conv1", 1e-3, 1, 0.7, 4),
        ("layer:fc1", 1e-3, 0, 0.5, 40), ("layer:fc1", 1e-3, 1, 0.6, 60),
        ("model", 1e-3, 0, 0.1, 1000),
    ]
    df = pd.DataFrame(rows, columns=["scope", "rate", "trial", "accuracy", "flips"])
    df["codec"] = "fixed8"
    table = accuracy_vs_bit_errors(df).set_index("layer")
    assert list(table.index) == ["conv1", "fc1"]  # the whole-model scope is not a layer
    assert table.loc["conv1", "flips_mean"] == 3 and table.loc["fc1", "flips_mean"] == 50
    assert table.loc["conv1", "accuracy_mean"] == pytest.approx(0.8)
    assert table.loc["fc1", "accuracy_std"] == pytest.approx(math.sqrt(0.005))
    assert accuracy_vs_bit_errors(df[df["scope"] == "model"]).empty


def test_robustness_is_a_float():
    r = r_at(HAND_CURVE, 0.95, HAND_A)
    assert isinstance(r, Robustness) and float(r) == r.rber
