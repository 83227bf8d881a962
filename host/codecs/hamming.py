"""``hamming<q>``: the Hamming-distance-based representation (seed 001, section V, Construction 1).

The bijection f between q-bit arrays and levels 0..2**q-1 orders the arrays by Hamming weight,
then lexicographically with the array written MSB first (code bit q-1 first, so lexicographic
order is the numeric order of the code). For q = 3 this is Example 2's order
{000, 001, 010, 100, 011, 101, 110, 111} <-> {0, ..., 7}. A single bit flip moves a code to an
adjacent Hamming-weight group, so the level moves by at most the size of two groups and the
distortion d_max,1 shrinks like 1/sqrt(q) (Theorem 1), unlike binary expansion's 1/2.

The level goes through the same range and affine step as ``fixed<q>`` (``:mid`` too).
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from host.codecs.fixed import FixedCodec


def hamming_order(bits: int) -> np.ndarray:
    """Codes in level order: entry i is the q-bit code f^-1(i) (uint64), Construction 1."""
    codes = np.arange(1 << bits, dtype=np.uint64)
    return codes[np.lexsort((codes, np.bitwise_count(codes)))]


class HammingCodec(FixedCodec):
    """Fixed-point levels stored through the Hamming-weight-ordered bijection."""

    family = "hamming"

    @cached_property
    def _code_table(self) -> np.ndarray:
        return hamming_order(self.bits)

    @cached_property
    def _level_table(self) -> np.ndarray:
        inverse = np.empty(1 << self.bits, dtype=np.int64)
        inverse[self._code_table] = np.arange(1 << self.bits, dtype=np.int64)
        return inverse

    def level_of_code(self, codes: np.ndarray) -> np.ndarray:
        """f(b): rank of code b in (Hamming weight, value) order."""
        return self._level_table[np.asarray(codes, dtype=np.uint64)]

    def code_of_level(self, levels: np.ndarray) -> np.ndarray:
        """f^-1(i): the i-th code in (Hamming weight, value) order."""
        return self._code_table[np.asarray(levels, dtype=np.int64)]
