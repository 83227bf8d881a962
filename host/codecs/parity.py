"""Weight nulling ``parity(<inner>)`` (seed 000, section III-A; seed 001, section IV).

One even-parity check bit is appended below the inner code::

    stored code = (inner_code << 1) | p,   p = popcount(inner_code) mod 2

so the q = inner.bits + 1 stored bits have an even number of ones, and the check bit is the
least significant stored bit (code bit 0, seed 000's i_(q-1); stream bit k·q of weight k;
docs/decisions.md#13).
On decode a code with an odd number of ones fails the check: the weight is *nulled* (set to
0.0, or to the zero point for integer QDQ tensors) and counted in the nulled mask. Every odd
number of flips inside a weight is detected; every even number passes unseen.

``parity<q>`` is the alias of ``parity(fixed<q-1>)``: parity8 = 7 data bits + 1 check bit, the
configuration of seed 000's experiments. Parity may wrap any codec of at most 31 bits except
another parity or a SECDED codec (a second check bit would always be 0; SECDED is outermost).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from host.codecs.base import Codec, WrappingCodec, parity_of
from host.codecs.fixed import FixedCodec
from host.errors import FlipLabError

PARITY_MAX_BITS = 32


class ParityCodec(WrappingCodec):
    """An inner codec plus one even-parity check bit per weight (weight nulling)."""

    def __init__(self, inner: Codec) -> None:
        if isinstance(inner, ParityCodec):
            raise FlipLabError(f"parity({inner.spec}): parity cannot wrap parity, one check bit per weight")
        if getattr(inner, "is_block_code", False):
            raise FlipLabError(f"parity({inner.spec}): secded must be the outermost codec")
        if inner.bits + 1 > PARITY_MAX_BITS:
            raise FlipLabError(f"parity({inner.spec}): {inner.bits + 1} bits exceed the {PARITY_MAX_BITS}-bit limit")
        self.inner = inner
        self.bits = inner.bits + 1
        self.data_bits = inner.data_bits
        alias = type(inner) is FixedCodec and not inner.midpoint
        self.spec = f"parity{self.bits}" if alias else f"parity({inner.spec})"

    def encode(self, values: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        """(inner_code << 1) | even-parity bit."""
        inner = self.inner.encode(values, params)
        return (inner << np.uint64(1)) | parity_of(inner).astype(np.uint64)

    def levels(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Inner level of code >> 1; valid iff the q bits hold an even number of ones."""
        codes = np.asarray(codes, dtype=np.uint64)
        level, inner_valid = self.inner.levels(codes >> np.uint64(1))
        return level, inner_valid & (parity_of(codes) == 0)

