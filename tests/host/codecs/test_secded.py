"""Tests of host.codecs.secded: the (72,64) code by hand, every single and double flip."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest

from host.codecs import get_codec
from host.codecs.secded import data_positions, decode_blocks, encode_blocks

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
