"""Seed 001's distortion measures of a bijection f between q-bit arrays and levels (Definition 1).

f is given as its level table: ``levels[b] = f(b)`` for every code b in 0..2**q-1 (the first
element of a codec's ``tables``). With the normalised L1 distance

    d(f, b1, b2) = |f(b1) - f(b2)| / 2**q

the distance-k measures look at every x with 1 <= d_H(b, x) <= k::

    d_max,k(f, b) = max over those x of d(f, b, x)     d_max,k(f) = max over b of d_max,k(f, b)
    d_ave,k(f, b) = mean over those x of d(f, b, x)    d_ave,k(f) = mean over b of d_ave,k(f, b)

All functions are vectorised over the 2**q codes and the flip masks.
"""

from __future__ import annotations

from itertools import combinations
from math import comb

import numpy as np

from host.errors import FlipLabError

MAX_BITS = 20


def _levels(levels: np.ndarray) -> tuple[np.ndarray, int]:
    levels = np.asarray(levels).reshape(-1)
    q = levels.size.bit_length() - 1
    if levels.size < 2 or levels.size != 1 << q or q > MAX_BITS:
        raise FlipLabError(f"a level table has 2**q entries (q = 1..{MAX_BITS}), got {levels.size}")
    if not np.array_equal(np.sort(levels), np.arange(levels.size)):
        raise FlipLabError("the level table is not a bijection onto 0..2**q-1")
    return levels.astype(np.int64), q


def flip_masks(bits: int, k: int) -> np.ndarray:
    """Every q-bit mask with 1..k ones (uint64): the flips at Hamming distance <= k."""
    if not 1 <= k <= bits:
        raise FlipLabError(f"distance k = {k} out of range 1..{bits}")
    masks = [sum(1 << j for j in chosen) for r in range(1, k + 1) for chosen in combinations(range(bits), r)]
    return np.array(masks, dtype=np.uint64)


def distortion(levels: np.ndarray, b1: np.ndarray | int, b2: np.ndarray | int) -> np.ndarray:
    """d(f, b1, b2) = |f(b1) - f(b2)| / 2**q for codes b1, b2 (broadcast)."""
    table, q = _levels(levels)
    return np.abs(table[np.asarray(b1)] - table[np.asarray(b2)]) / float(1 << q)


def neighbour_distortions(levels: np.ndarray, k: int = 1) -> np.ndarray:
    """Array [b, m] = d(f, b, b XOR mask_m) over all codes b and all masks of 1..k ones."""
    table, q = _levels(levels)
    codes = np.arange(1 << q, dtype=np.uint64)
    neighbours = codes[:, None] ^ flip_masks(q, k)[None, :]
    return np.abs(table[:, None] - table[neighbours]) / float(1 << q)


def d_max_per_code(levels: np.ndarray, k: int = 1) -> np.ndarray:
    """d_max,k(f, b) for every code b."""
    return neighbour_distortions(levels, k).max(axis=1)


def d_ave_per_code(levels: np.ndarray, k: int = 1) -> np.ndarray:
    """d_ave,k(f, b) for every code b."""
    return neighbour_distortions(levels, k).mean(axis=1)


def d_max(levels: np.ndarray, k: int = 1) -> float:
    """d_max,k(f): the worst distortion any <= k flips can cause, over all codes."""
    return float(d_max_per_code(levels, k).max())


def d_ave(levels: np.ndarray, k: int = 1) -> float:
    """d_ave,k(f): the mean over codes of the mean distortion of their <= k-flip neighbours."""
    return float(d_ave_per_code(levels, k).mean())


def theorem1_bound(bits: int) -> float:
    """Theorem 1's bound on d_max,1 of the Hamming-distance-based bijection.

    A flip moves a code to an adjacent Hamming-weight group, so its level moves by less than
    the size of the two groups: d_max,1 <= max_w (C(q, w) + C(q, w+1)) / 2**q <= 2·C(q, q/2) / 2**q.
    Returns the first (tighter) expression.
    """
    if bits < 1:
        raise FlipLabError(f"q = {bits} out of range (q >= 1)")
    return max(comb(bits, w) + comb(bits, w + 1) for w in range(bits)) / float(1 << bits)
