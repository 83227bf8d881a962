"""Tests of host.channels: error models, nested sampling, regions, bit flipping.

Statistical tests are seeded, so each outcome is fixed; ALPHA is the probability that a
correct implementation fails one of them for a randomly chosen seed (two-sided tests).
With about 30 such tests, a correct implementation passes them all for about 97 % of seeds.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from host.channels import (
    DENSE_RATE,
    AsymmetricChannel,
    BinarySymmetricChannel,
    FlipReport,
    NestedPattern,
    RegionLayout,
    StuckAtChannel,
    flip_bits,
    list_channels,
    parse_channel,
    read_bits,
    trial_rng,
    trial_seed,
)
from host.errors import FlipLabError
from host.regions import Region, whole_payload

ALPHA = 1e-3
N_BYTES = 25_000  # 200 000 eligible bits per trial in the statistical tests
SETTINGS = settings(max_examples=40, deadline=None)


def changed_bits(clean: np.ndarray, noisy: np.ndarray) -> np.ndarray:
    """Payload bit positions where two payloads differ (independent of host.channels)."""
    diff = np.unpackbits(np.bitwise_xor(clean, noisy), bitorder="little")
    return np.flatnonzero(diff)


def assert_binomial(k: int, n: int, p: float) -> None:
    result = stats.binomtest(k, n, p)
    assert result.pvalue > ALPHA, f"{k} successes in {n} trials at p={p}: p {result.pvalue:.2e}"


def random_payload(n_bytes: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, n_bytes, dtype=np.uint8)


# --------------------------------------------------------------------------- regions

def test_region_maps_eligible_bits_by_hand():
    # 7-bit fields from bit 3, positions 0 and 6 eligible: fields at 3, 10, 17
    layout = RegionLayout([Region(3, 3, 7, positions=(6, 0))], payload_bits=24)
    assert layout.n_eligible == 6
    assert layout.all_bits().tolist() == [3, 9, 10, 16, 17, 23]


def test_regions_are_taken_in_address_order():
    a = Region(0, 4, 8, positions=(7,), tensor="a")
    b = Region(40, 2, 4, tensor="b")
    layout = RegionLayout([b, a], payload_bits=64)
    assert layout.all_bits().tolist() == [7, 15, 23, 31, 40, 41, 42, 43, 44, 45, 46, 47]
    pl = random_payload(8, 1)
    ch = parse_channel("bsc:0.4")
    np.testing.assert_array_equal(
        ch.pattern(pl, [a, b], seed=2, trial=3).positions,
        ch.pattern(pl, [b, a], seed=2, trial=3).positions,
    )


def test_bsc_at_rate_one_flips_exactly_the_eligible_bits():
    regions = [
        Region(5, 10, 7, positions=(6,), tensor="msb7"),   # 7-bit fields straddle bytes
        Region(80, 6, 8, positions=(0, 7), tensor="ends"),
        Region(200, 3, 16, tensor="all16"),
    ]
    expected = set()
    for r in regions:
        for k in range(r.n_fields):
            for j in r.positions if r.positions is not None else range(r.field_bits):
                expected.add(r.start_bit + k * r.field_bits + j)
    clean = random_payload(40, 7)
    noisy, report = parse_channel("bsc:1").apply(clean, regions, seed=0, trial=0)
    assert set(changed_bits(clean, noisy).tolist()) == expected
    assert report.flips == len(expected) == report.eligible_bits


def test_msb_only_of_8bit_fields():
    clean = random_payload(2000, 3)
    region = Region(8 * 100, 1500, 8, positions=(7,))
    noisy, report = parse_channel("bsc:0.3").apply(clean, [region], seed=5, trial=1)
    flipped = changed_bits(clean, noisy)
    assert report.flips == flipped.size > 0
    assert np.all(flipped % 8 == 7)
    assert flipped.min() >= 800 and flipped.max() < 800 + 1500 * 8
    np.testing.assert_array_equal(clean[:100], noisy[:100])
    np.testing.assert_array_equal(clean[1600:], noisy[1600:])


def test_msb_of_7bit_fields_straddling_bytes():
    n_fields = 800
    clean = np.zeros(n_fields * 7 // 8 + 2, dtype=np.uint8)
    region = Region(3, n_fields, 7, positions=(6,))
    noisy, _ = parse_channel("bsc:0.5").apply(clean, [region], seed=11, trial=0)
    bits = np.unpackbits(noisy, bitorder="little")
    assert bits[:3].sum() == 0 and bits[3 + 7 * n_fields:].sum() == 0
    fields = bits[3: 3 + 7 * n_fields].reshape(n_fields, 7)
    assert fields[:, :6].sum() == 0
    assert 0 < fields[:, 6].sum() < n_fields


@pytest.mark.parametrize(
    "make, word",
    [
        (lambda: Region(-1, 1, 8), "start_bit"),
        (lambda: Region(0, -2, 8), "n_fields"),
        (lambda: Region(0, 1, 0), "field_bits"),
        (lambda: Region(0, 1, 8, positions=(8,)), "outside"),
        (lambda: Region(0, 1, 8, positions=(1, 1)), "repeat"),
        (lambda: Region(0, 1, 8, positions="7"), "positions"),
        (lambda: Region(0.5, 1, 8), "integer"),
        (lambda: Region(True, 1, 8), "integer"),
    ],
)
def test_bad_region(make, word):
    with pytest.raises(FlipLabError, match=word):
        make()


@pytest.mark.parametrize(
    "regions, word",
    [
        ([Region(0, 4, 8), Region(24, 2, 8)], "overlap"),
        ([Region(0, 9, 8)], "only 64 bits"),
        ([(0, 1, 8, None)], "Region"),
    ],
)
def test_bad_region_list(regions, word):
    with pytest.raises(FlipLabError, match=word):
        parse_channel("bsc:0.1").pattern(np.zeros(8, np.uint8), regions, seed=0)


# --------------------------------------------------------------------------- flip_bits

def test_two_flips_in_one_byte_are_both_applied():
    payload = np.zeros(2, dtype=np.uint8)
    flip_bits(payload, np.array([3, 8, 0]))
    assert payload.tolist() == [0b1001, 0b1]


def test_a_bit_listed_twice_flips_back():
    payload = np.array([0b10], dtype=np.uint8)
    flip_bits(payload, np.array([1, 5, 1]))
    assert payload.tolist() == [0b100010]  # bit 1 flipped twice: unchanged


@SETTINGS
@given(
    data=st.binary(min_size=1, max_size=64),
    picks=st.lists(st.integers(0, 10**6), max_size=60),
)
def test_flip_bits_matches_unpacked_xor(data, picks):
    payload = np.frombuffer(data, dtype=np.uint8).copy()
    positions = np.array([p % (payload.size * 8) for p in picks], dtype=np.int64)
    bits = np.unpackbits(payload, bitorder="little")
    for p in positions.tolist():  # reference, one bit at a time
        bits[p] ^= 1
    expected = np.packbits(bits, bitorder="little")
    flip_bits(payload, positions)
    np.testing.assert_array_equal(payload, expected)
    np.testing.assert_array_equal(read_bits(payload, np.arange(payload.size * 8)), bits)


@pytest.mark.parametrize(
    "payload, positions, word",
    [
        (np.zeros(2, np.uint8), np.array([16]), "outside"),
        (np.zeros(2, np.uint8), np.array([-1]), "outside"),
        (np.zeros(2, np.uint16), np.array([0]), "uint8"),
        (np.zeros((2, 2), np.uint8), np.array([0]), "1-D"),
        (np.zeros(2, np.uint8), np.array([0.5]), "integer"),
        ([0, 0], np.array([0]), "uint8"),
    ],
)
def test_flip_bits_bad_input(payload, positions, word):
    with pytest.raises(FlipLabError, match=word):
        flip_bits(payload, positions)


def test_flip_bits_refuses_read_only_payload():
    payload = np.zeros(2, np.uint8)
    payload.flags.writeable = False
    with pytest.raises(FlipLabError, match="read-only"):
        flip_bits(payload, np.array([1]))


def test_flip_report_by_hand():
    payload = np.array([0b0000_0101, 0xFF], dtype=np.uint8)
    report = FlipReport.of(payload, np.array([0, 1, 2, 9]), eligible_bits=16)
    assert (report.flips, report.zero_to_one, report.one_to_zero) == (4, 1, 3)
    assert report.observed_rber == 0.25


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


# --------------------------------------------------------------------------- nesting

rates = st.floats(0.0, 1.0, allow_nan=False)


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


# --------------------------------------------------------------------------- specs and API

@pytest.mark.parametrize(
    "spec, canonical",
    [
        ("bsc:1e-3", "bsc:0.001"),
        (" BSC : 0.5 ", "bsc:0.5"),
        ("bsc:1", "bsc:1"),
        ("asym:0.01,1e-4", "asym:0.01,0.0001"),
        ("stuck:0.001,0.5", "stuck:0.001,0.5,seed=0"),
        ("stuck:0.001, 0.5, seed=9", "stuck:0.001,0.5,seed=9"),
        ("none", "none"),
    ],
)
def test_spec_round_trip(spec, canonical):
    channel = parse_channel(spec)
    assert channel.spec == canonical
    assert parse_channel(canonical) == channel


@pytest.mark.parametrize(
    "spec, word",
    [
        ("", "non-empty"),
        (None, "non-empty"),
        (0.1, "non-empty"),
        ("gauss:0.1", "unknown channel 'gauss'"),
        ("bsc", "takes 1 number, got 0"),
        ("bsc:", "takes 1 number, got 0"),
        ("bsc:0.1,0.2", "takes 1 number, got 2"),
        ("bsc:0.1,", "empty parameter"),
        ("bsc:abc", "not a number"),
        ("bsc:1.5", "outside"),
        ("bsc:-0.1", "outside"),
        ("bsc:nan", "outside"),
        ("bsc:inf", "outside"),
        ("bsc:1e-3\nbsc:2", "one line"),
        ("asym:0.1", "takes 2 numbers, got 1"),
        ("asym:0.1,0.2,0.3", "takes 2 numbers, got 3"),
        ("asym:0.1,2", "P10"),
        ("stuck:0.1", "takes 2 numbers"),
        ("stuck:0.1,0.5,seed=-1", "non-negative integer"),
        ("stuck:0.1,0.5,seed=x", "non-negative integer"),
        ("stuck:0.1,0.5,seed=1,seed=2", "twice"),
        ("stuck:0.1,0.5,dev=1", "unknown keyword 'dev'"),
        ("stuck:seed=1,0.1,0.5", "must follow"),
        ("bsc:0.1,seed=1", "unknown keyword 'seed'"),
        ("none:0.1", "takes 0 numbers"),
    ],
)
def test_bad_spec(spec, word):
    with pytest.raises(FlipLabError) as err:
        parse_channel(spec)
    message = str(err.value)
    assert "\n" not in message
    assert word in message


def test_list_channels_names_every_family():
    assert list_channels() == ["asym:P01,P10", "bram-undervolt[@S][,seed=D]", "bsc:P", "none",
                               "profile:FILE[@S][,seed=D]", "rram-ulp[@S][,seed=D]",
                               "rram-ulp-1t1r[@S][,seed=D]", "stuck:F,S[,seed=D]"]


def test_none_channel_changes_nothing():
    clean = random_payload(100, 1)
    noisy, report = parse_channel("none").apply(clean, [whole_payload(100)], seed=0, trial=0)
    np.testing.assert_array_equal(noisy, clean)
    assert noisy is not clean
    assert report == FlipReport(0, 0, 0, 800)


def test_pattern_rates_are_checked():
    clean = np.zeros(10, np.uint8)
    pattern = parse_channel("bsc:0.1").pattern(clean, [whole_payload(10)], seed=0, trial=0)
    assert isinstance(pattern, NestedPattern) and pattern.rate_max == 0.1
    with pytest.raises(FlipLabError, match="above the pattern's rate_max"):
        pattern.at(0.2)
    with pytest.raises(FlipLabError, match="outside"):
        pattern.at(-0.1)
    with pytest.raises(FlipLabError, match="rate_lo"):
        pattern.between(0.05, 0.01)
    with pytest.raises(FlipLabError, match="rate_max"):
        parse_channel("bsc:0.1").pattern(clean, [whole_payload(10)], seed=0, rate_max=1.5)
    with pytest.raises(FlipLabError, match="payload"):
        parse_channel("bsc:0.1").pattern(clean.astype(np.int8), [whole_payload(10)], seed=0)


@pytest.mark.parametrize("n_flips", [50, 3000, 40_000])  # below and above 1 flip in 16 bits
def test_flip_bits_many_positions_with_repeats(n_flips):
    rng = np.random.default_rng(n_flips)
    payload = rng.integers(0, 256, 3000, dtype=np.uint8)
    positions = rng.integers(0, 8 * 3000, n_flips)  # unsorted, with repeats
    parity = np.bincount(positions, minlength=8 * 3000) % 2
    expected = payload ^ np.packbits(parity.astype(np.uint8), bitorder="little")
    flip_bits(payload, positions)
    np.testing.assert_array_equal(payload, expected)
