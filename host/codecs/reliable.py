"""``reliable(<codec>)``: a tensor kept in reliable memory, where no channel reaches it.

A plan may keep a few sensitive tensors (seed 000: the first conv layer) out of the noisy
memory. FlipLab models that reliable memory as **triple modular redundancy** (TMR) inside the
image: the inner codec's segment is stored three times (each copy padded to whole bytes) and
read back as the bitwise majority of the three. That is what a reliable store costs in a noisy
memory without ECC hardware (an assumption, stated in docs/codecs.md: other reliable stores,
e.g. a separate memory at nominal voltage, cost differently), so the bits-per-weight and
overhead columns count it at 3x the inner codec. In addition, ``Image.regions`` leaves these
tensors out, so no channel draws errors over them: the majority read matters only for dumps of
real memories, which may hit any byte.

Parameters (``fit``/``encode``/params in the image) are the inner codec's, unchanged.
"""

from __future__ import annotations

import numpy as np

from host.codecs import bitstream
from host.codecs.base import Codec, StorageCodec
from host.errors import FlipLabError

COPIES = 3


class ReliableCodec(StorageCodec):
    """The inner codec stored three times and read by bitwise majority; never corrupted by a
    channel (``reliable = True``)."""

    #: tensors in this codec are outside every channel's regions
    reliable = True

    def __init__(self, inner: Codec) -> None:
        if isinstance(inner, ReliableCodec):
            raise FlipLabError(f"reliable({inner.spec}): reliable cannot wrap reliable")
        self.inner = inner
        self.bits = inner.bits
        self.data_bits = inner.data_bits
        self.spec = f"reliable({inner.spec})"

    def copy_bytes(self, count: int) -> int:
        """Bytes of one copy: the inner segment rounded up to whole bytes."""
        return -(-self.inner.stored_bits(count) // 8)

    def stored_bits(self, count: int) -> int:
        """Three copies of the inner segment: ``3 * 8 * ceil(inner bits / 8)``."""
        return COPIES * 8 * self.copy_bytes(count)

    def overhead(self) -> float:
        """``3 * (1 + inner overhead) - 1``: reliable(fixed8) = 2.0."""
        return COPIES * (1.0 + self.inner.overhead()) - 1.0

    def pack(self, codes: np.ndarray) -> np.ndarray:
        """The inner segment, padded to ``copy_bytes``, three times."""
        one = np.zeros(self.copy_bytes(np.asarray(codes).size), dtype=np.uint8)
        inner = self.inner.pack(codes)
        one[: inner.size] = inner
        return np.tile(one, COPIES)

    def unpack(self, segment: np.ndarray | bytes, count: int) -> tuple[np.ndarray, np.ndarray, int]:
        """The inner codec's unpack of the bitwise majority of the three copies."""
        seg = bitstream.as_segment(segment)
        n = self.copy_bytes(count)
        if seg.size < COPIES * n:
            raise FlipLabError(f"{self.spec}: segment too short: {seg.size} bytes for {count} "
                               f"weights ({COPIES * n} needed)")
        a, b, c = seg[:n], seg[n:2 * n], seg[2 * n:3 * n]
        return self.inner.unpack((a & b) | (a & c) | (b & c), count)
