"""Tests of host.channels.stuck: stuck-at cells, fixed by the device seed."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from host.channels import StuckAtChannel, parse_channel
from host.regions import Region, whole_payload

from .helpers import N_BYTES, SETTINGS, assert_binomial, changed_bits, random_payload, rates

# --------------------------------------------------------------------------- stuck-at

@pytest.mark.parametrize("fraction, share", [(0.01, 0.3), (0.2, 0.7)])
def test_stuck_fraction_and_share(fraction, share):
    channel = StuckAtChannel(fraction, share, device=3)
    clean = np.zeros(N_BYTES, np.uint8)
    positions, values = channel.stuck_cells(clean, [whole_payload(N_BYTES)])
    assert np.all(np.diff(positions) > 0)
    assert_binomial(positions.size, 8 * N_BYTES, fraction)
    assert_binomial(int(values.sum()), positions.size, share)


def test_stuck_cells_are_the_same_on_every_trial_and_read():
    channel = parse_channel("stuck:0.05,0.5,seed=7")
    clean = random_payload(4000, 2)
    region = [Region(0, 4000, 8)]
    first, report = channel.apply(clean, region, seed=0, trial=0)
    for seed, trial in [(0, 1), (1, 0), (123, 456)]:
        again, _ = channel.apply(clean, region, seed=seed, trial=trial)
        np.testing.assert_array_equal(again, first)
    reread, rereport = channel.apply(first, region, seed=0, trial=0)
    np.testing.assert_array_equal(reread, first)  # stuck memory reads the same again
    assert rereport.flips == 0
    other, _ = parse_channel("stuck:0.05,0.5,seed=8").apply(clean, region, seed=0, trial=0)
    assert not np.array_equal(other, first)


def test_stuck_cells_read_their_value_and_only_differing_ones_flip():
    channel = StuckAtChannel(0.1, 0.4, device=1)
    clean = random_payload(5000, 4)
    region = [Region(8, 4000, 9, positions=(0, 4, 8))]
    positions, values = channel.stuck_cells(clean, region)
    noisy, report = channel.apply(clean, region, seed=0, trial=0)
    noisy_bits = np.unpackbits(noisy, bitorder="little")
    clean_bits = np.unpackbits(clean, bitorder="little")
    np.testing.assert_array_equal(noisy_bits[positions], values)
    differs = positions[clean_bits[positions] != values]
    np.testing.assert_array_equal(changed_bits(clean, noisy), differs)
    assert report.zero_to_one == int(np.sum(values[clean_bits[positions] != values] == 1))
    assert 0 < report.flips < positions.size


def test_stuck_cells_holding_their_value_are_not_flipped():
    region = [whole_payload(3000)]
    ones = np.full(3000, 0xFF, np.uint8)
    noisy, report = StuckAtChannel(0.2, 1.0).apply(ones, region, seed=0, trial=0)
    assert report.flips == 0 and np.array_equal(noisy, ones)
    zeros = np.zeros(3000, np.uint8)
    positions, _ = StuckAtChannel(0.2, 1.0).stuck_cells(zeros, region)
    _, report = StuckAtChannel(0.2, 1.0).apply(zeros, region, seed=0, trial=0)
    assert report.flips == report.zero_to_one == positions.size > 0


@SETTINGS
@given(f=st.lists(rates, min_size=2, max_size=2), share=rates, device=st.integers(0, 100))
def test_stuck_maps_are_nested_in_fraction(f, share, device):
    lo, hi = sorted(f)
    payload = np.zeros(300, np.uint8)
    region = [whole_payload(300)]
    pos_lo, val_lo = StuckAtChannel(lo, share, device).stuck_cells(payload, region)
    pos_hi, val_hi = StuckAtChannel(hi, share, device).stuck_cells(payload, region)
    inside = np.isin(pos_hi, pos_lo)
    np.testing.assert_array_equal(pos_hi[inside], pos_lo)
    np.testing.assert_array_equal(val_hi[inside], val_lo)
