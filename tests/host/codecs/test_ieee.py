"""Tests of host.codecs.ieee (float16, bfloat16, float32) against the seeds' worked examples."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from host.codecs import get_codec
from host.errors import FlipLabError

from .helpers import bits_of

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
