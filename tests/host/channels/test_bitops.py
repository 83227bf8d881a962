"""Tests of host.channels.bitops (flip_bits, read_bits) and the FlipReport of flipped bits."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from host.channels import FlipReport, flip_bits, read_bits
from host.errors import FlipLabError

from .helpers import SETTINGS

# --------------------------------------------------------------------------- flip_bits

def test_two_flips_in_one_byte_are_both_applied():
    payload = np.zeros(2, dtype=np.uint8)
    flip_bits(payload, np.array([3, 8, 0]))
    assert payload.tolist() == [0b1001, 0b1]


def test_a_bit_listed_twice_flips_back():
    payload = np.array([0b10], dtype=np.uint8)
    flip_bits(payload, np.array([1, 5, 1]))
    assert payload.tolist() == [0b100010]  # bit 1 flipped twice: unchanged


@SETTINGS
@given(
    data=st.binary(min_size=1, max_size=64),
    picks=st.lists(st.integers(0, 10**6), max_size=60),
)
def test_flip_bits_matches_unpacked_xor(data, picks):
    payload = np.frombuffer(data, dtype=np.uint8).copy()
    positions = np.array([p % (payload.size * 8) for p in picks], dtype=np.int64)
    bits = np.unpackbits(payload, bitorder="little")
    for p in positions.tolist():  # reference, one bit at a time
        bits[p] ^= 1
    expected = np.packbits(bits, bitorder="little")
    flip_bits(payload, positions)
    np.testing.assert_array_equal(payload, expected)
    np.testing.assert_array_equal(read_bits(payload, np.arange(payload.size * 8)), bits)


@pytest.mark.parametrize(
    "payload, positions, word",
    [
        (np.zeros(2, np.uint8), np.array([16]), "outside"),
        (np.zeros(2, np.uint8), np.array([-1]), "outside"),
        (np.zeros(2, np.uint16), np.array([0]), "uint8"),
        (np.zeros((2, 2), np.uint8), np.array([0]), "1-D"),
        (np.zeros(2, np.uint8), np.array([0.5]), "integer"),
        ([0, 0], np.array([0]), "uint8"),
    ],
)
def test_flip_bits_bad_input(payload, positions, word):
    with pytest.raises(FlipLabError, match=word):
        flip_bits(payload, positions)


def test_flip_bits_refuses_read_only_payload():
    payload = np.zeros(2, np.uint8)
    payload.flags.writeable = False
    with pytest.raises(FlipLabError, match="read-only"):
        flip_bits(payload, np.array([1]))


def test_flip_report_by_hand():
    payload = np.array([0b0000_0101, 0xFF], dtype=np.uint8)
    report = FlipReport.of(payload, np.array([0, 1, 2, 9]), eligible_bits=16)
    assert (report.flips, report.zero_to_one, report.one_to_zero) == (4, 1, 3)
    assert report.observed_rber == 0.25


@pytest.mark.parametrize("n_flips", [50, 3000, 40_000])  # below and above 1 flip in 16 bits
def test_flip_bits_many_positions_with_repeats(n_flips):
    rng = np.random.default_rng(n_flips)
    payload = rng.integers(0, 256, 3000, dtype=np.uint8)
    positions = rng.integers(0, 8 * 3000, n_flips)  # unsorted, with repeats
    parity = np.bincount(positions, minlength=8 * 3000) % 2
    expected = payload ^ np.packbits(parity.astype(np.uint8), bitorder="little")
    flip_bits(payload, positions)
    np.testing.assert_array_equal(payload, expected)


def test_the_sparse_flip_in_small_chunks_with_repeats_across_chunk_edges(monkeypatch):
    """Chunks of the sparse method that split one byte's positions (repeats too) XOR both."""
    import host.channels.bitops as bitops

    monkeypatch.setattr(bitops, "_SPARSE_CHUNK", 3)
    rng = np.random.default_rng(5)
    payload = rng.integers(0, 256, 4000, dtype=np.uint8)
    positions = np.repeat(rng.integers(0, 8 * 4000, 400), rng.integers(1, 4, 400))
    parity = np.bincount(positions, minlength=8 * 4000) % 2
    expected = payload ^ np.packbits(parity.astype(np.uint8), bitorder="little")
    flip_bits(payload, positions)
    np.testing.assert_array_equal(payload, expected)
