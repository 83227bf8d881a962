"""``secded(<inner>)``: extended Hamming (72,64) SECDED around any codec.

The inner codes of a tensor are packed into the inner bit stream (docs/internals.md layout),
cut into 64-bit data blocks (the last one zero-padded) and each block is stored as a 72-bit
codeword, codeword bit i at stream bit 72·b + i of the segment:

* bits 0..63: data bits d_0..d_63 (block bit d = inner stream bit 64·b + d);
* bits 64..70: Hamming check bits c_0..c_6;
* bit 71: overall parity p, making the number of ones in all 72 bits even.

So each codeword is 9 bytes: the block as a little-endian uint64, then one check byte
``c_0 | c_1<<1 | ... | c_6<<6 | p<<7``.

Parity-check matrix: take the 1-indexed Hamming(127,120) code; data bit d sits at ``pos(d)``,
the d-th (from 0) position in 1..127 that is not a power of two (pos = 3, 5, 6, 7, 9, ..., 71:
the code is shortened to positions 1..71), check bit c_k at position 2**k. Then
``c_k = XOR of d_d over all d with bit k of pos(d) set``. On reading, the syndrome
s = (received c) XOR (c recomputed from the received data) is the position of a single flip,
and P = parity of all 72 received bits tells odd from even numbers of flips:

* s = 0, P = 0: no error;
* P = 1, s = 0: the overall parity bit flipped (corrected, data untouched);
* P = 1, s = 2**k: check bit c_k flipped (corrected); P = 1, s = pos(d): data bit d flipped
  (corrected); P = 1, s > 71: not a single flip, uncorrectable;
* P = 0, s != 0: a double flip, detected, uncorrectable.

Weights whose bits touch a block with an uncorrectable error are returned in the ``erased``
mask of ``unpack`` (the image layer nulls them). Three or more flips in one codeword may be
miscorrected or pass unseen, as with any SECDED code. Everything is vectorised over blocks
with numpy.bitwise_count on uint64 masks.
"""

from __future__ import annotations

import numpy as np

from host.codecs import bitstream
from host.codecs.base import Codec, StorageCodec, as_codes, parity_of
from host.errors import FlipLabError

DATA_BITS = 64
CHECK_BITS = 7
CODEWORD_BITS = DATA_BITS + CHECK_BITS + 1
CODEWORD_BYTES = CODEWORD_BITS // 8


def data_positions() -> np.ndarray:
    """Hamming(127,120) position pos(d) of data bit d = 0..63: the non-powers of two 3..71."""
    positions = np.arange(1, 128)
    return positions[(positions & (positions - 1)) != 0][:DATA_BITS]


_POSITIONS = data_positions()
# CHECK_MASKS[k]: the data bits that check bit c_k covers, as one uint64 mask.
CHECK_MASKS = np.array(
    [sum(1 << int(d) for d in np.flatnonzero((_POSITIONS >> k) & 1)) for k in range(CHECK_BITS)],
    dtype=np.uint64,
)
# For a syndrome s (0..127): the data bit at position s, or -1.
_SYNDROME_TO_DATA = np.full(128, -1, dtype=np.int64)
_SYNDROME_TO_DATA[_POSITIONS] = np.arange(DATA_BITS)
# Syndromes a single flip can produce: 0 (overall bit), powers of two (check bits), data positions.
_SINGLE = _SYNDROME_TO_DATA >= 0
_SINGLE[[0] + [1 << k for k in range(CHECK_BITS)]] = True


def hamming_checks(data: np.ndarray) -> np.ndarray:
    """The 7 Hamming check bits of each 64-bit block, packed c_0..c_6 into bits 0..6 (uint8)."""
    data = np.asarray(data, dtype=np.uint64)
    checks = np.zeros(data.shape, dtype=np.uint8)
    for k in range(CHECK_BITS):
        checks |= parity_of(data & CHECK_MASKS[k]) << np.uint8(k)
    return checks


def encode_blocks(data: np.ndarray) -> np.ndarray:
    """Check byte of each 64-bit data block: c_0..c_6 in bits 0..6, overall parity in bit 7."""
    data = np.asarray(data, dtype=np.uint64)
    checks = hamming_checks(data)
    overall = parity_of(data) ^ parity_of(checks)
    return checks | (overall << np.uint8(7))


def decode_blocks(data: np.ndarray, check: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Correct single flips, detect double flips, per 72-bit codeword (data block + check byte).

    Returns (corrected data blocks uint64, uncorrectable mask, corrected mask): ``corrected``
    marks codewords where one flipped bit (data, check or overall parity) was corrected.
    """
    data = np.array(data, dtype=np.uint64, copy=True).reshape(-1)
    check = np.asarray(check, dtype=np.uint8).reshape(-1)
    if data.shape != check.shape:
        raise FlipLabError(f"{data.size} data blocks but {check.size} check bytes")
    syndrome = (check & np.uint8(0x7F)) ^ hamming_checks(data)
    odd = (parity_of(data) ^ parity_of(check)).astype(bool)
    single = odd & _SINGLE[syndrome]
    uncorrectable = (odd & ~single) | (~odd & (syndrome != 0))
    bit = _SYNDROME_TO_DATA[syndrome]
    fix = single & (bit >= 0)
    data[fix] ^= np.left_shift(np.uint64(1), bit[fix].astype(np.uint64))
    return data, uncorrectable, single


class SecdedCodec(StorageCodec):
    """(72,64) extended Hamming SECDED over the packed bit stream of an inner codec."""

    is_block_code = True

    def __init__(self, inner: Codec) -> None:
        if getattr(inner, "is_block_code", False):
            raise FlipLabError(f"secded({inner.spec}): secded cannot wrap secded")
        self.inner = inner
        self.bits = inner.bits
        self.data_bits = inner.data_bits
        self.spec = f"secded({inner.spec})"

    @property
    def field_bits(self) -> int:
        """One stored field is a 72-bit codeword."""
        return CODEWORD_BITS

    def blocks(self, count: int) -> int:
        """Number of 72-bit codewords for ``count`` weights: ceil(count·q / 64)."""
        return -(-int(count) * self.bits // DATA_BITS)

    def stored_bits(self, count: int) -> int:
        """72 bits per started 64-bit block of the inner stream."""
        return CODEWORD_BITS * self.blocks(count)

    def overhead(self) -> float:
        """(72/64)·(q / data bits) - 1: secded(fixed8) = 0.125."""
        return CODEWORD_BITS / DATA_BITS * self.bits / self.data_bits - 1.0

    def pack(self, codes: np.ndarray) -> np.ndarray:
        """Segment of 9-byte codewords: each 64-bit block (little-endian) then its check byte."""
        codes = as_codes(codes, self.bits)
        n_blocks = self.blocks(codes.size)
        stream = np.zeros(n_blocks * 8, dtype=np.uint8)
        inner = bitstream.pack_codes(codes, self.bits)
        stream[: inner.size] = inner
        data = stream.view("<u8")
        out = np.empty((n_blocks, CODEWORD_BYTES), dtype=np.uint8)
        out[:, :8] = stream.reshape(n_blocks, 8)
        out[:, 8] = encode_blocks(data)
        return out.reshape(-1)

    def unpack(self, segment: np.ndarray | bytes, count: int) -> tuple[np.ndarray, np.ndarray, int]:
        """(inner codes after correction, erased mask, number of corrected bits)."""
        seg = bitstream.as_segment(segment)
        n_blocks = self.blocks(count)
        need = n_blocks * CODEWORD_BYTES
        if seg.size < need:
            raise FlipLabError(f"{self.spec}: segment too short: {seg.size} bytes for {count} "
                               f"weights ({need} needed)")
        words = seg[:need].reshape(n_blocks, CODEWORD_BYTES)
        data = np.ascontiguousarray(words[:, :8]).view("<u8").reshape(-1)
        fixed, uncorrectable, corrected = decode_blocks(data, words[:, 8])
        codes = bitstream.unpack_codes(fixed.astype("<u8").view(np.uint8), count, self.bits)
        erased = np.zeros(count, dtype=bool)
        if uncorrectable.any():
            start = np.arange(count, dtype=np.int64) * self.bits
            erased = uncorrectable[start // DATA_BITS] | uncorrectable[(start + self.bits - 1) // DATA_BITS]
        return codes, erased, int(corrected.sum())
