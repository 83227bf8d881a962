"""Tests of host.channels.asymmetric: 0->1 and 1->0 rates by stored value."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from host.channels import AsymmetricChannel, BinarySymmetricChannel, read_bits
from host.regions import whole_payload

from .helpers import N_BYTES, SETTINGS, assert_binomial, changed_bits, random_payload, rates

# --------------------------------------------------------------------------- asymmetric

@pytest.mark.parametrize("p01, p10", [(0.02, 0.005), (0.3, 0.08), (0.004, 0.0)])
def test_asym_rates_by_stored_value(p01, p10):
    channel = AsymmetricChannel(p01, p10)
    region = [whole_payload(N_BYTES)]
    n_bits = 8 * N_BYTES
    zeros = np.zeros(N_BYTES, np.uint8)
    _, report = channel.apply(zeros, region, seed=5, trial=0)
    assert report.one_to_zero == 0
    assert_binomial(report.zero_to_one, n_bits, p01)
    ones = np.full(N_BYTES, 0xFF, np.uint8)
    _, report = channel.apply(ones, region, seed=5, trial=1)
    assert report.zero_to_one == 0
    if p10 == 0.0:
        assert report.one_to_zero == 0
    else:
        assert_binomial(report.one_to_zero, n_bits, p10)
    mixed = random_payload(N_BYTES, 8)
    n_ones = int(np.unpackbits(mixed).sum())
    noisy, report = channel.apply(mixed, region, seed=5, trial=2)
    flipped = changed_bits(mixed, noisy)
    stored = np.unpackbits(mixed, bitorder="little")[flipped]
    assert report.zero_to_one == int(np.sum(stored == 0))
    assert report.one_to_zero == int(np.sum(stored == 1))
    assert_binomial(report.zero_to_one, n_bits - n_ones, p01)
    if p10 > 0.0:
        assert_binomial(report.one_to_zero, n_ones, p10)


def test_asym_sweep_scales_both_rates():
    # at sweep rate r the channel is asym(r * P01 / m, r * P10 / m), m = max(P01, P10)
    channel = AsymmetricChannel(0.02, 0.005)
    mixed = random_payload(N_BYTES, 12)
    n_ones = int(np.unpackbits(mixed).sum())
    pattern = channel.pattern(mixed, [whole_payload(N_BYTES)], seed=6, trial=0)
    at = pattern.at(0.01)
    stored = read_bits(mixed, at)
    assert_binomial(int(np.sum(stored == 0)), 8 * N_BYTES - n_ones, 0.01)
    assert_binomial(int(np.sum(stored == 1)), n_ones, 0.0025)
    assert np.isin(at, pattern.at(0.02)).all()


@SETTINGS
@given(data=st.binary(min_size=1, max_size=200), p=rates, seed=st.integers(0, 1000))
def test_asym_with_equal_rates_is_the_bsc(data, p, seed):
    payload = np.frombuffer(data, dtype=np.uint8).copy()
    region = [whole_payload(payload.size)]
    a, _ = AsymmetricChannel(p, p).apply(payload, region, seed=seed, trial=1)
    b, _ = BinarySymmetricChannel(p).apply(payload, region, seed=seed, trial=1)
    np.testing.assert_array_equal(a, b)
