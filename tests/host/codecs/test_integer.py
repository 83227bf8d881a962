"""Tests of host.codecs.integer: QDQ codes kept exactly, offsets, symmetric scales, saturation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from host.codecs import get_codec
from host.errors import FlipLabError

from .helpers import FAST

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
