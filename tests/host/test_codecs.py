"""Tests of host.codecs against the seeds' worked examples, hand-worked bytes and properties."""

from __future__ import annotations

from itertools import combinations
from math import comb

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from host.codecs import get_codec, list_codecs
from host.codecs.bitstream import pack_codes, segment_bytes, unpack_codes
from host.codecs.distortion import (d_ave, d_max, d_max_per_code, distortion, neighbour_distortions,
                                    theorem1_bound)
from host.codecs.secded import decode_blocks, encode_blocks, data_positions
from host.errors import FlipLabError

FAST = settings(max_examples=40, deadline=None)


def bits_of(text: str) -> int:
    """Integer of a bit string written MSB first, spaces ignored."""
    return int(text.replace(" ", ""), 2)


# --- IEEE 754 (seed 001, II-B1) ------------------------------------------------------------------

def test_float16_example_of_seed001():
    codec = get_codec("float16")
    code = bits_of("0 01101 0101010101")
    values, nulled = codec.decode(np.array([code], dtype=np.uint64), {}, dtype=np.float64)
    assert values[0] == 1.3330078125 * 2.0**-2
    assert values[0] == pytest.approx(0.333, abs=1e-3)
    assert not nulled.any()
    flipped = code ^ (1 << 14)  # the second bit written MSB first: the exponent's MSB
    assert flipped == bits_of("0 11101 0101010101")
    values, _ = codec.decode(np.array([flipped], dtype=np.uint64), {}, dtype=np.float64)
    assert values[0] == 21840.0


def test_float16_encode_is_the_ieee_bit_pattern():
    codec = get_codec("float16")
    assert codec.encode(np.array([1 / 3]), {})[0] == bits_of("0 01101 0101010101")
    assert codec.encode(np.array([1.0, -2.0]), {}).tolist() == [0x3C00, 0xC000]


@pytest.mark.parametrize("name,dtype", [("float16", np.float16), ("bfloat16", ml_dtypes.bfloat16)])
def test_half_tables_match_the_format_for_every_code(name, dtype):
    codec = get_codec(name)
    codes = np.arange(1 << 16, dtype=np.uint64)
    values, nulled = codec.decode(codes, {}, dtype=np.float32)
    expected = codes.astype(np.uint16).view(dtype).astype(np.float32)
    np.testing.assert_array_equal(values, expected)  # NaN == NaN in assert_array_equal
    assert np.array_equal(np.signbit(values), np.signbit(expected))
    assert not nulled.any()
    assert codec.tables[0].size == 1 << 16


def test_ieee_nan_and_inf_codes_decode_as_such():
    codec = get_codec("float16")
    values, nulled = codec.decode(np.array([0x7C00, 0xFC00, 0x7E00, 0x8000], dtype=np.uint64), {},
                                  dtype=np.float32)
    assert values[0] == np.inf and values[1] == -np.inf and np.isnan(values[2])
    assert values[3] == 0 and np.signbit(values[3])
    assert not nulled.any()


def test_float32_round_trip_is_bit_exact():
    codec = get_codec("float32")
    w = np.array([0.1, -0.0, 3.4e38, -1e-45, np.inf, np.nan], dtype=np.float32)
    codes = codec.encode(w, {})
    assert codes.tolist() == w.view(np.uint32).tolist()
    values, _ = codec.decode(codes, {}, dtype=np.float32)
    assert values.view(np.uint32).tolist() == w.view(np.uint32).tolist()


def test_float16_overflow_is_refused():
    with pytest.raises(FlipLabError, match="overflows"):
        get_codec("float16").encode(np.array([1e5]), {})


# --- fixed point (seed 000 eq. (1), seed 001 II-B2) ------------------------------------------------

def test_fixed_eq1_hand_example():
    codec = get_codec("fixed2")  # Δ = (1 - (-0.5)) / 3 = 0.5: levels -0.5, 0, 0.5, 1
    params = codec.fit(np.array([-0.5, 1.0]))
    assert params["w_min"] == -0.5 and params["w_max"] == 1.0
    codes = codec.encode(np.array([-0.5, -0.2, 0.26, 0.74, 1.0]), params)
    assert codes.tolist() == [0, 1, 2, 2, 3]  # (w + 0.5) / 0.5 = 0, 0.6, 1.52, 2.48, 3 rounded
    values, _ = codec.decode(np.arange(4, dtype=np.uint64), params, dtype=np.float64)
    assert values.tolist() == [-0.5, 0.0, 0.5, 1.0]


def test_image_format_worked_example_codes():
    # docs/image-format.md: w = [[-1, -0.5], [0.5, 1]] in parity4 = parity(fixed3), Δ = 2/7
    codec = get_codec("parity4")
    w = np.array([[-1.0, -0.5], [0.5, 1.0]])
    params = codec.fit(w)
    codes = codec.encode(w, params)
    assert codes.tolist() == [0b0000, 0b0101, 0b1010, 0b1111]
    assert codec.pack(codes).tolist() == [0x50, 0xFA]
    values, nulled = codec.decode(codes ^ np.array([0b0010, 0, 0, 0], dtype=np.uint64), params,
                                  dtype=np.float64)
    assert values == pytest.approx([0.0, -3 / 7, 3 / 7, 1.0]) and nulled.tolist() == [True, False, False, False]
    values, _ = codec.decode(np.array([0b0110], dtype=np.uint64), params, dtype=np.float64)
    assert values[0] == pytest.approx(-1 + 3 * 2 / 7)


def test_fixed_mid_hand_example():
    codec = get_codec("fixed2:mid")  # width = 2/4 = 0.5: intervals [0,.5) [.5,1) [1,1.5) [1.5,2]
    params = codec.fit(np.array([0.0, 2.0]))
    codes = codec.encode(np.array([0.0, 0.49, 0.5, 1.2, 1.99, 2.0]), params)
    assert codes.tolist() == [0, 0, 1, 2, 3, 3]
    values, _ = codec.decode(np.arange(4, dtype=np.uint64), params, dtype=np.float64)
    assert values.tolist() == [0.25, 0.75, 1.25, 1.75]  # w_min + width·(1/2 + i)


finite = st.floats(-1e3, 1e3, allow_nan=False, width=32)


@FAST
@given(w=hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=3, max_side=6), elements=finite),
       q=st.integers(2, 16), family=st.sampled_from(["fixed", "hamming", "gray"]))
def test_round_trip_within_half_a_step(w, q, family):
    codec = get_codec(f"{family}{q}")
    params = codec.fit(w)
    values, nulled = codec.decode(codec.encode(w, params), params, dtype=np.float64)
    delta = (params["w_max"] - params["w_min"]) / (2**q - 1)
    w = w.astype(np.float64).ravel()
    assert np.all(np.abs(values - w) <= delta / 2 + 1e-9 * (1 + np.abs(w)))
    assert not nulled.any()


@FAST
@given(w=hnp.arrays(np.float64, st.integers(1, 50), elements=st.floats(-10, 10)), q=st.integers(2, 16))
def test_mid_round_trip_within_half_an_interval(w, q):
    codec = get_codec(f"fixed{q}:mid")
    params = codec.fit(w)
    values, _ = codec.decode(codec.encode(w, params), params, dtype=np.float64)
    width = (params["w_max"] - params["w_min"]) / 2**q
    assert np.all(np.abs(values - w) <= width / 2 + 1e-12 * (1 + np.abs(w)))


@FAST
@given(w=hnp.arrays(np.float64, st.integers(1, 40), elements=st.floats(-5, 5)), q=st.integers(2, 12))
def test_hamming_and_gray_store_the_same_levels_as_fixed(w, q):
    fixed = get_codec(f"fixed{q}")
    params = fixed.fit(w)
    reference, _ = fixed.decode(fixed.encode(w, params), params, dtype=np.float64)
    for spec in (f"hamming{q}", f"gray{q}"):
        codec = get_codec(spec)
        values, _ = codec.decode(codec.encode(w, params), params, dtype=np.float64)
        np.testing.assert_array_equal(values, reference)


@pytest.mark.parametrize("spec", ["fixed8", "fixed8:mid", "hamming5", "gray6", "int8", "parity8"])
def test_degenerate_range_round_trips_exactly(spec):
    codec = get_codec(spec)
    w = np.full((3, 4), 0.0 if spec.startswith("int") else -0.3125)
    params = codec.fit(w)
    values, _ = codec.decode(codec.encode(w, params), params, dtype=np.float64)
    np.testing.assert_array_equal(values, w.ravel())


def test_per_channel_ranges():
    rng = np.random.default_rng(7)
    w = rng.normal(size=(2, 3, 5)) * np.array([0.01, 1.0, 100.0])[None, :, None]
    w[:, 2, :] = 4.0  # a constant channel: degenerate range inside a per-channel fit
    codec = get_codec("fixed6")
    params = codec.fit(w, axis=1, granularity="channel")
    assert params["w_min"] == [float(w[:, c, :].min()) for c in range(3)]
    assert params["w_max"] == [float(w[:, c, :].max()) for c in range(3)]
    values, _ = codec.decode(codec.encode(w, params), params, dtype=np.float64)
    values = values.reshape(w.shape)
    for c in range(3):
        delta = (params["w_max"][c] - params["w_min"][c]) / 63
        assert np.all(np.abs(values[:, c, :] - w[:, c, :]) <= delta / 2 + 1e-12)
    np.testing.assert_array_equal(values[:, 2, :], 4.0)


def test_negative_channel_axis_and_model_granularity():
    codec = get_codec("fixed4")
    w = np.array([[-1.0, 3.0], [0.0, 1.0]])
    assert codec.fit(w, axis=-1, granularity="channel")["w_min"] == [-1.0, 1.0]
    params = codec.fit(w, granularity="model", model_range=(-2.0, 2.0))
    assert params == {"granularity": "model", "w_min": -2.0, "w_max": 2.0}
    values, _ = codec.decode(codec.encode(np.array([5.0, -5.0]), params), params, dtype=np.float64)
    assert values.tolist() == [2.0, -2.0]  # clipped to the model range


# --- int<q> ------------------------------------------------------------------------------------

def test_int8_qdq_codes_preserved_exactly():
    codec = get_codec("int8")
    w = np.arange(-128, 128, dtype=np.int8)
    params = codec.fit(w)
    codes = codec.encode(w, params)
    assert codes.tolist() == (np.arange(-128, 128) % 256).tolist()  # two's complement
    values, _ = codec.decode(codes, params, dtype=np.int8)
    assert values.dtype == np.int8 and np.array_equal(values, w)


def test_uint8_stored_with_offset():
    codec = get_codec("int8")
    w = np.arange(256, dtype=np.uint8)
    params = codec.fit(w, zero_point=128)
    codes = codec.encode(w, params)
    assert codes.tolist() == (np.arange(256) ^ 0x80).tolist()
    values, _ = codec.decode(codes, params, dtype=np.uint8)
    assert np.array_equal(values, w)


def test_int32_and_narrow_int_codes():
    rng = np.random.default_rng(3)
    w = rng.integers(-2**31, 2**31, size=100, dtype=np.int64).astype(np.int32)
    codec = get_codec("int32")
    params = codec.fit(w)
    values, _ = codec.decode(codec.encode(w, params), params, dtype=np.int32)
    assert np.array_equal(values, w)
    int4 = get_codec("int4")
    ok = np.array([-8, 7, 0], dtype=np.int8)
    p4 = int4.fit(ok)
    assert int4.encode(ok, p4).tolist() == [8, 7, 0]
    with pytest.raises(FlipLabError, match="does not fit 4 bits"):
        int4.encode(np.array([8], dtype=np.int8), p4)


def test_int_float_symmetric_scale():
    codec = get_codec("int4")  # scale = 1.4 / 7 = 0.2
    w = np.array([[-1.4, 0.3, 0.05], [0.0, 0.0, 0.0]])
    params = codec.fit(w, axis=0, granularity="channel")
    assert params["scale"] == pytest.approx([0.2, 0.0])
    codes = codec.encode(w, params)
    assert codes.tolist() == [(-7) % 16, 2, 0, 0, 0, 0]  # 0.3/0.2 = 1.5 rounds to even 2
    values, _ = codec.decode(codes, params, dtype=np.float64)
    assert values == pytest.approx([-1.4, 0.4, 0.0, 0, 0, 0])


@FAST
@given(w=hnp.arrays(np.float64, st.integers(1, 40), elements=st.floats(-100, 100)), q=st.integers(2, 32))
def test_int_round_trip_within_half_a_step(w, q):
    codec = get_codec(f"int{q}")
    params = codec.fit(w)
    values, _ = codec.decode(codec.encode(w, params), params, dtype=np.float64)
    assert np.all(np.abs(values - w) <= params["scale"] / 2 + 1e-9 * (1 + np.abs(w)))


def test_int_decode_saturates_into_a_narrower_dtype():
    codec = get_codec("int16")
    w = np.array([-3], dtype=np.int8)
    params = codec.fit(w)
    flipped = codec.encode(w, params) ^ np.uint64(1 << 13)  # -3 - 8192 -> out of int8
    values, _ = codec.decode(flipped, params, dtype=np.int8)
    assert values.tolist() == [-128]


# --- sign ---------------------------------------------------------------------------------------

def test_sign_codec():
    codec = get_codec("sign")
    w = np.array([-0.5, 0.0, 2.0, -1e-9])
    params = codec.fit(w)
    codes = codec.encode(w, params)
    assert codes.tolist() == [0, 1, 1, 0]
    values, _ = codec.decode(codes, params, dtype=np.float32)
    assert values.tolist() == [-1, 1, 1, -1]
    values, _ = codec.decode(codes, {"scale": 0.5}, dtype=np.float32)
    assert values.tolist() == [-0.5, 0.5, 0.5, -0.5]
    assert codec.pack(codes).tolist() == [0b0110]


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


# --- SECDED (72,64) ------------------------------------------------------------------------------

def test_secded_parity_check_matrix():
    assert data_positions()[:6].tolist() == [3, 5, 6, 7, 9, 10] and data_positions()[-1] == 71
    rng = np.random.default_rng(11)
    data = rng.integers(0, 2**63, size=20, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    checks = encode_blocks(data)
    for block, check in zip(data.tolist(), checks.tolist()):
        syndrome = 0
        for d, pos in enumerate(data_positions().tolist()):
            if block >> d & 1:
                syndrome ^= pos
        for k in range(7):
            if check >> k & 1:
                syndrome ^= 1 << k
        assert syndrome == 0
        assert (bin(block).count("1") + bin(check).count("1")) % 2 == 0


def _flip(data, check, positions):
    data, check = data.copy(), check.copy()
    for p in positions:
        if p < 64:
            data ^= np.uint64(1) << np.uint64(p)
        else:
            check ^= np.uint8(1 << (p - 64))
    return data, check


def test_secded_corrects_every_single_and_detects_every_double_flip():
    rng = np.random.default_rng(5)
    blocks = rng.integers(0, 2**63, size=3, dtype=np.uint64) << np.uint64(1)
    singles = [(p,) for p in range(72)]
    doubles = list(combinations(range(72), 2))
    for block in blocks:
        data = np.full(1, block, dtype=np.uint64)
        check = encode_blocks(data)
        flips = [_flip(data, check, f) for f in singles + doubles]
        rx_data = np.concatenate([f[0] for f in flips])
        rx_check = np.concatenate([f[1] for f in flips])
        fixed, uncorrectable, corrected = decode_blocks(rx_data, rx_check)
        n = len(singles)
        assert np.all(fixed[:n] == block) and corrected[:n].all() and not uncorrectable[:n].any()
        assert uncorrectable[n:].all() and not corrected[n:].any()
    clean, bad, fixed_any = decode_blocks(blocks, encode_blocks(blocks))
    assert np.array_equal(clean, blocks) and not bad.any() and not fixed_any.any()


def test_secded_codec_segment_and_erasures():
    codec = get_codec("secded(fixed8)")
    assert codec.overhead() == pytest.approx(0.125)
    assert get_codec("secded(parity8)").overhead() == pytest.approx(72 / 64 * 8 / 7 - 1)
    codes = np.arange(20, dtype=np.uint64) * np.uint64(7) % np.uint64(256)
    segment = codec.pack(codes)
    assert segment.size == 27 and codec.stored_bits(20) == 216
    assert segment[:8].tolist() == codes[:8].tolist()  # block 0 data, then its check byte
    assert segment[8] == encode_blocks(codes[:8].astype(np.uint8).view("<u8"))[0]
    noisy = segment.copy()
    noisy[9 + 2] ^= 0b1  # single flip in block 1
    out, erased, corrected = codec.unpack(noisy, 20)
    assert np.array_equal(out, codes) and not erased.any() and corrected == 1
    noisy[9 + 8] ^= 0b100  # plus a check-bit flip in block 1: a double error
    out, erased, corrected = codec.unpack(noisy, 20)
    assert erased.tolist() == [False] * 8 + [True] * 8 + [False] * 4 and corrected == 0


@pytest.mark.parametrize("spec", ["secded(fixed5)", "secded(int20)", "secded(float16)", "secded(parity(sign))"])
def test_secded_corrects_one_flip_per_block_for_any_inner_codec(spec):
    codec = get_codec(spec)
    rng = np.random.default_rng(len(spec))
    count = 101
    codes = rng.integers(0, 2**codec.bits, size=count, dtype=np.uint64)
    segment = codec.pack(codes)
    blocks = -(-count * codec.bits // 64)
    assert segment.size * 8 == codec.stored_bits(count) == 72 * blocks
    noisy = segment.copy()
    flips = np.arange(blocks) * 72 + rng.integers(0, 72, size=blocks)
    np.bitwise_xor.at(noisy, flips // 8, (1 << (flips % 8)).astype(np.uint8))
    out, erased, corrected = codec.unpack(noisy, count)
    assert np.array_equal(out, codes) and not erased.any() and corrected == blocks


def test_secded_hand_worked_codeword():
    # codes 0..7 of fixed8 fill block 0 = 0x0706050403020100; its 12 ones sit at data bits
    # 8, 17, 24, 25, 34, 40, 42, 49, 50, 56, 57, 58 = positions 13, 23, 30, 31, 41, 47, 49, 56,
    # 57, 63, 65, 66, whose XOR is 17 = 0b0010001: c_0 = c_4 = 1; 12 + 2 ones: overall p = 0
    segment = get_codec("secded(fixed8)").pack(np.arange(8))
    assert segment.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 0x11]


def test_secded_erases_weights_straddling_a_block():
    codec = get_codec("secded(fixed3)")  # weight 21 spans inner bits 63..65: blocks 0 and 1
    codes = np.full(30, 5, dtype=np.uint64)
    segment = codec.pack(codes)
    noisy = segment.copy()
    noisy[0] ^= 0b11  # double error in block 0: weights 0..21
    _, erased, _ = codec.unpack(noisy, 30)
    assert np.flatnonzero(erased).tolist() == list(range(22))
    noisy = segment.copy()
    noisy[9] ^= 0b101  # double error in block 1 (inner bits 64..89): weights 21..29
    _, erased, _ = codec.unpack(noisy, 30)
    assert np.flatnonzero(erased).tolist() == list(range(21, 30))


def test_secded_odd_syndrome_outside_the_shortened_code_is_uncorrectable():
    # data bits at positions 71 and 56 plus the overall parity bit: three flips, P = 1,
    # syndrome 71 ^ 56 = 127 names no bit of the (72,64) code
    positions = data_positions().tolist()
    data = np.zeros(1, dtype=np.uint64)
    check = encode_blocks(data)
    rx_data, rx_check = _flip(data, check, [positions.index(71), positions.index(56), 71])
    _, uncorrectable, corrected = decode_blocks(rx_data, rx_check)
    assert uncorrectable.tolist() == [True] and corrected.tolist() == [False]


# --- bit packing ---------------------------------------------------------------------------------

def test_pack_hand_example():
    # 5 = 101, 3 = 011, 6 = 110 -> stream 1,0,1, 1,1,0, 0,1,1 -> bytes 0b10011101, 0b00000001
    assert pack_codes(np.array([5, 3, 6]), 3).tolist() == [0x9D, 0x01]
    assert get_codec("fixed3").pack(np.array([5, 3, 6])).tolist() == [0x9D, 0x01]
    assert pack_codes(np.array([0x1234]), 16).tolist() == [0x34, 0x12]


@settings(max_examples=120, deadline=None)
@given(data=st.data(), q=st.integers(1, 32))
def test_pack_round_trip_every_width(data, q):
    codes = np.array(data.draw(st.lists(st.integers(0, 2**q - 1), max_size=40)), dtype=np.uint64)
    segment = pack_codes(codes, q)
    assert segment.size == segment_bytes(codes.size, q) == -(-codes.size * q // 8)
    bits = [(int(c) >> j) & 1 for c in codes for j in range(q)]
    assert segment.tolist() == np.packbits(np.array(bits, dtype=np.uint8), bitorder="little").tolist()
    assert np.array_equal(unpack_codes(segment, codes.size, q), codes)


@pytest.mark.parametrize("q", range(1, 33))
def test_pack_round_trip_each_width_against_packbits(q):
    rng = np.random.default_rng(q)
    for count in (0, 1, 7, 8, 9, 61):
        codes = rng.integers(0, 2**q, size=count, dtype=np.uint64)
        bits = ((codes[:, None] >> np.arange(q, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8)
        segment = pack_codes(codes, q)
        assert np.array_equal(segment, np.packbits(bits.reshape(-1), bitorder="little"))
        assert np.array_equal(unpack_codes(segment, count, q), codes)


def test_pack_errors():
    with pytest.raises(FlipLabError, match="wider than 3 bits"):
        pack_codes(np.array([8]), 3)
    with pytest.raises(FlipLabError, match="too short"):
        unpack_codes(np.zeros(1, dtype=np.uint8), 3, 3)
    with pytest.raises(FlipLabError, match="too short"):
        get_codec("secded(fixed8)").unpack(np.zeros(8, dtype=np.uint8), 1)
    with pytest.raises(FlipLabError, match="wider than 8 bits"):
        get_codec("fixed8").decode(np.array([256]), {"w_min": 0.0, "w_max": 1.0})


# --- registry, sizes, bad input ------------------------------------------------------------------

def test_sizes_and_overheads():
    assert get_codec("parity8").overhead() == pytest.approx(8 / 7 - 1)
    assert get_codec("parity8").data_bits == 7 and get_codec("parity8").stored_bits(10) == 80
    assert get_codec("fixed8").overhead() == 0.0
    assert get_codec("sign").stored_bits(9) == 9
    assert get_codec("parity(int8)").bits == 9
    assert get_codec("parity(int8)").field_bits == 9 and get_codec("secded(int8)").field_bits == 72


def test_registry_canonical_specs():
    assert "secded(<codec>)" in list_codecs() and "sign" in list_codecs()
    for spec in ["float32", "fixed8:mid", "hamming8", "gray8", "int8", "parity(int8)",
                 "secded(parity8)", "sign", "bfloat16"]:
        assert get_codec(spec).spec == spec
        assert get_codec(get_codec(spec).spec) is get_codec(spec)


@pytest.mark.parametrize("spec,message", [
    ("foo", "unknown codec 'foo': known families are float32"), ("fixed1", "q = 2..16"),
    ("fixed17", "q = 2..16"), ("int33", "q = 2..32"), ("parity(parity8)", "cannot wrap parity"),
    ("secded(secded(fixed8))", "cannot wrap secded"), ("parity(float32)", "32-bit limit"),
    ("int8:mid", ":mid"), ("parity2", "q = 3..17"), ("", "non-empty"),
])
def test_bad_specs(spec, message):
    with pytest.raises(FlipLabError, match=message) as error:
        get_codec(spec)
    assert "\n" not in str(error.value)


def test_bad_fit_and_params():
    codec = get_codec("fixed8")
    with pytest.raises(FlipLabError, match="granularity"):
        codec.fit(np.ones(3), granularity="layer")
    with pytest.raises(FlipLabError, match="axis"):
        codec.fit(np.ones((2, 2)), axis=2, granularity="channel")
    with pytest.raises(FlipLabError, match="model_range"):
        codec.fit(np.ones(3), granularity="model")
    with pytest.raises(FlipLabError, match="lo <= hi"):
        codec.fit(np.ones(3), granularity="model", model_range=(1.0, -1.0))
    with pytest.raises(FlipLabError, match="NaN"):
        codec.fit(np.array([0.0, np.nan]))
    params = codec.fit(np.ones((2, 3)), axis=0, granularity="channel")
    with pytest.raises(FlipLabError, match="does not hold"):
        codec.decode(np.zeros(5, dtype=np.uint64), params)
    with pytest.raises(FlipLabError, match="does not match params shape"):
        codec.encode(np.ones((3, 2)), params)
    with pytest.raises(FlipLabError, match="w_min"):
        codec.decode(np.zeros(2, dtype=np.uint64), {"w_max": 1.0})
    with pytest.raises(FlipLabError, match="zero points for 2 channels"):
        get_codec("int8").fit(np.zeros((2, 2), dtype=np.int8), axis=0, zero_point=[1, 2, 3])
