"""Input normalisations: how stored sample values become the model's float32 input.

Every dataset source states its *full scale*, the stored value of a full-intensity pixel:
16 for the embedded digits (pixels 0..16), 255 for integer data (uint8 pixels 0..255, as in
MNIST), 1 for float data (taken as already on the unit scale [0, 1]). The ``unit`` value of a
pixel is ``stored / full_scale``, in [0, 1]. Spec strings:

- ``unit``          ``stored / full_scale``, in [0, 1] (what the reference models expect)
- ``none``          the stored values as float32, untouched
- ``meanstd:M,S``   ``(unit - M) / S``; S > 0 (e.g. ``meanstd:0.1307,0.3081`` for MNIST)
- ``binary``        ``+1`` where ``unit >= 0.5``, else ``-1`` (for binarized-input models)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from host.errors import FlipLabError

NORMALIZATION_KINDS = ("unit", "none", "meanstd", "binary")


@dataclass(frozen=True)
class Normalization:
    """A parsed normalisation spec; ``apply`` maps stored samples to float32 model input."""

    kind: str            # one of NORMALIZATION_KINDS
    mean: float = 0.0    # meanstd only: subtracted from the unit value
    std: float = 1.0     # meanstd only: divides (unit - mean); > 0

    @property
    def spec(self) -> str:
        """Canonical spec string (parses back to an equal Normalization)."""
        if self.kind == "meanstd":
            return f"meanstd:{self.mean!r},{self.std!r}"
        return self.kind

    def apply(self, x: np.ndarray, full_scale: float, *, source: str = "dataset") -> np.ndarray:
        """Normalise stored samples ``x`` (any shape) whose full-intensity value is ``full_scale``.

        For every kind but ``none`` the stored values must lie in [0, full_scale]; otherwise
        the data is not on the scale its type implies and FlipLabError names ``source``.
        """
        if self.kind == "none":
            return np.asarray(x, dtype=np.float32)
        if x.size:
            lo, hi = float(np.min(x)), float(np.max(x))
            if not (0.0 <= lo and hi <= full_scale):  # also False for NaN
                raise FlipLabError(
                    f"{source}: values span [{lo:g}, {hi:g}], outside [0, {full_scale:g}] "
                    f"expected for {x.dtype} data; use normalize 'none' or store uint8 pixels "
                    f"0..255 or floats in [0, 1]"
                )
        unit = np.asarray(x, dtype=np.float32) / np.float32(full_scale)
        if self.kind == "unit":
            return unit
        if self.kind == "meanstd":
            return (unit - np.float32(self.mean)) / np.float32(self.std)
        # binary
        return np.where(unit >= np.float32(0.5), np.float32(1.0), np.float32(-1.0))


def parse_normalization(spec: str) -> Normalization:
    """Parse a normalisation spec string (see the module docstring); bad spec -> FlipLabError."""
    if not isinstance(spec, str):
        raise FlipLabError(f"normalize must be a string, got {type(spec).__name__}")
    text = spec.strip()
    kind, sep, args = text.partition(":")
    kind = kind.strip().lower()
    if kind in ("unit", "none", "binary"):
        if sep:
            raise FlipLabError(f"normalize '{spec}': '{kind}' takes no parameters")
        return Normalization(kind)
    if kind == "meanstd":
        parts = [p.strip() for p in args.split(",")] if sep else []
        if len(parts) != 2:
            raise FlipLabError(f"normalize '{spec}': expected meanstd:MEAN,STD (two numbers)")
        try:
            mean, std = float(parts[0]), float(parts[1])
        except ValueError:
            raise FlipLabError(f"normalize '{spec}': MEAN and STD must be numbers") from None
        if not math.isfinite(mean) or not math.isfinite(std) or std <= 0:
            raise FlipLabError(f"normalize '{spec}': MEAN must be finite and STD finite and > 0")
        return Normalization("meanstd", mean, std)
    raise FlipLabError(
        f"unknown normalize '{spec}': expected one of unit, none, meanstd:MEAN,STD, binary"
    )
