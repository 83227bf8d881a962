"""The integer reference host.hw against independent truth: exact rational arithmetic,
+-1 arithmetic, bit-by-bit unpacking, the host's bit-stream packer, float BatchNorm, and the
worked examples of docs/datapath.md (hand-computed)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host.errors import FlipLabError
from host.hw import (
    binary_dense,
    clipped_relu,
    dense_int8,
    extract_fields,
    fold_batchnorm,
    inference_cycles,
    quantize_multiplier,
    requantize,
    saturate_int8,
    sign_extend,
    unpack_fields,
    wrap_int32,
    xnor_popcount,
)

ACC = st.integers(-(1 << 31), (1 << 31) - 1)
MULT = st.integers(0, (1 << 31) - 1)
SHIFT = st.integers(0, 62)


def exact_requant(acc: int, m: int, s: int) -> int:
    """floor(acc * M / 2**S + 1/2) in exact rationals, then clamp to int8."""
    r = math.floor(Fraction(acc * m, 1 << s) + Fraction(1, 2))
    return max(-128, min(127, r))


# ---------------------------------------------------------------- requantisation
@settings(max_examples=400, deadline=None)
@given(ACC, MULT, SHIFT)
def test_requantize_equals_exact_rational_rounding(acc: int, m: int, s: int) -> None:
    assert int(requantize(acc, m, s)) == exact_requant(acc, m, s)


def test_requantize_ties_round_half_up() -> None:
    # x.5 goes up (towards +infinity): 2.5 -> 3, -2.5 -> -2, 0.5 -> 1, -0.5 -> 0
    assert requantize([5, -5, 1, -1, 3, -3], 1, 1).tolist() == [3, -2, 1, 0, 2, -1]
    # the same ties with a realistic multiplier: 3 * 2**30 / 2**31 = 1.5 -> 2, -1.5 -> -1
    assert requantize([3, -3], 1 << 30, 31).tolist() == [2, -1]
    # just off the tie
    assert requantize([(5 << 20) - 1, (5 << 20) + 1, (-5 << 20) - 1], 1, 21).tolist() == [2, 3, -3]


def test_requantize_saturates_to_int8() -> None:
    assert requantize([127, 128, 10**6, -128, -129, -(10**6)], 1, 0).tolist() == [
        127, 127, 127, -128, -128, -128]
    # 126.5 rounds to 127 (inside), 127.5 to 128 (saturates to 127), -128.5 to -128
    assert requantize([253, 255, -257], 1, 1).tolist() == [127, 127, -128]
    assert requantize((1 << 31) - 1, (1 << 31) - 1, 0) == 127
    assert requantize(-(1 << 31), (1 << 31) - 1, 62) == -1  # -(2**62 - 2**31) / 2**62 -> -1
    assert saturate_int8(np.array([-1000, 5, 1000])).tolist() == [-128, 5, 127]


def test_requantize_rejects_out_of_range_operands() -> None:
    with pytest.raises(FlipLabError):
        requantize(1, 1 << 31, 3)
    with pytest.raises(FlipLabError):
        requantize(1, 5, 63)
    with pytest.raises(FlipLabError):
        requantize(1 << 31, 5, 3)


@given(st.integers(-(1 << 40), 1 << 40))
def test_wrap_int32_is_twos_complement(v: int) -> None:
    r = int(wrap_int32(v))
    assert -(1 << 31) <= r < (1 << 31) and (r - v) % (1 << 32) == 0


# ---------------------------------------------------------------- clipped ReLU
def test_clipped_relu_every_input_and_threshold() -> None:
    xs = np.arange(-128, 128)
    for t in range(128):
        want = [x if 0 <= x <= t else 0 for x in range(-128, 128)]
        assert clipped_relu(xs, t).tolist() == want
    # the clip boundary: T passes, T + 1 becomes 0 (not T); T = 127 is the plain ReLU
    assert clipped_relu([20, 21], 20).tolist() == [20, 0]
    assert np.array_equal(clipped_relu(xs, 127), np.maximum(xs, 0))
    with pytest.raises(FlipLabError):
        clipped_relu(1, 128)


# ---------------------------------------------------------------- (M, S) from a scale
@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=2.0**-31, max_value=2.0**31 * (1 - 2.0**-40)))
def test_quantize_multiplier_precision(scale: float) -> None:
    m, s = quantize_multiplier(scale)
    assert 0 <= m < (1 << 31) and 0 <= s <= 62
    assert abs(Fraction(m, 1 << s) - Fraction(scale)) <= Fraction(scale) * Fraction(1, 1 << 31)


def test_quantize_multiplier_examples_and_errors() -> None:
    assert quantize_multiplier(0.5) == (1 << 30, 31)
    assert quantize_multiplier(1.0) == (1 << 30, 30)
    assert quantize_multiplier(0.0123) == (1690499128, 37)
    m, s = quantize_multiplier(1e-25)  # below 2**-62 resolution: S stops at 62
    assert s == 62 and m == round(1e-25 * 2.0**62)
    for bad in (0.0, -1.0, float("nan"), float("inf"), 2.0**31):
        with pytest.raises(FlipLabError):
            quantize_multiplier(bad)


# ---------------------------------------------------------------- int8 dense layer
def naive_dense(x, w, bias, m, s, t, relu):
    """Element-by-element Python: the definition, without numpy."""
    out_acc, out_y = [], []
    for row in x:
        accs, ys = [], []
        for j, wr in enumerate(w):
            total = int(bias[j]) + sum(int(a) * int(b) for a, b in zip(row, wr))
            acc = (total + (1 << 31)) % (1 << 32) - (1 << 31)
            y = exact_requant(acc, int(m[j]), int(s[j]))
            if relu:
                y = y if 0 <= y <= t else 0
            accs.append(acc)
            ys.append(y)
        out_acc.append(accs)
        out_y.append(ys)
    return out_acc, out_y


@pytest.mark.parametrize("relu", [True, False])
def test_dense_int8_matches_naive_definition(relu: bool) -> None:
    gen = np.random.default_rng(4)
    for _ in range(20):
        batch, n_in, n_out = (int(v) for v in gen.integers(1, 12, 3))
        x = gen.integers(-128, 128, (batch, n_in))
        w = gen.integers(-128, 128, (n_out, n_in))
        bias = gen.integers(-(1 << 31), 1 << 31, n_out)
        m = gen.integers(0, 1 << 31, n_out)
        s = gen.integers(0, 63, n_out)
        t = int(gen.integers(0, 128))
        r = dense_int8(x, w, bias, m, s, t, relu=relu)
        want_acc, want_y = naive_dense(x, w, bias, m, s, t, relu)
        assert r.acc.tolist() == want_acc and r.y.tolist() == want_y


def test_dense_int8_worked_example() -> None:
    """docs/datapath.md, "MAC unit": 6 inputs, bias 1000, scale 0.0123."""
    x = np.array([[12, -7, 100, 0, -128, 33]])
    w = np.array([[5, 3, -2, 127, 1, -1]])
    m, s = quantize_multiplier(0.0123)
    r = dense_int8(x, w, np.array([1000]), m, s, 127)
    assert (m, s) == (1690499128, 37)
    assert r.acc.tolist() == [[678]] and r.y.tolist() == [[8]]  # 678 * 0.0123 = 8.34 -> 8
    assert dense_int8(x, w, np.array([1000]), m, s, 8).y.tolist() == [[8]]  # T = 8 passes
    assert dense_int8(x, w, np.array([1000]), m, s, 7).y.tolist() == [[0]]  # T = 7: 8 -> 0
    assert dense_int8(x, w, np.array([1000]), m, 30, 127).y.tolist() == [[127]]  # saturates


def test_dense_int8_is_within_half_a_step_of_float() -> None:
    """Integer requantisation vs the float scale: |y - acc*scale| <= 1/2 + M's relative error."""
    gen = np.random.default_rng(5)
    x = gen.integers(-128, 128, (64, 50))
    w = gen.integers(-128, 128, (10, 50))
    bias = gen.integers(-5000, 5000, 10)
    scale = 40.0 / (74.0 * 74.0 * np.sqrt(50))
    m, s = quantize_multiplier(scale)
    r = dense_int8(x, w, bias, m, s, relu=False)
    ideal = np.clip(r.acc * scale, -128, 127)
    assert np.all(np.abs(r.y - ideal) <= 0.5 + 1e-6)


def test_dense_int8_accumulator_wraps_at_32_bits() -> None:
    x = np.full((1, 4), 127)
    w = np.full((1, 4), 127)
    r = dense_int8(x, w, np.array([(1 << 31) - 10]), 1, 0, relu=False)
    assert r.acc[0, 0] == (1 << 31) - 10 + 4 * 127 * 127 - (1 << 32)


def test_dense_int8_rejects_bad_input() -> None:
    with pytest.raises(FlipLabError):
        dense_int8(np.array([[128]]), np.array([[1]]), np.array([0]), 1, 0)
    with pytest.raises(FlipLabError):
        dense_int8(np.array([[1, 2]]), np.array([[1]]), np.array([0]), 1, 0)
    with pytest.raises(FlipLabError):
        dense_int8(np.array([[1.0]]), np.array([[1]]), np.array([0]), 1, 0)


# ---------------------------------------------------------------- binarized layer
def test_xnor_popcount_equals_pm1_dot_product() -> None:
    gen = np.random.default_rng(6)
    x = gen.integers(0, 2, (30, 77))
    w = gen.integers(0, 2, (13, 77))
    valid = gen.random((13, 77)) > 0.2
    z = xnor_popcount(x, w, valid)
    xs, ws = 2 * x - 1, 2 * w - 1  # bit 1 -> +1, bit 0 -> -1
    assert np.array_equal(z, xs @ (ws * valid).T)  # a nulled weight contributes 0
    assert np.array_equal(xnor_popcount(x, w), xs @ ws.T)


def test_binary_worked_example_and_equality() -> None:
    """docs/datapath.md, "XNOR-popcount unit": 10 inputs, weight 6 nulled."""
    x = np.array([[1, 0, 1, 1, 0, 0, 1, 1, 1, 0]])
    w = np.array([[1, 1, 1, 0, 0, 1, 1, 0, 1, 0]])
    v = np.array([[1, 1, 1, 1, 1, 1, 0, 1, 1, 1]])
    assert xnor_popcount(x, w).tolist() == [[2]]  # 6 agreements of 10: 2*6 - 10
    assert xnor_popcount(x, w, v).tolist() == [[1]]  # 5 of 9 valid: 2*5 - 9
    assert binary_dense(x, w, 1, v).tolist() == [[1]]  # z = tau -> 1 (>=, not >)
    assert binary_dense(x, w, 2, v).tolist() == [[0]]
    assert binary_dense(x, w, 0, v).tolist() == [[1]]
    none = np.zeros_like(v)
    assert xnor_popcount(x, w, none).tolist() == [[0]]  # every weight nulled: z = 0


def test_fold_batchnorm_matches_float_sign() -> None:
    gen = np.random.default_rng(7)
    n = 25
    gamma = gen.normal(0, 1, 64)
    gamma[:4] = 0.0
    beta = gen.normal(0, 3, 64)
    beta[:2] = [0.5, -0.5]
    mean = gen.normal(0, 4, 64)
    var = gen.uniform(0.1, 9, 64)
    eps = 1e-5
    tau, invert = fold_batchnorm(gamma, beta, mean, var, eps, n)
    z = np.arange(-n, n + 1)[:, None]  # every reachable pre-activation
    bn = gamma * (z - mean) / np.sqrt(var + eps) + beta
    want = (bn >= 0).astype(int)  # sign(0) = +1
    zz = np.where(invert, -z, z)  # inverted weight bits negate z
    got = (zz >= tau).astype(int)
    assert np.array_equal(got, want)
    assert np.all((tau >= -n - 1) & (tau <= n + 1))
    assert tau[0] == -n - 1 and tau[1] == n + 1  # gamma = 0: constant 1 (beta >= 0) or 0


def test_fold_batchnorm_worked_example() -> None:
    """docs/datapath.md, "BatchNorm folding": tau = 1; gamma < 0 gives inversion and tau = 2."""
    tau, invert = fold_batchnorm(np.array([0.8, -0.5]), np.array([0.3, 0.2]),
                                 np.array([1.5, -2.0]), np.array([4.0, 1.0]), 0.0, 10)
    assert tau.tolist() == [1, 2] and invert.tolist() == [False, True]


# ---------------------------------------------------------------- weight loader
def test_loader_worked_example() -> None:
    """docs/datapath.md, "Weight loader": 9-bit parity fields from bit 28 (field 0 straddles)."""
    words = np.array([0xA0000000, 0x00000012, 0, 0], dtype=np.uint32)
    assert extract_fields(words, 28, 9, 1).tolist() == [298]  # 0b1_0010_1010
    r = unpack_fields(words, 28, 9, 3, parity=True)
    assert r.data.tolist() == [149, 0, 0] and r.n_errors == 0
    assert sign_extend(r.data, 8).tolist() == [-107, 0, 0]
    one = words.copy()
    one[0] ^= 1 << 30  # stream bit 30 = field bit 2: odd parity, detected, weight 0
    r1 = unpack_fields(one, 28, 9, 3, parity=True)
    assert r1.data.tolist() == [0, 0, 0] and r1.error.tolist() == [True, False, False]
    two = one.copy()
    two[1] ^= 1 << 1  # and stream bit 33 = field bit 5: even again, undetected
    r2 = unpack_fields(two, 28, 9, 3, parity=True)
    assert r2.data.tolist() == [135, 0, 0] and r2.n_errors == 0
    plain = unpack_fields(words, 28, 9, 3, parity=False)
    assert plain.data.tolist() == [298, 0, 0] and not plain.error.any()


def bitwise_fields(words, offset, q, count):
    """Field k bit j = bit (p % 32) of word p // 32 at stream position p = offset + k*q + j."""
    out = []
    for k in range(count):
        v = 0
        for j in range(q):
            p = offset + k * q + j
            v |= ((int(words[p // 32]) >> (p % 32)) & 1) << j
        out.append(v)
    return out


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 32), st.integers(0, 200), st.integers(0, 40), st.booleans(),
       st.integers(0, 2**32 - 1))
def test_unpack_fields_matches_bitwise_definition(q, offset, count, parity, seed) -> None:
    if parity and q < 2:
        q = 2
    words = np.random.default_rng(seed).integers(0, 1 << 32, 60, dtype=np.uint64).astype(np.uint32)
    fields = bitwise_fields(words, offset, q, count)
    r = unpack_fields(words, offset, q, count, parity=parity)
    if parity:
        odd = [bin(f).count("1") % 2 == 1 for f in fields]
        assert r.error.tolist() == odd
        assert r.data.tolist() == [0 if o else f >> 1 for f, o in zip(fields, odd)]
        assert r.n_errors == sum(odd)
    else:
        assert r.data.tolist() == fields and r.n_errors == 0


@pytest.mark.parametrize("q", [1, 2, 7, 8, 9, 13, 16])
def test_unpack_fields_inverts_the_host_packer(q: int) -> None:
    """The image's packer (host.codecs.bitstream) and the loader agree on the layout."""
    from host.codecs.bitstream import pack_codes

    gen = np.random.default_rng(q)
    codes = gen.integers(0, 1 << q, 301)
    seg = pack_codes(codes, q)
    seg = np.concatenate([seg, np.zeros(-seg.size % 4, dtype=np.uint8)])
    words = np.concatenate([gen.integers(0, 1 << 32, 3, dtype=np.uint64).astype(np.uint32),
                            seg.view("<u4")])  # tensor at word 3 (bit 96)
    assert unpack_fields(words, 96, q, codes.size, parity=False).data.tolist() == codes.tolist()


def test_unpack_fields_rejects_bad_requests() -> None:
    words = np.zeros(2, dtype=np.uint32)
    with pytest.raises(FlipLabError):
        unpack_fields(words, 60, 8, 1, parity=False)  # beyond the payload
    with pytest.raises(FlipLabError):
        unpack_fields(words, 0, 1, 1, parity=True)  # no room for a check bit
    with pytest.raises(FlipLabError):
        unpack_fields(words, 0, 33, 1, parity=False)


def test_inference_cycles_worked_example() -> None:
    """docs/datapath.md, "Cycles per layer": the digits MLP (64-64-32-10 int8, word-aligned
    weights) takes 1 + (512+14) + (256+14) + (40+14) = 851 cycles with 8 lanes; a binarized layer
    costs 9 besides its beats, and a first beat that needs a second RAM word one more."""
    layer = {"type": "int8", "q": 9, "bit_offset": 0}
    mlp = {"layers": [{**layer, "n_in": 64, "n_out": 64}, {**layer, "n_in": 64, "n_out": 32},
                      {**layer, "n_in": 32, "n_out": 10}]}
    assert inference_cycles(mlp, lanes=8) == 851
    binary = {"type": "binary", "q": 2, "n_in": 20, "n_out": 3, "bit_offset": 0}
    assert inference_cycles({"layers": [binary]}, lanes=8) == 1 + 3 * 3 + 9
    # 8 fields of 9 bits from bit 56 of a 128-bit word end at bit 128: no straddle; from 57 they do
    assert inference_cycles({"layers": [{**mlp["layers"][0], "bit_offset": 56}]}) == 1 + 512 + 14
    assert inference_cycles({"layers": [{**mlp["layers"][0], "bit_offset": 57}]}) == 1 + 512 + 15
    assert inference_cycles({"layers": [{**mlp["layers"][0], "bit_offset": 128 + 57}]}) == 1 + 512 + 15
