"""Reading and flipping single bits of a payload, vectorised.

Payload bit ``i`` is bit ``i % 8`` (0 = least significant) of byte ``i // 8``.
"""

from __future__ import annotations

import numpy as np

from host.errors import FlipLabError

_BIT = np.array([1 << j for j in range(8)], dtype=np.uint8)  # mask of bit j of a byte
_BLOCK_BITS = 1 << 20  # bits per block of the dense flip method (a multiple of 8)
_SPARSE_CHUNK = 1 << 18  # positions per step of the sparse flip method


def check_payload(payload: object) -> np.ndarray:
    """``payload`` if it is a 1-D numpy uint8 array, else a FlipLabError."""
    if not isinstance(payload, np.ndarray) or payload.dtype != np.uint8 or payload.ndim != 1:
        what = (
            f"{payload.dtype} array of shape {payload.shape}"
            if isinstance(payload, np.ndarray)
            else type(payload).__name__
        )
        raise FlipLabError(f"payload must be a 1-D uint8 numpy array, got {what}")
    return payload


def _check_positions(payload: np.ndarray, positions: object) -> np.ndarray:
    pos = np.asarray(positions)
    if pos.size == 0:
        return np.zeros(0, dtype=np.int64)
    if pos.ndim != 1 or not np.issubdtype(pos.dtype, np.integer):
        raise FlipLabError(
            f"bit positions must be a 1-D integer array, got {pos.dtype} of shape {pos.shape}"
        )
    pos = pos.astype(np.int64, copy=False)
    n_bits = payload.size * 8
    if pos.min() < 0 or pos.max() >= n_bits:
        bad = pos[(pos < 0) | (pos >= n_bits)][0]
        raise FlipLabError(f"bit position {bad} is outside the {n_bits}-bit payload")
    return pos


def read_bits(payload: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Values (uint8, 0 or 1) of the payload bits at ``positions``."""
    payload = check_payload(payload)
    pos = _check_positions(payload, positions)
    return ((payload[pos >> 3] & _BIT[pos & 7]) != 0).view(np.uint8)


def _flip_sparse(payload: np.ndarray, pos: np.ndarray) -> None:
    """XOR sorted positions byte by byte: cost O(len(pos))."""
    byte = pos >> 3
    first = np.flatnonzero(byte[1:] != byte[:-1])
    first += 1
    first = np.concatenate([np.zeros(1, dtype=first.dtype), first])
    payload[byte[first]] ^= np.bitwise_xor.reduceat(_BIT[pos & 7], first)


def _flip_dense(payload: np.ndarray, pos: np.ndarray) -> None:
    """XOR sorted positions block by block (count parity per bit, packed): cost O(payload)."""
    n_bits = payload.size * 8
    edges = np.searchsorted(pos, np.arange(0, n_bits + _BLOCK_BITS, _BLOCK_BITS))
    for block, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        if a == b:
            continue
        start = block * _BLOCK_BITS
        size = min(_BLOCK_BITS, n_bits - start)
        parity = (np.bincount(pos[a:b] - start, minlength=size) & 1).astype(np.uint8)
        payload[start // 8: (start + size) // 8] ^= np.packbits(parity, bitorder="little")


def flip_bits(payload: np.ndarray, positions: np.ndarray) -> None:
    """XOR the payload bits at ``positions`` with 1, in place.

    Several positions may fall in one byte (all are applied); a position listed twice flips
    twice, i.e. not at all (XOR semantics). ``positions`` need not be sorted.

    Raises:
        FlipLabError: ``payload`` is not a writable 1-D uint8 array or a position is outside it.
    """
    payload = check_payload(payload)
    pos = _check_positions(payload, positions)
    if pos.size == 0:
        return
    if not payload.flags.writeable:
        raise FlipLabError("payload is read-only; flip a copy")
    if pos.size > 1 and np.any(pos[1:] < pos[:-1]):
        pos = np.sort(pos)
    if pos.size * 16 > payload.size * 8:  # more than 1 bit in 16: touch every byte anyway
        _flip_dense(payload, pos)
    else:  # a chunk at a time (XOR: a byte two chunks share takes both): bounded temporaries
        for i in range(0, pos.size, _SPARSE_CHUNK):
            _flip_sparse(payload, pos[i:i + _SPARSE_CHUNK])
