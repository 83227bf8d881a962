"""Tests of host.channels.sampling: nested patterns, and the same (seed, trial) giving the same bits."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host.channels import BinarySymmetricChannel, StuckAtChannel, parse_channel, trial_rng, trial_seed
from host.errors import FlipLabError
from host.regions import Region, whole_payload

from .helpers import SETTINGS, changed_bits, random_payload, rates

# --------------------------------------------------------------------------- nesting

@SETTINGS
@given(
    n_bytes=st.integers(1, 400),
    seed=st.integers(0, 2**32),
    trial=st.integers(0, 1000),
    r=st.lists(rates, min_size=3, max_size=3),
)
def test_bsc_patterns_are_nested(n_bytes, seed, trial, r):
    lo, hi, top = sorted(r)
    clean = np.zeros(n_bytes, np.uint8)
    region = [whole_payload(n_bytes)]
    pattern = parse_channel("bsc:0").pattern(clean, region, seed=seed, trial=trial, rate_max=top)
    at_lo, at_hi = pattern.at(lo), pattern.at(hi)
    assert np.all(np.diff(at_hi) > 0)
    assert np.isin(at_lo, at_hi).all()
    np.testing.assert_array_equal(pattern.between(lo, hi), np.setdiff1d(at_hi, at_lo))
    assert pattern.count_at(hi) == at_hi.size


@SETTINGS
@given(
    n_bytes=st.integers(1, 400),
    seed=st.integers(0, 2**32),
    r=st.lists(rates, min_size=3, max_size=3),
)
def test_bsc_bits_do_not_depend_on_rate_max(n_bytes, seed, r):
    p, a, b = r[0], max(r), sorted(r)[1]
    p = min(p, b)
    clean = np.zeros(n_bytes, np.uint8)
    region = [whole_payload(n_bytes)]
    ch = parse_channel("bsc:0")
    at_a = ch.pattern(clean, region, seed=seed, trial=3, rate_max=a).at(p)
    at_b = ch.pattern(clean, region, seed=seed, trial=3, rate_max=b).at(p)
    np.testing.assert_array_equal(at_a, at_b)
    # a single rate run alone (apply) gives the same bits as the sweep's pattern
    noisy, _ = BinarySymmetricChannel(p).apply(clean, region, seed=seed, trial=3)
    np.testing.assert_array_equal(changed_bits(clean, noisy), at_a)


@settings(max_examples=25, deadline=None)
@given(
    n_bytes=st.integers(2, 60_000),
    cut=st.floats(0.0, 1.0),
    p=st.sampled_from([1e-4, 3e-3, 0.02, 0.06, 0.3]),
    seed=st.integers(0, 1000),
)
def test_earlier_bits_do_not_depend_on_later_regions(n_bytes, cut, p, seed):
    # up to 480 000 bits: several gap chunks per level, and more than one dense block
    k = max(1, int(cut * n_bytes))
    clean = np.zeros(n_bytes, np.uint8)
    short = BinarySymmetricChannel(p).pattern(clean, [whole_payload(k)], seed=seed, trial=0)
    full = BinarySymmetricChannel(p).pattern(clean, [whole_payload(n_bytes)], seed=seed, trial=0)
    head = full.positions < 8 * k
    np.testing.assert_array_equal(short.positions, full.positions[head])
    np.testing.assert_array_equal(short.rates, full.rates[head])
    stuck = StuckAtChannel(p, 0.5, device=seed)
    pos_short, val_short = stuck.stuck_cells(clean, [whole_payload(k)])
    pos_full, val_full = stuck.stuck_cells(clean, [whole_payload(n_bytes)])
    head = pos_full < 8 * k
    np.testing.assert_array_equal(pos_short, pos_full[head])
    np.testing.assert_array_equal(val_short, val_full[head])


# --------------------------------------------------------------------------- reproducibility

@pytest.mark.parametrize("spec", ["bsc:0.01", "bsc:0.3", "asym:0.05,0.01", "stuck:0.02,0.5"])
def test_same_seed_and_trial_give_the_same_bits(spec):
    clean = random_payload(3000, 5)
    region = [Region(16, 2000, 8, positions=(6, 7))]
    a, ra = parse_channel(spec).apply(clean, region, seed=77, trial=4)
    b, rb = parse_channel(spec).apply(clean, region, seed=77, trial=4)
    np.testing.assert_array_equal(a, b)
    assert ra == rb and ra.flips > 0
    np.testing.assert_array_equal(clean, random_payload(3000, 5))  # input untouched
    if not spec.startswith("stuck"):
        c, _ = parse_channel(spec).apply(clean, region, seed=77, trial=5)
        assert not np.array_equal(a, c)


def test_trial_generator_is_the_documented_one():
    expected = np.random.default_rng(np.random.SeedSequence([12, 34])).random(5)
    np.testing.assert_array_equal(trial_rng(12, 34).random(5), expected)
    assert trial_seed(12, 34).entropy == [12, 34]


@pytest.mark.parametrize("seed, trial", [(-1, 0), (0, -3), (1.5, 0), (True, 0), ("1", 0)])
def test_bad_seed_or_trial(seed, trial):
    with pytest.raises(FlipLabError, match="seed|trial"):
        parse_channel("bsc:0.1").apply(
            np.zeros(4, np.uint8), [whole_payload(4)], seed=seed, trial=trial
        )
