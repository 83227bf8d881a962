"""``sign``: one bit per weight for binarized layers (seed 004's sign weights).

code 1 <=> +1 (w >= 0), code 0 <=> -1 (w < 0). Decode gives ±1 times ``params["scale"]``
(default 1.0; a list with ``granularity = "channel"``, ``axis`` and ``shape`` scales per
channel). A binarized layer consumes sign(w), so ``fit`` returns scale 1.0: the decoded ±1
weights feed the consumer directly. A flip turns +1 into -1 and back; nothing is ever nulled.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from host.codecs.base import Codec, broadcast_affine, channel_layout, check_finite, per_channel


class SignCodec(Codec):
    """The sign bit of each weight: 1 bit, levels -1 and +1."""

    spec = "sign"
    bits = 1
    data_bits = 1

    def fit(self, values: np.ndarray, *, axis: int | None = None, granularity: str = "tensor",
            model_range: tuple[float, float] | None = None,
            zero_point: float | list[float] | None = None) -> dict[str, Any]:
        """{"scale": 1.0}: binarized layers use the bare sign."""
        return {"scale": 1.0}

    def encode(self, values: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        """1 where w >= 0, else 0 (uint64)."""
        values = np.asarray(values)
        check_finite(values, self.spec)
        return (values.reshape(-1) >= 0).astype(np.uint64)

    def levels(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Level 2·code - 1 in {-1, +1} (int32), all codes valid."""
        codes = np.asarray(codes)
        return codes.astype(np.int32) * 2 - 1, np.ones(codes.shape, dtype=bool)

    def dequantise(self, level: np.ndarray, params: dict[str, Any], dtype: np.dtype) -> np.ndarray:
        """scale[channel]·level."""
        _, channels, _ = channel_layout(params, level.size)
        scale = per_channel(params, "scale", channels, default=1.0)
        return broadcast_affine(level, np.zeros(channels), scale, params).astype(dtype, copy=False)
