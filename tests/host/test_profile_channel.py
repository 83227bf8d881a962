"""host.channels.profile: replaying a profile (fitted or preset) as a channel.

Truth: the profile's own numbers. Per-position flip counts at scale s are Binomial(n, s * rate)
(scipy binomtest, alpha = 0.001); patterns are nested in the rate; the permanent cells are the
same in every trial of a device seed; fitting dumps of the replay gives the profile back.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest

from host.channels import parse_channel
from host.channels.presets import PRESETS
from host.channels.profile import ProfileChannel
from host.errors import FlipLabError
from host.inject import inject
from host.profile import Profile, characterize, profile_of, write_profile
from host.regions import Region

ALPHA = 0.001
N_BYTES = 1 << 17


def payload(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, N_BYTES, dtype=np.uint8)


def regions() -> list[Region]:
    return [Region(0, N_BYTES, 8, tensor="w")]


# MSB first: the MSB errs 8x more than the others, 1->0 three times more than 0->1
POSITIONS = {8: ((0.008,) + (0.001,) * 7, (0.024,) + (0.003,) * 7)}
TRANSIENT = Profile(transient_p01=0.001875, transient_p10=0.005625, positions=POSITIONS)


def per_position_counts(pl: np.ndarray, flips: np.ndarray):
    bits = np.unpackbits(pl, bitorder="little")
    stored = bits[flips]
    j = flips % 8
    zeros = np.bincount(np.flatnonzero(bits == 0) % 8, minlength=8)
    ones = np.bincount(np.flatnonzero(bits == 1) % 8, minlength=8)
    return (np.bincount(j[stored == 0], minlength=8), zeros,
            np.bincount(j[stored == 1], minlength=8), ones)


@pytest.mark.parametrize("scale", [0.5, 2.0])
def test_per_position_rates_scale_with_s(scale):
    pl = payload()
    ch = ProfileChannel(TRANSIENT, scale)
    pat = ch.pattern(pl, regions(), seed=1, trial=0)
    up, zeros, down, ones = per_position_counts(pl, pat.at(ch.rate))
    p01 = np.array(POSITIONS[8][0][::-1]) * scale  # index = position j (0 = LSB)
    p10 = np.array(POSITIONS[8][1][::-1]) * scale
    for j in range(8):
        assert binomtest(int(up[j]), int(zeros[j]), p01[j]).pvalue > ALPHA
        assert binomtest(int(down[j]), int(ones[j]), p10[j]).pvalue > ALPHA


def test_rate_is_scale_times_reference_and_with_rate_inverts_it():
    ch = ProfileChannel(TRANSIENT, 2.0)
    assert ch.rate == pytest.approx(2.0 * 0.5 * (0.001875 + 0.005625))
    assert ch.with_rate(ch.rate).scale == pytest.approx(2.0)
    assert parse_channel(ch.spec.replace("profile", "rram-ulp")).rate == pytest.approx(0.066)


def test_patterns_are_nested_and_reproducible():
    pl = payload(1)
    ch = parse_channel("bram-undervolt@4,seed=2")
    p = ch.pattern(pl, regions(), seed=3, trial=1, rate_max=0.01)
    lo, hi = p.at(0.001), p.at(0.004)
    assert lo.size > 0 and np.isin(lo, hi).all() and hi.size > lo.size
    again = ch.pattern(pl, regions(), seed=3, trial=1, rate_max=0.004)
    assert np.array_equal(again.at(0.004), hi)
    noisy, report = ch.apply(pl, regions(), seed=3, trial=1)
    flips = np.flatnonzero(np.unpackbits(noisy ^ pl, bitorder="little"))
    assert np.array_equal(flips, p.at(ch.rate))


def test_permanent_cells_are_the_same_in_every_trial_of_a_device():
    pl = payload(2)
    ch = parse_channel("bram-undervolt@10,seed=7")
    a = ch.pattern(pl, regions(), seed=0, trial=0).at(ch.rate)
    b = ch.pattern(pl, regions(), seed=9, trial=5).at(ch.rate)
    assert a.size > 50 and np.array_equal(a, b)
    fresh = parse_channel("bram-undervolt@10,seed=7")  # no cached map: the same cells
    assert np.array_equal(fresh.pattern(pl, regions(), seed=4, trial=2).at(ch.rate), a)
    other = parse_channel("bram-undervolt@10,seed=8").pattern(pl, regions(), seed=0).at(ch.rate)
    assert not np.array_equal(a, other)
    # bram faults are 1 -> 0 only
    assert (np.unpackbits(pl, bitorder="little")[a] == 1).all()


def test_transient_cells_change_between_trials():
    pl = payload(3)
    ch = parse_channel("rram-ulp@0.1")
    a = ch.pattern(pl, regions(), seed=0, trial=0).at(ch.rate)
    b = ch.pattern(pl, regions(), seed=0, trial=1).at(ch.rate)
    assert binomtest(a.size, N_BYTES * 8, 0.0033).pvalue > ALPHA
    assert np.intersect1d(a, b).size < a.size // 10


def test_fit_of_replayed_dumps_gives_the_profile_back(tmp_path):
    from tests.host.test_diff import image_of

    rng = np.random.default_rng(0)
    g = image_of([("w", rng.normal(size=40000).astype(np.float32), "fixed8")])
    mixed = Profile(transient_p01=0.002, transient_p10=0.002, permanent_p01=0.0,
                    permanent_p10=0.004, block_bytes=512, block_k=math.inf)
    ch = ProfileChannel(mixed, 1.0, device=3)
    dumps = [inject(g, ch, seed=1, trial=t)[0] for t in range(3)]
    doc = characterize(g, dumps, block_bytes=512)
    fit = doc["permanent"]["p10"]
    # a permanent cell is also wrong when transient hits it; the fit counts cells wrong in all
    # three reads: permanent ones, plus transient ones with probability p**3 (negligible)
    assert fit["low"] <= 0.004 <= fit["high"]
    tr = doc["transient"]["p01"]
    assert tr["low"] <= 0.002 <= tr["high"]
    path = tmp_path / "chip.profile.toml"
    write_profile(doc, path)
    replay = parse_channel(f"profile:{path}@2,seed=3")
    assert replay.rate == pytest.approx(2 * profile_of(doc).reference_rate)


def test_clustered_preset_puts_faults_in_few_blocks_and_one_column():
    pl = np.full(N_BYTES, 0xFF, dtype=np.uint8)  # all ones, as Salami et al. write
    ch = parse_channel("bram-undervolt@10,seed=0")
    flips = ch.pattern(pl, regions(), seed=0).at(ch.rate)
    col = np.bincount(flips % 32, minlength=32)
    assert col.argmax() == 0 and col[0] / flips.size > 0.35
    per_block = np.bincount(flips // (4096 * 8), minlength=N_BYTES // 4096)
    assert per_block.var() > 5 * per_block.mean()  # over-dispersed: far from Poisson


def test_bad_specs():
    with pytest.raises(FlipLabError, match="needs a profile file"):
        parse_channel("profile")
    with pytest.raises(FlipLabError, match="does not exist"):
        parse_channel("profile:/no/such/file.toml")
    with pytest.raises(FlipLabError, match="scale"):
        parse_channel("rram-ulp@abc")
    with pytest.raises(FlipLabError, match="above 1"):
        parse_channel("rram-ulp@100")
    with pytest.raises(FlipLabError, match="takes no parameters"):
        parse_channel("rram-ulp:0.1")
    assert set(PRESETS) <= {"rram-ulp", "rram-ulp-1t1r", "bram-undervolt"}
