"""Tests of host.codecs.hamming, host.codecs.gray and host.codecs.distortion (seed 001 V)."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest

from host.codecs import get_codec
from host.codecs.distortion import d_ave, d_max, d_max_per_code, distortion, neighbour_distortions, theorem1_bound
from host.errors import FlipLabError

# --- Hamming-distance-based representation and distortion (seed 001 V) --------------------------

def test_hamming3_is_example_2():
    codec = get_codec("hamming3")
    order = ["000", "001", "010", "100", "011", "101", "110", "111"]
    params = {"granularity": "tensor", "w_min": 0.0, "w_max": 7.0}
    codes = codec.encode(np.arange(8.0), params)
    assert [format(int(c), "03b") for c in codes] == order
    assert codec.tables[0].tolist() == [order.index(format(b, "03b")) for b in range(8)]


@pytest.mark.parametrize("q", [4, 6, 9])
def test_hamming_order_is_weight_then_lexicographic(q):
    strings = sorted((format(b, f"0{q}b") for b in range(2**q)), key=lambda s: (s.count("1"), s))
    levels = get_codec(f"hamming{q}").tables[0]
    assert [strings.index(format(b, f"0{q}b")) for b in range(2**q)] == levels.tolist()


def test_example_1_and_2_distortions():
    binary = get_codec("fixed2").tables[0]
    assert d_max_per_code(binary)[0b00] == 0.5
    assert d_max(binary) == 0.5
    gray = get_codec("gray2")
    params = {"granularity": "tensor", "w_min": 0.0, "w_max": 3.0}
    assert gray.encode(np.arange(4.0), params).tolist() == [0b00, 0b01, 0b11, 0b10]
    assert d_max(gray.tables[0]) == 0.75
    hamming3 = get_codec("hamming3").tables[0]
    assert distortion(hamming3, 0b001, 0b101) == 0.5
    assert d_max(hamming3) == 0.5


@pytest.mark.parametrize("q", range(2, 11))
def test_binary_expansion_distortion(q):
    levels = get_codec(f"fixed{q}").tables[0]
    assert d_max(levels) == 0.5
    # flipping bit j moves the level by 2**j: d_ave,1 = (2**q - 1) / (q·2**q) for every code
    assert d_ave(levels) == pytest.approx((2**q - 1) / (q * 2**q))


def test_gray_distortion_tends_to_one():
    for q in range(2, 11):
        assert d_max(get_codec(f"gray{q}").tables[0]) == 1 - 2.0**-q


def test_hamming_distortion_decreases_and_obeys_theorem_1():
    dmax = [d_max(get_codec(f"hamming{q}").tables[0]) for q in range(3, 15)]
    assert all(b <= a for a, b in zip(dmax, dmax[1:]))
    assert all(b < a for a, b in zip(dmax, dmax[2:]))
    assert dmax[0] == 0.5 and dmax[-1] < 0.3
    for q, value in zip(range(3, 15), dmax):
        assert value <= theorem1_bound(q) <= 2 * comb(q, q // 2) / 2**q


def test_distortion_measures_against_brute_force():
    levels = get_codec("hamming4").tables[0].tolist()
    for k in (1, 2):
        per_code = []
        for b in range(16):
            near = [x for x in range(16) if 1 <= bin(b ^ x).count("1") <= k]
            per_code.append([abs(levels[b] - levels[x]) / 16 for x in near])
        assert d_max(np.array(levels), k) == max(max(d) for d in per_code)
        assert d_ave(np.array(levels), k) == pytest.approx(np.mean([np.mean(d) for d in per_code]))
    assert neighbour_distortions(np.array(levels), 2).shape == (16, 4 + 6)
    with pytest.raises(FlipLabError, match="bijection"):
        d_max(np.zeros(8))
