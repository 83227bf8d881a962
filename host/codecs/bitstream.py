"""Packing fixed-width codes into the little-endian bit stream of a memory image.

The layout (docs/internals.md, docs/image-format.md): stream bit ``i`` is bit ``i % 8`` of byte
``i // 8`` (equivalently bit ``i % 32`` of the little-endian 32-bit word ``i // 32``); code ``k``
of width ``q`` bits occupies stream bits ``[k*q, (k+1)*q)``, its bit ``j`` (``j = 0`` the least
significant) at stream bit ``k*q + j``.

Widths 1..64 are supported. Widths 1, 8, 16, 32 and 64 take direct numpy fast paths; any other
width packs groups of eight codes (which always fill exactly ``q`` bytes) into 64-bit words with
eight vectorised shift/or steps, so the cost is O(count) numpy work for every width.
The image layer, the codecs and the channels all use this one module.
"""

from __future__ import annotations

import numpy as np

from host.errors import FlipLabError

MAX_FIELD_BITS = 64
_FAST_DTYPES = {8: "<u1", 16: "<u2", 32: "<u4", 64: "<u8"}


def _check_width(bits: int) -> int:
    if not isinstance(bits, (int, np.integer)) or not 1 <= int(bits) <= MAX_FIELD_BITS:
        raise FlipLabError(f"bit width {bits!r} out of range: a code has 1..{MAX_FIELD_BITS} bits")
    return int(bits)


def segment_bytes(count: int, bits: int) -> int:
    """Bytes a segment of ``count`` codes of ``bits`` bits occupies: ceil(count*bits / 8)."""
    bits = _check_width(bits)
    if count < 0:
        raise FlipLabError(f"negative code count {count}")
    return (int(count) * bits + 7) // 8


def pack_codes(codes: np.ndarray, bits: int) -> np.ndarray:
    """Pack unsigned codes (each < 2**bits) into a uint8 segment of ``segment_bytes`` bytes.

    Trailing bits of the last byte are zero. Raises FlipLabError if a code is wider than ``bits``.
    """
    bits = _check_width(bits)
    codes = np.ascontiguousarray(codes).reshape(-1)
    if codes.size and codes.dtype.kind not in "ui":
        raise FlipLabError(f"codes must be integers, got dtype {codes.dtype}")
    codes = codes.astype(np.uint64, copy=False)
    count = codes.size
    if count == 0:
        return np.zeros(0, dtype=np.uint8)
    if bits < 64 and int(codes.max()) >> bits:
        raise FlipLabError(f"a code is wider than {bits} bits (largest code {int(codes.max())})")
    if bits in _FAST_DTYPES:
        return codes.astype(_FAST_DTYPES[bits]).view(np.uint8).copy()
    if bits == 1:
        return np.packbits(codes.astype(np.uint8), bitorder="little")
    groups = -(-count // 8)
    flat = np.zeros(groups * 8, dtype=np.uint64)
    flat[:count] = codes
    padded = flat.reshape(groups, 8)
    n_words = -(-bits // 8)  # eight codes fill exactly `bits` bytes, i.e. bits/8 words
    words = np.zeros((groups, n_words), dtype=np.uint64)
    for k in range(8):
        word, shift = divmod(k * bits, 64)
        words[:, word] |= padded[:, k] << np.uint64(shift)
        if shift + bits > 64:
            words[:, word + 1] |= padded[:, k] >> np.uint64(64 - shift)
    stream = words.astype("<u8").view(np.uint8).reshape(groups, 8 * n_words)[:, :bits]
    return stream.reshape(-1)[: segment_bytes(count, bits)].copy()


def as_segment(segment: np.ndarray | bytes | bytearray | memoryview) -> np.ndarray:
    """View raw bytes (bytes, bytearray, memoryview or a uint8 array) as a flat uint8 array."""
    if isinstance(segment, (bytes, bytearray, memoryview)):
        return np.frombuffer(segment, dtype=np.uint8)
    arr = np.asarray(segment)
    if arr.dtype != np.uint8:
        raise FlipLabError(f"a segment must be uint8 bytes, got dtype {arr.dtype}")
    return arr.reshape(-1)


def unpack_codes(segment: np.ndarray | bytes, count: int, bits: int) -> np.ndarray:
    """Read ``count`` codes of ``bits`` bits from the start of a segment, as uint64.

    Bytes after the first ``segment_bytes(count, bits)`` are ignored. Raises FlipLabError if the
    segment is shorter than that.
    """
    bits = _check_width(bits)
    seg = as_segment(segment)
    need = segment_bytes(count, bits)
    if seg.size < need:
        raise FlipLabError(
            f"segment too short: {seg.size} bytes for {count} codes of {bits} bits ({need} needed)"
        )
    seg = seg[:need]
    if count == 0:
        return np.zeros(0, dtype=np.uint64)
    if bits in _FAST_DTYPES:
        return seg.view(_FAST_DTYPES[bits]).astype(np.uint64)
    if bits == 1:
        return np.unpackbits(seg, count=count, bitorder="little").astype(np.uint64)
    groups = -(-count // 8)
    n_words = -(-bits // 8)
    raw = np.zeros((groups, 8 * n_words), dtype=np.uint8)
    flat = np.zeros(groups * bits, dtype=np.uint8)
    flat[:need] = seg
    raw[:, :bits] = flat.reshape(groups, bits)
    words = raw.view("<u8").astype(np.uint64)
    mask = np.uint64((1 << bits) - 1)
    out = np.empty((groups, 8), dtype=np.uint64)
    for k in range(8):
        word, shift = divmod(k * bits, 64)
        value = words[:, word] >> np.uint64(shift)
        if shift + bits > 64:
            value |= words[:, word + 1] << np.uint64(64 - shift)
        out[:, k] = value & mask
    return out.reshape(-1)[:count]


def read_codes(segment: np.ndarray | bytes, index: np.ndarray, bits: int) -> np.ndarray:
    """Codes ``index`` (int array of code numbers) of a segment of ``bits``-bit codes, as uint64.

    Reads only those codes: ``unpack_codes(segment, count, bits)[index]`` without unpacking the
    others (a gather of whole words for widths 8, 16, 32 and 64, else ``bits`` bit gathers).
    """
    bits = _check_width(bits)
    seg = as_segment(segment)
    index = np.asarray(index, dtype=np.int64)
    if index.size == 0:
        return np.zeros(0, dtype=np.uint64)
    if int(index.min()) < 0 or (int(index.max()) + 1) * bits > seg.size * 8:
        raise FlipLabError(f"code index outside a {seg.size}-byte segment of {bits}-bit codes")
    if bits in _FAST_DTYPES:
        width = bits // 8
        return seg[:seg.size // width * width].view(_FAST_DTYPES[bits])[index].astype(np.uint64)
    first = index * bits
    codes = np.zeros(index.size, dtype=np.uint64)
    for j in range(bits):
        pos = first + j
        bit = (seg[pos >> 3] >> (pos & 7).astype(np.uint8)) & np.uint8(1)
        codes |= bit.astype(np.uint64) << np.uint64(j)
    return codes
