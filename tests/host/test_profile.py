"""host.profile: fitting an error profile from dumps made by known channels, and the file.

Independent truth: the channels that made the dumps (bsc, asym, stuck, a clustered map built
here by hand) — the fit's 95 % Clopper-Pearson intervals must cover their parameters; a dump
equal to the golden image fits rate 0 with the exact upper bound 1 - 0.025**(1/n).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from host.channels import parse_channel
from host.errors import FlipLabError
from host.image import WORD_BITS
from host.inject import inject
from host.profile import (
    characterize,
    dispersion,
    load_profile,
    profile_of,
    rate_with_interval,
    read_profile,
    write_profile,
)
from tests.host.test_diff import image_of


def golden(n: int = 20000, seed: int = 0):
    rng = np.random.default_rng(seed)
    return image_of([("conv1.w", rng.normal(size=n // 4).astype(np.float32), "fixed8"),
                     ("fc.w", rng.normal(size=n).astype(np.float32), "parity8")])


def dumps(image, spec: str, n: int, first_trial: int = 0):
    return [inject(image, parse_channel(spec), seed=5, trial=first_trial + t)[0]
            for t in range(n)]


def covers(r: dict, value: float) -> bool:
    return r["low"] <= value <= r["high"]


def test_identical_dump_fits_rate_zero_with_an_upper_bound():
    g = golden(4000)
    doc = characterize(g, [g, g])
    n = doc["overall"]["p01"]["bits"]
    assert doc["overall"]["p01"]["rate"] == 0.0 and doc["overall"]["p01"]["low"] == 0.0
    assert doc["overall"]["p01"]["high"] == pytest.approx(1 - 0.025 ** (1 / n), rel=1e-6)
    assert doc["permanent"]["cells"] == 0 and doc["transient"]["cells"] == 0
    assert profile_of(doc).reference_rate == 0.0


def test_bsc_dumps_recover_p_overall_per_position_and_per_tensor_and_no_permanent_cells():
    g = golden()
    doc = characterize(g, dumps(g, "bsc:0.01", 3))
    for d in ("p01", "p10"):
        assert covers(doc["overall"][d], 0.01)
        assert covers(doc["transient"][d], 0.01)
        for t in doc["tensors"]:
            assert covers(t[d], 0.01)
    positions = doc["per_position"]["8"]["p10"]
    assert len(positions) == 8
    assert sum(covers(r, 0.01) for r in positions) >= 7  # 8 intervals at 95 %
    # i.i.d. at p = 0.01: P(wrong in all 3 reads) = 1e-6 per cell -> almost surely none
    assert doc["permanent"]["cells"] <= 1
    assert doc["spatial"]["blocks"]["p_value"] > 1e-3  # no clustering detected


def test_asym_dumps_recover_both_directions():
    g = golden()
    doc = characterize(g, dumps(g, "asym:0.02,0.002", 2))
    assert covers(doc["overall"]["p01"], 0.02)
    assert covers(doc["overall"]["p10"], 0.002)
    assert not covers(doc["overall"]["p01"], 0.002)


def test_stuck_cells_are_permanent_and_recovered():
    g = golden()
    # stuck:F,S: a stored 0 is wrong iff stuck at 1 (F*S), a stored 1 iff stuck at 0 (F*(1-S))
    doc = characterize(g, dumps(g, "stuck:0.02,0.25,seed=4", 3))
    assert covers(doc["permanent"]["p01"], 0.02 * 0.25)
    assert covers(doc["permanent"]["p10"], 0.02 * 0.75)
    assert doc["transient"]["cells"] == 0
    assert doc["permanent"]["known"] is True
    # one dump cannot tell permanent from transient: all counted transient
    one = characterize(g, dumps(g, "stuck:0.02,0.25,seed=4", 1))
    assert one["permanent"]["known"] is False and one["permanent"]["cells"] == 0
    assert covers(one["transient"]["p10"], 0.02 * 0.75)


def test_clustered_map_is_detected_with_its_column_and_block_structure():
    g = golden(40000)
    noisy = g.payload.copy()
    bits = np.unpackbits(noisy, bitorder="little")
    rng = np.random.default_rng(1)
    block_bits = 256 * 8
    n_blocks = bits.size // block_bits
    # faults only in 1 of 4 blocks, and only in bit column 5 of each 32-bit word
    for b in range(0, n_blocks, 4):
        cols = np.arange(b * block_bits + 5, (b + 1) * block_bits, WORD_BITS)
        hit = cols[rng.random(cols.size) < 0.2]
        bits[hit] ^= 1
    dump = g.with_payload(np.packbits(bits, bitorder="little"))
    doc = characterize(g, [dump, dump], block_bytes=256)
    cols = doc["permanent"]["spatial"]["columns"]
    assert cols["top_share"] > 0.95 and int(np.argmax(cols["counts"])) == 5
    blocks = doc["permanent"]["spatial"]["blocks"]
    assert blocks["p_value"] < 1e-6 and blocks["index"] > 3
    assert blocks["k"] < 3  # strongly over-dispersed (iid: k = inf)


def test_dispersion_of_poisson_counts_is_near_one_and_k_infinite_or_large():
    rng = np.random.default_rng(3)
    counts = rng.poisson(20.0, size=400)
    d = dispersion(counts, np.full(400, 1000))
    assert 0.8 < d["index"] < 1.2 and d["p_value"] > 1e-3
    assert d["k"] > 50
    nb = rng.negative_binomial(2.0, 2.0 / 22.0, size=4000)  # mean 20, k = 2
    assert dispersion(nb, np.full(4000, 1000))["k"] == pytest.approx(2.0, rel=0.2)


def test_interval_is_clopper_pearson():
    r = rate_with_interval(0, 100)
    assert r["high"] == pytest.approx(1 - 0.025 ** 0.01)
    r = rate_with_interval(100, 100)
    assert r["low"] == pytest.approx(0.025 ** 0.01)


def test_profile_file_round_trip_and_bad_files(tmp_path):
    g = golden(4000)
    doc = characterize(g, dumps(g, "stuck:0.05,0.5,seed=1", 2), source="unit test")
    path = tmp_path / "chip.profile.toml"
    write_profile(doc, path)
    back = read_profile(path)
    assert back["overall"] == doc["overall"]
    assert load_profile(path) == profile_of(doc, source=str(path))
    (tmp_path / "bad.toml").write_text("schema = 'other'\n")
    with pytest.raises(FlipLabError, match="not a FlipLab error profile"):
        read_profile(tmp_path / "bad.toml")
    (tmp_path / "broken.toml").write_text("schema = \n")
    with pytest.raises(FlipLabError, match="not valid TOML"):
        read_profile(tmp_path / "broken.toml")
    with pytest.raises(FlipLabError, match="does not exist"):
        read_profile(tmp_path / "missing.toml")
    # numpy scalars are written as plain TOML numbers
    odd = {"schema": "fliplab-profile", "version": 1, "x": np.float64(0.5), "n": np.int64(3),
           "b": np.bool_(True), "k": math.inf, "w": list(np.ones(2))}
    write_profile(odd, tmp_path / "odd.toml")
    assert read_profile(tmp_path / "odd.toml") == {**odd, "w": [1.0, 1.0]}


def test_bad_inputs():
    g = golden(400)
    with pytest.raises(FlipLabError, match="at least one dump"):
        characterize(g, [])
    with pytest.raises(FlipLabError, match="block size"):
        characterize(g, [g], block_bytes=0)
