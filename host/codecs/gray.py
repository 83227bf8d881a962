"""``gray<q>``: reflected binary Gray code mapping (seed 001, Example 1 and Remark 2).

Level i is stored as the code g = i XOR (i >> 1), so adjacent levels differ in one bit; the
converse does not hold, which is why seed 001 uses it as a counter-example: at q = 2 the
mapping {00, 01, 11, 10} <-> {0, 1, 2, 3} has d_max,1 = 3/4, worse than binary expansion's 1/2.
Decoding inverts the Gray code with a prefix XOR (i = g ^ g>>1 ^ g>>2 ^ ...).

The level goes through the same range and affine step as ``fixed<q>`` (``:mid`` too).
"""

from __future__ import annotations

import numpy as np

from host.codecs.fixed import FixedCodec


class GrayCodec(FixedCodec):
    """Fixed-point levels stored as reflected binary Gray codes."""

    family = "gray"

    def level_of_code(self, codes: np.ndarray) -> np.ndarray:
        """Inverse Gray code: prefix XOR of the code's bits from the MSB down."""
        level = np.asarray(codes, dtype=np.uint64).copy()
        shift = 1
        while shift < self.bits:
            level ^= level >> np.uint64(shift)
            shift <<= 1
        return level.astype(np.int64)

    def code_of_level(self, levels: np.ndarray) -> np.ndarray:
        """Gray code g = i XOR (i >> 1)."""
        levels = np.asarray(levels, dtype=np.uint64)
        return levels ^ (levels >> np.uint64(1))
