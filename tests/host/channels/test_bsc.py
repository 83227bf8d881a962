"""Tests of host.channels.bsc: flip counts, positions and onset rates against their distributions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from host.channels import DENSE_RATE, parse_channel
from host.regions import whole_payload

from .helpers import ALPHA, N_BYTES, assert_binomial, changed_bits, random_payload

# --------------------------------------------------------------------------- BSC statistics

@pytest.mark.parametrize("p", [1e-5, 1e-3, 0.03, DENSE_RATE, 0.1, 0.5, 0.97])
def test_bsc_flip_count_is_binomial(p):
    clean = random_payload(N_BYTES, 21)
    region = [whole_payload(N_BYTES)]
    channel = parse_channel(f"bsc:{p}")
    total = 0
    for trial in range(5):
        noisy, report = channel.apply(clean, region, seed=42, trial=trial)
        assert report.flips == changed_bits(clean, noisy).size
        total += report.flips
    assert_binomial(total, 5 * 8 * N_BYTES, p)


@pytest.mark.parametrize("p", [2e-3, 0.2])
def test_bsc_positions_are_uniform(p):
    n_bits = 8 * N_BYTES
    clean = np.zeros(N_BYTES, np.uint8)
    trials = 10 if p < 0.01 else 1
    flipped = np.concatenate([
        parse_channel(f"bsc:{p}").pattern(clean, [whole_payload(N_BYTES)], seed=9, trial=t).at(p)
        for t in range(trials)
    ])
    # 40 equal bins of the bit index, and the 8 bit positions within a byte
    by_index = np.bincount(flipped * 40 // n_bits, minlength=40)
    assert stats.chisquare(by_index).pvalue > ALPHA
    by_bit = np.bincount(flipped % 8, minlength=8)
    assert stats.chisquare(by_bit).pvalue > ALPHA


@pytest.mark.parametrize("rate_max", [1e-3, 0.2])
def test_onset_rates_are_uniform_below_rate_max(rate_max):
    # the candidates' u come from several ladder levels (and the dense stage): together they
    # must be exactly U(0, rate_max)
    clean = np.zeros(N_BYTES, np.uint8)
    u = np.concatenate([
        parse_channel("bsc:0").pattern(
            clean, [whole_payload(N_BYTES)], seed=4, trial=t, rate_max=rate_max
        ).rates
        for t in range(20 if rate_max < 0.01 else 1)
    ])
    assert u.size > 2000
    assert stats.kstest(u / rate_max, "uniform").pvalue > ALPHA


def test_trials_are_independent():
    p = 0.1
    clean = np.zeros(N_BYTES, np.uint8)
    ch = parse_channel(f"bsc:{p}")
    a = ch.pattern(clean, [whole_payload(N_BYTES)], seed=1, trial=0).at(p)
    b = ch.pattern(clean, [whole_payload(N_BYTES)], seed=1, trial=1).at(p)
    c = ch.pattern(clean, [whole_payload(N_BYTES)], seed=2, trial=0).at(p)
    assert_binomial(np.intersect1d(a, b).size, 8 * N_BYTES, p * p)
    assert_binomial(np.intersect1d(a, c).size, 8 * N_BYTES, p * p)
