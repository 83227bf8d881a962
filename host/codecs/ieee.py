"""IEEE 754 codecs: ``float32``, ``float16`` and ``bfloat16`` (seed 001, section II-B1).

The code is the bit pattern of the value (sign bit = code bit q-1, then exponent, then
significand down to code bit 0). There is no range and no quantisation parameter: a code
decodes to the value exactly as stored. Codes with an all-ones exponent decode to Inf or NaN;
a flipped exponent bit produces them (and huge finite values such as 21840 from 0.333 in
float16), which is precisely the fragility seed 001 describes, so they are kept, not masked.

Decode of float16/bfloat16 is a gather from a 65536-entry float32 table (exact: every float16
and bfloat16 value is a float32 value); float32 is a bit-cast view. Encoding rounds to nearest
even (numpy / ml_dtypes casts); a finite input that overflows the format raises FlipLabError.
"""

from __future__ import annotations

from typing import Any

import ml_dtypes
import numpy as np

from host.codecs.base import Codec
from host.errors import FlipLabError

_FORMATS: dict[str, tuple[int, Any, Any]] = {
    # name: (bits, numpy dtype of the format, unsigned integer dtype of the same width)
    "float32": (32, np.float32, np.uint32),
    "float16": (16, np.float16, np.uint16),
    "bfloat16": (16, ml_dtypes.bfloat16, np.uint16),
}


class FloatCodec(Codec):
    """An IEEE 754 binary format stored bit for bit (q = 32 or 16, no redundancy)."""

    def __init__(self, name: str) -> None:
        if name not in _FORMATS:
            raise FlipLabError(f"unknown IEEE format {name!r}: use float32, float16 or bfloat16")
        self.spec = name
        self.bits, self._float, self._uint = _FORMATS[name]
        self.data_bits = self.bits

    def fit(self, values: np.ndarray, *, axis: int | None = None, granularity: str = "tensor",
            model_range: tuple[float, float] | None = None,
            zero_point: float | list[float] | None = None) -> dict[str, Any]:
        """IEEE codecs need no parameters: returns {}."""
        return {}

    def encode(self, values: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        """Round each value to the format (nearest even) and return its bit pattern as uint64."""
        src = np.asarray(values).reshape(-1)
        with np.errstate(over="ignore"):  # overflow is reported below, as a FlipLabError
            stored = src.astype(self._float)
        overflow = np.isinf(stored) & np.isfinite(src.astype(np.float64))
        if overflow.any():
            big = float(np.asarray(src, dtype=np.float64)[overflow][0])
            limit = float(ml_dtypes.finfo(self._float).max)
            raise FlipLabError(f"codec {self.spec}: value {big:g} overflows the format (max {limit:g})")
        return stored.view(self._uint).astype(np.uint64)

    def levels(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The stored value itself (float32, exact), every code valid."""
        raw = np.asarray(codes).astype(self._uint)
        with np.errstate(invalid="ignore"):  # signalling NaN codes are data here, not errors
            values = raw.view(self._float).astype(np.float32)
        return values, np.ones(raw.shape, dtype=bool)

    def lookup(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """float32 is a bit-cast view; float16/bfloat16 a 65536-entry table gather."""
        if self.bits == 32:
            return self.levels(codes)
        return super().lookup(codes)

    def dequantise(self, level: np.ndarray, params: dict[str, Any], dtype: np.dtype) -> np.ndarray:
        """The stored value cast to ``dtype`` (no affine step: -0.0, Inf and NaN kept)."""
        with np.errstate(invalid="ignore"):  # signalling NaN codes are data here, not errors
            return level.astype(dtype, copy=False)  # gathered levels are already a fresh array
