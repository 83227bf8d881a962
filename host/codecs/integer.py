"""``int<q>``: q-bit two's-complement integers (q = 2..32).

Two kinds of tensor, told apart by the input dtype:

* **Integer tensors** (QDQ codes already quantised: int8/uint8/int32 ...): the codes ARE the
  stored integers, exactly. A signed value v is stored as v mod 2**q; a value outside
  -2**(q-1)..2**(q-1)-1 is refused. An unsigned dtype whose range does not fit signed q bits
  (uint8 in int8) is stored with the offset 2**(q-1): code = (v - 2**(q-1)) mod 2**q, so the
  uint8 range 0..255 maps onto -128..127 (the code is v XOR 0x80). Decoding adds the offset back
  and, into an integer dtype, saturates to that dtype's range (a flipped bit of a wider code can
  leave it). A nulled weight decodes to the zero point (``fit(..., zero_point=)``, default 0):
  the stored integer whose dequantised value is 0.
* **Float tensors**: symmetric quantisation, zero point 0, scale = max|w| / (2**(q-1) - 1) per
  tensor, per channel, or from ``model_range`` (max(|lo|, |hi|)); w = scale·level with
  level = clip(round(w / scale)). An all-zero tensor has scale 0 and decodes to 0 exactly.
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
    fill_per_channel,
    listify,
    per_channel,
    reduce_channels,
)
from host.errors import FlipLabError

INT_MIN_BITS = 2
INT_MAX_BITS = 32


class IntCodec(Codec):
    """Two's-complement integers of q bits: stored integers, or symmetric float quantisation."""

    def __init__(self, bits: int) -> None:
        if not INT_MIN_BITS <= bits <= INT_MAX_BITS:
            raise FlipLabError(f"int{bits}: q out of range, int<q> takes q = {INT_MIN_BITS}..{INT_MAX_BITS}")
        self.bits = bits
        self.data_bits = bits
        self.spec = f"int{bits}"
        self.level_min = -(1 << (bits - 1))
        self.level_max = (1 << (bits - 1)) - 1

    def _offset_for(self, dtype: np.dtype) -> int:
        """0 for signed dtypes; 2**(q-1) for unsigned ones whose maximum does not fit signed q bits."""
        if dtype.kind == "u" and np.iinfo(dtype).max > self.level_max:
            return 1 << (self.bits - 1)
        return 0

    def fit(self, values: np.ndarray, *, axis: int | None = None, granularity: str = "tensor",
            model_range: tuple[float, float] | None = None,
            zero_point: float | list[float] | None = None) -> dict[str, Any]:
        """Integer tensors: {"kind": "integer", "dtype", "offset", "zero_point", layout};
        float tensors: {"kind": "scale", "scale", layout} with a symmetric scale."""
        values = np.asarray(values)
        if values.dtype.kind in "ui":
            return self._fit_integer(values, axis=axis, granularity=granularity, zero_point=zero_point)
        if granularity == "model":
            lo, hi = check_model_range(model_range)
            return {"kind": "scale", "granularity": "model",
                    "scale": max(abs(lo), abs(hi)) / self.level_max}
        check_finite(values, self.spec)
        layout, extent = reduce_channels(values, axis=axis, granularity=granularity, reducer="absmax")
        return {"kind": "scale", **layout, "scale": listify(extent / self.level_max, granularity)}

    def _fit_integer(self, values: np.ndarray, *, axis: int | None, granularity: str,
                     zero_point: float | list[float] | None) -> dict[str, Any]:
        zp = np.asarray(0 if zero_point is None else zero_point).reshape(-1)
        if zp.dtype.kind not in "uif" or (zp != np.round(zp)).any():
            raise FlipLabError(f"codec {self.spec}: zero_point must be integers, got {zero_point!r}")
        info = np.iinfo(values.dtype)
        if zp.size and ((zp < info.min) | (zp > info.max)).any():
            raise FlipLabError(f"codec {self.spec}: zero_point {zero_point!r} outside {values.dtype}")
        if zp.size > 1 or granularity == "channel":
            layout, _ = reduce_channels(values, axis=axis, granularity="channel", reducer="max")
            channels = layout["shape"][layout["axis"]]
            if zp.size not in (1, channels):
                raise FlipLabError(f"codec {self.spec}: {zp.size} zero points for {channels} channels")
            zp_json: int | list[int] = [int(z) for z in np.broadcast_to(zp, (channels,))]
        else:
            layout = {"granularity": "tensor"}
            zp_json = int(zp[0]) if zp.size else 0
        return {"kind": "integer", **layout, "dtype": values.dtype.name,
                "offset": self._offset_for(values.dtype), "zero_point": zp_json}

    def encode(self, values: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        """uint64 codes: v - offset mod 2**q (integer kind) or round(w / scale) mod 2**q."""
        values = np.asarray(values)
        mask = np.uint64((1 << self.bits) - 1)
        if params.get("kind") == "integer":
            if values.dtype.kind not in "ui":
                raise FlipLabError(f"codec {self.spec}: integer params but a {values.dtype} tensor")
            level = values.reshape(-1).astype(np.int64) - int(params.get("offset", 0))
            bad = (level < self.level_min) | (level > self.level_max)
            if bad.any():
                v = int(values.reshape(-1)[bad][0])
                raise FlipLabError(f"codec {self.spec}: value {v} does not fit {self.bits} bits "
                                   f"(stored range {self.level_min}..{self.level_max}, offset "
                                   f"{int(params.get('offset', 0))})")
            return level.astype(np.uint64) & mask
        check_finite(values, self.spec)
        check_shape(values, params, self.spec)
        flat = values.astype(np.float64).reshape(-1)
        outer, channels, inner = channel_layout(params, flat.size)
        scale = per_channel(params, "scale", channels).reshape(1, channels, 1)
        if (scale < 0).any() or not np.isfinite(scale).all():
            raise FlipLabError(f"codec {self.spec}: scale must be finite and >= 0")
        ratio = flat.reshape(outer, channels, inner) / np.where(scale > 0, scale, 1.0)
        level = np.where(scale > 0, np.rint(ratio), 0.0)
        level = np.clip(level, self.level_min, self.level_max).astype(np.int64).reshape(-1)
        return level.astype(np.uint64) & mask

    def levels(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Signed two's-complement value of each q-bit code (int64), all codes valid."""
        codes = np.asarray(codes, dtype=np.uint64)
        sign = (codes >> np.uint64(self.bits - 1)).astype(np.int64)
        level = codes.astype(np.int64) - (sign << self.bits)
        if self.bits <= 16:
            level = level.astype(np.int32)
        return level, np.ones(codes.shape, dtype=bool)

    def dequantise(self, level: np.ndarray, params: dict[str, Any], dtype: np.dtype) -> np.ndarray:
        """Integer kind: level + offset (saturated into an integer dtype); else scale·level."""
        if params.get("kind") == "integer":
            values = level.astype(np.int64) + int(params.get("offset", 0))
            if dtype.kind in "ui":
                info = np.iinfo(dtype)
                values = np.clip(values, info.min, info.max)
            return values.astype(dtype, copy=False)
        _, channels, _ = channel_layout(params, level.size)
        scale = per_channel(params, "scale", channels)
        return broadcast_affine(level, np.zeros(channels), scale, params).astype(dtype, copy=False)

    def null_fill(self, values: np.ndarray, nulled: np.ndarray, params: dict[str, Any]) -> None:
        """Nulled weights: the zero point (integer kind), 0.0 otherwise."""
        if params.get("kind") != "integer":
            values[nulled] = 0
            return
        _, channels, _ = channel_layout(params, values.size)
        fill_per_channel(values, nulled, per_channel(params, "zero_point", channels, default=0.0), params)
