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


# --------------------------------------------------------------------------- the drawing itself

@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 200_000), q=st.floats(1e-5, 0.9), seed=st.integers(0, 2**32))
def test_geometric_hits_are_the_gap_stream_whatever_the_chunks(n, q, seed):
    """The successes are the running sums of the generator's Geometric(q) numbers taken in
    order, up to n: the same as one draw of many gaps at once (the chunking changes nothing)."""
    from host.channels.sampling import geometric_hits

    hits = geometric_hits(np.random.default_rng(seed), n, q)
    gaps = np.random.default_rng(seed).geometric(q, size=n + 1)
    truth = np.cumsum(gaps) - 1
    assert np.array_equal(hits, truth[truth < n])


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 5000), rate=st.floats(1e-4, 0.06), seed=st.integers(0, 2**32),
       with_mark=st.booleans())
def test_levels_are_merged_deepest_first(n, rate, seed, with_mark):
    """Each bit takes the value (and mark) of the deepest ladder level that marks it, and is
    kept iff that value is below rate_max: checked bit by bit against the levels drawn alone."""
    from host.channels import sampling

    root = np.random.SeedSequence([seed, 1])
    top = sampling.LEVELS - 1
    while top > 0 and sampling.level_rate(top) < rate:
        top -= 1
    truth: dict[int, tuple[float, float]] = {}
    for k in range(sampling.LEVELS - 1, top - 1, -1):  # deepest first: first writer wins
        level = sampling._draw_level(root, k, n, with_mark)
        for j, i in enumerate(level.index.tolist()):
            truth.setdefault(i, (level.u[j], level.mark[j] if with_mark else 0.0))
    kept = sorted(i for i, (u, _) in truth.items() if u < rate)
    cand = sampling.sample_nested(root, n, rate, with_mark=with_mark)
    assert cand.index.tolist() == kept
    assert cand.u.tolist() == [truth[i][0] for i in kept]
    if with_mark:
        assert cand.mark is not None and cand.mark.tolist() == [truth[i][1] for i in kept]


@pytest.mark.parametrize("with_mark", [False, True])
def test_the_union_block_by_block_is_the_union_at_once(monkeypatch, with_mark):
    """Merging the levels a block of bit positions at a time (bounded temporaries) gives the
    same bits, values and marks as one merge of everything, blocks splitting levels anywhere."""
    import host.channels.sampling as sampling

    root = np.random.SeedSequence([11, 4])
    whole = sampling.sample_nested(root, 2_000_000, 0.03, with_mark=with_mark)
    monkeypatch.setattr(sampling, "_UNION_BLOCK", 997)
    blocks = sampling.sample_nested(root, 2_000_000, 0.03, with_mark=with_mark)
    assert whole.index.size > 50_000
    assert np.array_equal(whole.index, blocks.index) and np.array_equal(whole.u, blocks.u)
    assert (whole.mark is None) == (not with_mark)
    if with_mark:
        assert np.array_equal(whole.mark, blocks.mark)
