"""``fixed<q>``: q-bit unsigned fixed point over [w_min, w_max] (seed 000 eq. (1); seed 001 II-B2).

Nearest-level reading of seed 000 eq. (1) (the default)::

    Δ = (w_max - w_min) / (2**q - 1)          level i in 0..2**q-1
    decode: w = w_min + Δ·i                    encode: i = clip(round((w - w_min) / Δ), 0, 2**q-1)

so every w in [w_min, w_max] comes back within Δ/2. Seed 000 phrases encoding with intervals
b_i <= w < b_(i+1) over [w_min - Δ, w_max + Δ]; we keep its decode (1) and encode to the nearest
decode level, which is what makes the grid points w_min and w_max exact.

``fixed<q>:mid`` is seed 001's binary expansion with the +1/2 midpoint reconstruction::

    width = (w_max - w_min) / 2**q
    decode: w = w_min + width·(1/2 + i)        encode: i = clip(floor((w - w_min) / width), 0, 2**q-1)

(round-trip error <= width/2). A degenerate range (w_max == w_min) has Δ = width = 0: every
weight encodes to level 0 and decodes to w_min exactly.

The code of level i is the q-bit binary expansion of i (MSB = code bit q-1 = seed 000's i_0).
Subclasses (``hamming<q>``, ``gray<q>``) keep this range and affine step and only change the
bijection between codes and levels (``level_of_code`` / ``code_of_level``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from host.codecs.base import (
    Codec,
    broadcast_affine,
    channel_layout,
    check_finite,
    check_model_range,
    check_shape,
    listify,
    per_channel,
    reduce_channels,
)
from host.errors import FlipLabError

FIXED_MIN_BITS = 2
FIXED_MAX_BITS = 16


class FixedCodec(Codec):
    """Unsigned fixed point: levels 0..2**q-1 spread uniformly over [w_min, w_max]."""

    family = "fixed"

    def __init__(self, bits: int, *, midpoint: bool = False) -> None:
        if not FIXED_MIN_BITS <= bits <= FIXED_MAX_BITS:
            raise FlipLabError(
                f"{self.family}{bits}: q out of range, {self.family}<q> takes q = "
                f"{FIXED_MIN_BITS}..{FIXED_MAX_BITS}"
            )
        self.bits = bits
        self.data_bits = bits
        self.midpoint = midpoint
        self.spec = f"{self.family}{bits}" + (":mid" if midpoint else "")

    # -- the bijection between q-bit codes and levels (identity: binary expansion) --------------
    def level_of_code(self, codes: np.ndarray) -> np.ndarray:
        """Level index f(b) of each code b (int64)."""
        return np.asarray(codes, dtype=np.int64)

    def code_of_level(self, levels: np.ndarray) -> np.ndarray:
        """Code f^-1(i) of each level i (uint64)."""
        return np.asarray(levels, dtype=np.uint64)

    # -- range --------------------------------------------------------------------------------
    def fit(self, values: np.ndarray, *, axis: int | None = None, granularity: str = "tensor",
            model_range: tuple[float, float] | None = None,
            zero_point: float | list[float] | None = None) -> dict[str, Any]:
        """{"granularity", ["axis", "shape",] "w_min", "w_max"}: the range [w_min, w_max].

        "model" uses ``model_range``; "tensor" the tensor's min/max; "channel" one min/max per
        index along ``axis`` (lists). ``zero_point`` is ignored.
        """
        values = np.asarray(values)
        if granularity == "model":
            lo, hi = check_model_range(model_range)
            return {"granularity": "model", "w_min": lo, "w_max": hi}
        check_finite(values, self.spec)
        layout, w_min = reduce_channels(values, axis=axis, granularity=granularity, reducer="min")
        _, w_max = reduce_channels(values, axis=axis, granularity=granularity, reducer="max")
        return {**layout, "w_min": listify(w_min, granularity), "w_max": listify(w_max, granularity)}

    def _affine(self, params: dict[str, Any], channels: int) -> tuple[np.ndarray, np.ndarray]:
        """(offset, step) per channel: w = offset + step·level."""
        w_min = per_channel(params, "w_min", channels)
        w_max = per_channel(params, "w_max", channels)
        if not (np.isfinite(w_min).all() and np.isfinite(w_max).all()) or (w_max < w_min).any():
            raise FlipLabError(f"codec {self.spec}: params need finite w_min <= w_max")
        if self.midpoint:
            width = (w_max - w_min) / float(1 << self.bits)
            return w_min + 0.5 * width, width
        return w_min, (w_max - w_min) / float((1 << self.bits) - 1)

    def encode(self, values: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        """Codes of the nearest level (``:mid``: of the interval holding w), clipped to the range."""
        values = np.asarray(values)
        check_finite(values, self.spec)
        flat = values.astype(np.float64).reshape(-1)
        check_shape(values, params, self.spec)
        outer, channels, inner = channel_layout(params, flat.size)
        offset, step = self._affine(params, channels)
        w_min = per_channel(params, "w_min", channels).reshape(1, channels, 1)
        width = step.reshape(1, channels, 1)
        safe = np.where(width > 0, width, 1.0)
        ratio = (flat.reshape(outer, channels, inner) - w_min) / safe
        level = np.floor(ratio) if self.midpoint else np.rint(ratio)
        level = np.where(width > 0, level, 0.0)
        level = np.clip(level, 0, (1 << self.bits) - 1).astype(np.int64).reshape(-1)
        return self.code_of_level(level)

    def levels(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Level of each code (int32 for the table), all codes valid."""
        level = self.level_of_code(codes).astype(np.int32)
        return level, np.ones(level.shape, dtype=bool)

    def dequantise(self, level: np.ndarray, params: dict[str, Any], dtype: np.dtype) -> np.ndarray:
        """offset[channel] + step[channel]·level, computed in float64, rounded to ``dtype``."""
        _, channels, _ = channel_layout(params, level.size)
        offset, step = self._affine(params, channels)
        return broadcast_affine(level, offset, step, params).astype(dtype, copy=False)
