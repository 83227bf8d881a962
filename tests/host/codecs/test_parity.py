"""Tests of host.codecs.parity: the parity bit's place and weight nulling (seed 000 III-A)."""

from __future__ import annotations

import numpy as np

from host.codecs import get_codec

from .helpers import bits_of

# --- weight nulling (seed 000 III-A) -----------------------------------------------------------

def test_parity_bit_is_the_least_significant_stored_bit():
    codec = get_codec("parity8")
    params = {"granularity": "tensor", "w_min": 0.0, "w_max": 127.0}  # fixed7: Δ = 1
    codes = codec.encode(np.array([5.0, 7.0, 0.0]), params)
    # 0000101 has two ones -> p = 0; 0000111 has three -> p = 1
    assert codes.tolist() == [bits_of("0000101 0"), bits_of("0000111 1"), 0]
    assert codec.spec == "parity8" and get_codec("parity(fixed7)").spec == "parity8"


def test_parity8_exhaustive_flips():
    codec = get_codec("parity8")
    params = {"granularity": "tensor", "w_min": 1.0, "w_max": 2.0}  # 0.0 is not a level
    stored = codec.encode(np.linspace(1.0, 2.0, 128), params)
    assert len(set(stored.tolist())) == 128
    masks = np.arange(256, dtype=np.uint64)
    corrupted = (stored[:, None] ^ masks[None, :]).ravel()
    values, nulled = codec.decode(corrupted, params, dtype=np.float64)
    odd = np.tile(np.array([bin(m).count("1") % 2 == 1 for m in range(256)]), 128)
    assert np.array_equal(nulled, odd)
    assert np.all(values[odd] == 0.0)
    fixed7 = get_codec("fixed7")
    expected, _ = fixed7.decode(corrupted[~odd] >> np.uint64(1), params, dtype=np.float64)
    np.testing.assert_array_equal(values[~odd], expected)
    assert np.all(values[~odd] >= 1.0)


def test_parity_nulls_integer_weights_to_the_zero_point():
    codec = get_codec("parity(int8)")
    w = np.array([[10, -20], [30, 40]], dtype=np.int8)
    params = codec.fit(w, axis=0, granularity="channel", zero_point=[3, -5])
    codes = codec.encode(w, params)
    assert codes.tolist()[0] == (10 << 1) | 0  # 00001010: two ones
    corrupted = codes ^ np.array([1 << 4, 0, 0, 1 << 8], dtype=np.uint64)
    values, nulled = codec.decode(corrupted, params, dtype=np.int8)
    assert nulled.tolist() == [True, False, False, True]
    assert values.tolist() == [3, -20, 30, -5]


def test_parity_nulls_float16_to_zero():
    codec = get_codec("parity(float16)")
    codes = codec.encode(np.array([0.333]), {})
    values, nulled = codec.decode(codes ^ np.uint64(1 << 15), {}, dtype=np.float32)  # exponent MSB
    assert nulled.tolist() == [True] and values.tolist() == [0.0]
