"""The ``Codec`` interface and what every codec shares: code checks, ranges, per-channel broadcast.

A codec turns the weights of one tensor into one unsigned q-bit code per weight (``encode``),
and back (``decode``). Decoding is split in two steps, so that for q <= 16 the first one is a
single table gather (docs/decisions.md#3):

1. ``lookup(codes) -> (level, valid)``: the code's *level* (an integer index into the
   quantisation grid, a two's-complement integer, or for IEEE codecs the float value itself)
   and whether the code passed its check (parity failures are invalid). For ``bits <= 16`` this
   gathers from a 2**q-entry level table and a 2**q-entry valid table built once per codec
   instance from the arithmetic definition ``levels``.
2. ``dequantise(level, params, dtype)``: value = offset[channel] + step[channel] * level,
   broadcast per channel; invalid (nulled) weights are then set to the codec's null value
   (0.0, or the zero point for integer QDQ tensors).

Quantisation parameters (``params``) are plain JSON-serialisable dicts produced by ``fit``;
with granularity "channel" they carry ``axis`` and ``shape`` so a flat code array can be
broadcast against per-channel lists.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from functools import cached_property
from typing import Any

import numpy as np

from host.codecs import bitstream
from host.errors import FlipLabError

TABLE_MAX_BITS = 16
GRANULARITIES = ("model", "tensor", "channel")


def as_codes(codes: np.ndarray, bits: int) -> np.ndarray:
    """Flatten ``codes`` and check that they are non-negative integers below 2**bits."""
    arr = np.asarray(codes).reshape(-1)
    if arr.size == 0:
        return arr.astype(np.uint64)
    if arr.dtype.kind not in "ui":
        raise FlipLabError(f"codes must be unsigned integers, got dtype {arr.dtype}")
    if arr.dtype.kind == "i" and int(arr.min()) < 0:
        raise FlipLabError("codes must be non-negative")
    if bits < 64 and int(arr.max()) >> bits:
        raise FlipLabError(f"a code is wider than {bits} bits (largest code {int(arr.max())})")
    return arr


def parity_of(codes: np.ndarray) -> np.ndarray:
    """Modulo-2 sum of the bits of each code (0 or 1, uint8), via numpy.bitwise_count."""
    return (np.bitwise_count(np.asarray(codes, dtype=np.uint64)) & 1).astype(np.uint8)


def check_finite(values: np.ndarray, spec: str) -> None:
    """Refuse NaN/Inf input for codecs that quantise onto a finite grid."""
    if values.size and not np.isfinite(values).all():
        raise FlipLabError(f"codec {spec}: the tensor holds NaN or Inf values, cannot quantise")


def check_shape(values: np.ndarray, params: dict[str, Any], spec: str) -> None:
    """Per-channel params must describe the tensor being encoded (same shape)."""
    if params.get("granularity") == "channel" and list(values.shape) != list(params.get("shape", [])):
        raise FlipLabError(f"codec {spec}: tensor shape {list(values.shape)} does not match "
                           f"params shape {params.get('shape')}")


def channel_layout(params: dict[str, Any], count: int) -> tuple[int, int, int]:
    """(outer, channels, inner) such that flat weights reshape to that 3-D view, C order.

    Per-tensor and per-model parameters give (count, 1, 1).
    """
    if params.get("granularity") != "channel":
        return count, 1, 1
    try:
        shape = [int(s) for s in params["shape"]]
        axis = int(params["axis"])
    except (KeyError, TypeError, ValueError):
        raise FlipLabError("per-channel params need an integer 'axis' and a 'shape' list") from None
    if not 0 <= axis < len(shape):
        raise FlipLabError(f"params axis {axis} out of range for shape {shape}")
    if int(np.prod(shape, dtype=np.int64)) != count:
        raise FlipLabError(f"params shape {shape} does not hold {count} weights")
    outer = int(np.prod(shape[:axis], dtype=np.int64))
    inner = int(np.prod(shape[axis + 1 :], dtype=np.int64))
    return outer, shape[axis], inner


def per_channel(params: dict[str, Any], key: str, channels: int, default: float | None = None) -> np.ndarray:
    """Parameter ``key`` as a float64 array of length ``channels`` (a scalar is broadcast)."""
    if key not in params:
        if default is None:
            raise FlipLabError(f"codec params miss the key '{key}'")
        raw: Any = default
    else:
        raw = params[key]
    arr = np.asarray(raw, dtype=np.float64).reshape(-1)
    if arr.size == 1:
        return np.full(channels, arr[0])
    if arr.size != channels:
        raise FlipLabError(f"params '{key}' has {arr.size} entries for {channels} channels")
    return arr


def broadcast_affine(level: np.ndarray, offset: np.ndarray, step: np.ndarray,
                     params: dict[str, Any]) -> np.ndarray:
    """offset[channel] + step[channel] * level for flat levels, as float64 (flat)."""
    outer, channels, inner = channel_layout(params, level.size)
    view = level.reshape(outer, channels, inner)
    values = offset.reshape(1, channels, 1) + step.reshape(1, channels, 1) * view
    return values.reshape(-1)


def fill_per_channel(values: np.ndarray, mask: np.ndarray, fill: np.ndarray,
                     params: dict[str, Any]) -> None:
    """Set ``values[mask] = fill[channel of the weight]`` in place (flat arrays)."""
    outer, channels, inner = channel_layout(params, values.size)
    if channels == 1:
        values[mask] = fill[0]
        return
    full = np.broadcast_to(fill.reshape(1, channels, 1), (outer, channels, inner)).reshape(-1)
    values[mask] = full[mask]


def reduce_channels(values: np.ndarray, *, axis: int | None, granularity: str,
                    reducer: str) -> tuple[dict[str, Any], np.ndarray]:
    """Reduce a tensor per tensor or per channel with numpy's ``reducer`` ("min", "max", "absmax").

    Returns (layout params, reduced values as a 1-D float64 array: one entry, or one per channel).
    An empty tensor (or channel) reduces to 0.0.
    """
    layout: dict[str, Any] = {"granularity": granularity}
    if granularity == "tensor":
        data = values.reshape(1, -1)
    elif granularity == "channel":
        if values.ndim == 0:
            raise FlipLabError("channel granularity needs a tensor with at least one axis")
        if axis is None or not isinstance(axis, (int, np.integer)) or not -values.ndim <= axis < values.ndim:
            raise FlipLabError(f"channel axis {axis!r} out of range for a {values.ndim}-D tensor")
        axis = int(axis) % values.ndim
        layout.update(axis=axis, shape=[int(s) for s in values.shape])
        data = np.moveaxis(values, axis, 0).reshape(values.shape[axis], -1)
    else:
        raise FlipLabError(f"unknown granularity {granularity!r}: use one of {', '.join(GRANULARITIES)}")
    data = np.asarray(data, dtype=np.float64)
    if data.shape[1] == 0:
        return layout, np.zeros(data.shape[0])
    if reducer == "absmax":
        return layout, np.abs(data).max(axis=1)
    return layout, getattr(data, reducer)(axis=1)


def check_model_range(model_range: Any) -> tuple[float, float]:
    """Validate ``model_range = (lo, hi)``: two finite floats with lo <= hi."""
    if model_range is None:
        raise FlipLabError("granularity 'model' needs model_range=(lo, hi)")
    try:
        lo, hi = (float(x) for x in model_range)
    except (TypeError, ValueError):
        raise FlipLabError(f"model_range must be two numbers (lo, hi), got {model_range!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo > hi:
        raise FlipLabError(f"model_range ({lo}, {hi}) must be finite with lo <= hi")
    return lo, hi


def listify(arr: np.ndarray, granularity: str) -> float | list[float]:
    """JSON form of per-channel values: a list for 'channel', else a float."""
    if granularity == "channel":
        return [float(x) for x in arr]
    return float(arr[0])


class Codec(ABC):
    """A bit representation of weights: q stored bits per weight.

    Attributes:
        spec: canonical spec string (stored in the image; ``get_codec(spec)`` rebuilds it).
        bits: q, stored bits per weight (for SECDED: of the inner code, per weight).
        data_bits: information bits per weight (parity8: 7).
    """

    spec: str
    bits: int
    data_bits: int

    @property
    def field_bits(self) -> int:
        """Width of one stored field in the segment: q (SECDED: the 72-bit codeword)."""
        return self.bits

    def stored_bits(self, count: int) -> int:
        """Payload bits that ``count`` weights occupy in the image."""
        return int(count) * self.bits

    def overhead(self) -> float:
        """Asymptotic storage overhead: stored bits / data bits - 1 (0.0 for no redundancy)."""
        return self.bits / self.data_bits - 1.0

    @abstractmethod
    def fit(self, values: np.ndarray, *, axis: int | None = None, granularity: str = "tensor",
            model_range: tuple[float, float] | None = None,
            zero_point: float | list[float] | None = None) -> dict[str, Any]:
        """Quantisation parameters (a JSON-serialisable dict) for the tensor ``values``.

        granularity: "model" (use ``model_range=(lo, hi)``), "tensor", or "channel" (one entry
        per index along ``axis``). ``zero_point`` (QDQ tensors) is used by ``int<q>`` on integer
        inputs only: the stored integer a nulled weight decodes to.
        """

    @abstractmethod
    def encode(self, values: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        """One uint64 code (< 2**bits) per weight, flat in C order."""

    @abstractmethod
    def levels(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Arithmetic decode of codes to (level, valid); defines the tables for q <= 16."""

    @abstractmethod
    def dequantise(self, level: np.ndarray, params: dict[str, Any], dtype: np.dtype) -> np.ndarray:
        """Values (flat, in ``dtype``) of the levels; a fresh array the caller may modify."""

    def null_fill(self, values: np.ndarray, nulled: np.ndarray, params: dict[str, Any]) -> None:
        """Set nulled weights to the null value in place: 0.0 (integer QDQ: the zero point)."""
        values[nulled] = 0

    @cached_property
    def tables(self) -> tuple[np.ndarray, np.ndarray]:
        """(level table, valid table), 2**q entries each; built once, only for q <= 16."""
        if self.bits > TABLE_MAX_BITS:
            raise FlipLabError(f"codec {self.spec}: no decode table above {TABLE_MAX_BITS} bits")
        level, valid = self.levels(np.arange(1 << self.bits, dtype=np.uint64))
        level.setflags(write=False)
        valid.setflags(write=False)
        return level, valid

    @cached_property
    def invalid_table(self) -> np.ndarray:
        """2**q-entry mask of the codes that fail their check (nulled on decode)."""
        invalid = ~self.tables[1]
        invalid.setflags(write=False)
        return invalid

    def lookup(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(level, valid) per code: a table gather for q <= 16, arithmetic above."""
        if self.bits <= TABLE_MAX_BITS:
            level_table, valid_table = self.tables
            return np.take(level_table, codes), np.take(valid_table, codes)
        return self.levels(codes)

    def value_table(self, params: dict[str, Any], dtype: np.dtype | type | str) -> np.ndarray:
        """2**q-entry table of decoded values for per-tensor/per-model params (q <= 16).

        Entry c is the value of code c in ``dtype``; codes failing their check hold the null value.
        """
        if params.get("granularity") == "channel":
            raise FlipLabError(f"codec {self.spec}: per-channel params have one table per channel")
        level_table, valid_table = self.tables
        values = self.dequantise(level_table.copy(), params, np.dtype(dtype))
        self.null_fill(values, ~valid_table, params)
        return values

    def decode(self, codes: np.ndarray, params: dict[str, Any], *,
               dtype: np.dtype | type | str = np.float32) -> tuple[np.ndarray, np.ndarray]:
        """(flat values in ``dtype``, bool mask of nulled weights) for flat codes.

        q <= 16 with per-tensor/per-model params: one gather from ``value_table``. Per-channel
        params: a gather from the level table, then offset[channel] + step[channel]·level.
        q > 16: the arithmetic ``levels``, then the same dequantisation.
        """
        codes = as_codes(codes, self.bits)
        if self.bits <= TABLE_MAX_BITS and params.get("granularity") != "channel":
            return np.take(self.value_table(params, dtype), codes), np.take(self.invalid_table, codes)
        level, valid = self.lookup(codes)
        values = self.dequantise(level, params, np.dtype(dtype))
        nulled = ~valid
        if nulled.any():
            self.null_fill(values, nulled, params)
        return values, nulled

    def pack(self, codes: np.ndarray) -> np.ndarray:
        """The tensor's payload segment (uint8): codes in the little-endian bit stream."""
        return bitstream.pack_codes(as_codes(codes, self.bits), self.bits)

    def unpack(self, segment: np.ndarray | bytes, count: int) -> tuple[np.ndarray, np.ndarray, int]:
        """(codes, erased mask, corrected bits) from a segment; plain codecs never erase."""
        codes = bitstream.unpack_codes(segment, count, self.bits)
        return codes, np.zeros(count, dtype=bool), 0

    def word_by_word(self, params: dict[str, Any]) -> bool:
        """Whether each weight is its own stored field and its value depends on its own code
        only: not a SECDED block or a reliable copy (fields across weights), not per-channel
        parameters (whose channel a word's position would have to give). Such weights can be
        encoded, decoded and re-decoded in any slices of the tensor."""
        return type(self).unpack is Codec.unpack and params.get("granularity") != "channel"

    def __repr__(self) -> str:
        return f"<codec {self.spec}: {self.bits} bits, {self.data_bits} data bits>"


class WrappingCodec(Codec):
    """A codec built on an ``inner`` one (parity, SECDED, reliable): quantisation parameters,
    dequantisation and the null value are the inner codec's."""

    inner: Codec

    def fit(self, values: np.ndarray, *, axis: int | None = None, granularity: str = "tensor",
            model_range: tuple[float, float] | None = None,
            zero_point: float | list[float] | None = None) -> dict[str, Any]:
        """The inner codec's parameters."""
        return self.inner.fit(values, axis=axis, granularity=granularity,
                              model_range=model_range, zero_point=zero_point)

    def dequantise(self, level: np.ndarray, params: dict[str, Any], dtype: np.dtype) -> np.ndarray:
        """The inner codec's values."""
        return self.inner.dequantise(level, params, dtype)

    def null_fill(self, values: np.ndarray, nulled: np.ndarray, params: dict[str, Any]) -> None:
        """The inner codec's null value."""
        self.inner.null_fill(values, nulled, params)


class StorageCodec(WrappingCodec):
    """A codec that stores another codec's codes differently (SECDED codewords, reliable
    copies): the codes, levels and tables are the inner codec's too; subclasses define how the
    codes are packed, unpacked and sized."""

    @property
    def field_bits(self) -> int:
        return self.inner.field_bits

    def encode(self, values: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        """The inner codes (this codec acts at pack time)."""
        return self.inner.encode(values, params)

    def levels(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The inner codec's levels."""
        return self.inner.levels(codes)

    @property
    def tables(self) -> tuple[np.ndarray, np.ndarray]:
        """The inner codec's (level, valid) tables."""
        return self.inner.tables

    def lookup(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The inner codec's lookup (and its cached tables)."""
        return self.inner.lookup(codes)
