"""Tests of host.codecs.bitstream: packing codes into the little-endian bit stream."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host.codecs import get_codec
from host.codecs.bitstream import pack_codes, read_codes, segment_bytes, unpack_codes
from host.errors import FlipLabError

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


@settings(max_examples=120, deadline=None)
@given(data=st.data(), q=st.integers(1, 64))
def test_read_codes_is_unpacking_all_then_indexing(data, q):
    """Reading chosen codes of a segment gives what unpacking all of them and indexing gives."""
    count = data.draw(st.integers(1, 50))
    codes = np.array(data.draw(st.lists(st.integers(0, 2**q - 1), min_size=count,
                                        max_size=count)), dtype=np.uint64)
    index = np.array(data.draw(st.lists(st.integers(0, count - 1), max_size=20)), dtype=np.int64)
    segment = pack_codes(codes, q)
    assert np.array_equal(read_codes(segment, index, q), unpack_codes(segment, count, q)[index])


def test_read_codes_refuses_an_index_outside_the_segment():
    with pytest.raises(FlipLabError, match="outside"):
        read_codes(pack_codes(np.array([1, 2, 3]), 8), np.array([3]), 8)
