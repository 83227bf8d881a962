"""Memory image -> weights: unpack each tensor's codes and decode them (a table gather).

Weights whose code failed its check (weight nulling's parity bit) or sat in a block that SECDED
could not correct are *nulled*: they read as 0 (for QDQ integer codes, as the zero point, whose
dequantised value is 0) and are counted per tensor (docs/decisions.md#3, #14).

Two ways in, one decoding:

- :func:`decode_weights` decodes a whole image (``host eval``);
- :class:`IncrementalDecoder` decodes a clean image once and then follows a growing set of bit
  flips (a campaign walking the rates of one trial's nested pattern, or a bisection probing
  rates): each call flips only the new bits and re-decodes only the weights whose stored
  words they touch (whole tensors for SECDED and per-channel parameters)
  (docs/decisions.md#4, #9).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from host.channels import flip_bits
from host.codecs import Codec
from host.codecs.bitstream import read_codes
from host.image import Image, TensorEntry


@dataclass(frozen=True)
class DecodedWeights:
    """The weights one image decodes to.

    Attributes:
        image: the image they were decoded from (executors that read the payload themselves,
            like the accelerator, take it from here).
        weights: tensor name -> values in the graph's dtype and shape.
        nulled: tensor name -> number of nulled weights.
        corrected: tensor name -> bits corrected by an ECC codec (SECDED).
    """

    image: Image
    weights: dict[str, np.ndarray]
    nulled: dict[str, int]
    corrected: dict[str, int]

    @property
    def total_nulled(self) -> int:
        return int(sum(self.nulled.values()))

    @property
    def total_corrected(self) -> int:
        return int(sum(self.corrected.values()))


def decode_tensor(image: Image, entry: TensorEntry) -> tuple[np.ndarray, int, int]:
    """(values shaped like the tensor, nulled count, corrected bits) of one tensor."""
    codec = entry.codec_obj
    codes, erased, corrected = codec.unpack(image.segment(entry), entry.count)
    values, nulled = codec.decode(codes, entry.params, dtype=np.dtype(entry.dtype))
    if erased is not None and erased.any():
        values = values.copy()
        codec.null_fill(values, erased, entry.params)
        nulled = nulled | erased
    return values.reshape(entry.shape), int(np.count_nonzero(nulled)), int(corrected)


def decode_weights(image: Image) -> DecodedWeights:
    """Decode every tensor of ``image``."""
    weights, nulled, corrected = {}, {}, {}
    for entry in image.tensors:
        weights[entry.name], nulled[entry.name], corrected[entry.name] = \
            decode_tensor(image, entry)
    return DecodedWeights(image, weights, nulled, corrected)


def patchable(entry: TensorEntry) -> bool:
    """Whether a tensor's weights decode word by word: each weight is its own stored field and
    its value depends on its own code only (not a SECDED block or a reliable copy, which
    store fields across weights; not per-channel parameters, whose channel a word's position
    would have to give). Such a tensor can be re-decoded at the touched words only."""
    codec = entry.codec_obj
    return (type(codec).unpack is Codec.unpack
            and entry.params.get("granularity") != "channel")


def decode_words(image: Image, entry: TensorEntry, index: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(values, nulled mask) of the weights ``index`` of a :func:`patchable` tensor: exactly
    ``decode_tensor``'s values at those positions, reading and decoding only those codes."""
    codec = entry.codec_obj
    codes = read_codes(image.segment(entry), index, codec.bits)
    return codec.decode(codes, entry.params, dtype=np.dtype(entry.dtype))


def _touched_words(local: np.ndarray, bits: int, count: int) -> np.ndarray:
    """Distinct weights (sorted) that sorted tensor-local bit positions fall in; bits past the
    last weight (the word padding) touch none."""
    words = local // bits
    if words.size > 1:
        words = words[np.concatenate([[True], words[1:] != words[:-1]])]
    return words[words < count]


class IncrementalDecoder:
    """A clean image decoded once, then variants of it made by flipping payload bits.

    ``flip(positions)`` adds bit flips to the current variant (payload bit indices, as a
    channel's :class:`~host.channels.NestedPattern` gives them) and returns the new variant's
    :class:`DecodedWeights`; only the tensors the new flips fall in change, and in a tensor
    whose weights decode word by word (:func:`patchable`: every plain codec with per-model or
    per-tensor parameters) only the weights whose stored words they touch are read and
    decoded, written into a copy of the previous variant's tensor. Other tensors (SECDED,
    per-channel parameters, or more than a quarter of the words touched) are decoded again in
    full. ``reset()`` returns to the clean image. Returned variants never change afterwards: a
    changed tensor is a new array, and each flip writes a new payload.

    A decoder is one walk: give each concurrent walk its own, made from the same decoded clean
    image (``IncrementalDecoder(clean)`` costs no decoding and no copy).

    Args:
        clean: the clean image, or its :class:`DecodedWeights`.
    """

    def __init__(self, clean: Image | DecodedWeights) -> None:
        self.clean = clean if isinstance(clean, DecodedWeights) else decode_weights(clean)
        image = self.clean.image
        self._offsets = np.array([e.bit_offset for e in image.tensors], dtype=np.int64)
        self._patchable = [patchable(e) for e in image.tensors]
        self.reset()

    def reset(self) -> DecodedWeights:
        """Back to the clean image; returns its decoded weights."""
        self._image = self.clean.image
        self._weights = dict(self.clean.weights)
        self._nulled = dict(self.clean.nulled)
        self._corrected = dict(self.clean.corrected)
        return self.clean

    def flip(self, positions: np.ndarray) -> DecodedWeights:
        """Flip the payload bits ``positions`` (each flipped once more) and decode the result."""
        positions = np.asarray(positions, dtype=np.int64)
        if positions.size > 1 and np.any(positions[1:] < positions[:-1]):
            positions = np.sort(positions)
        before = self._image
        payload = before.payload.copy()  # never written in place: earlier variants keep theirs
        flip_bits(payload, positions)
        noisy = self._image = before.with_payload(payload)
        tensors = before.tensors
        bounds = np.searchsorted(positions, self._offsets)
        for i in np.flatnonzero(np.diff(np.append(bounds, positions.size))):
            entry = tensors[int(i)]
            lo, hi = bounds[i], (bounds[i + 1] if i + 1 < len(tensors) else positions.size)
            words = (_touched_words(positions[lo:hi] - entry.bit_offset, entry.codec_obj.bits,
                                    entry.count) if self._patchable[i] else None)
            if words is not None and words.size * 4 <= entry.count:
                self._patch(before, noisy, entry, words)
            else:
                self._weights[entry.name], self._nulled[entry.name], \
                    self._corrected[entry.name] = decode_tensor(noisy, entry)
        return DecodedWeights(noisy, dict(self._weights), dict(self._nulled),
                              dict(self._corrected))

    def _patch(self, before: Image, noisy: Image, entry: TensorEntry, words: np.ndarray) -> None:
        """The previous variant's tensor with the weights ``words`` decoded from ``noisy``."""
        if words.size == 0:
            return
        values, nulled = decode_words(noisy, entry, words)
        _, was_nulled = decode_words(before, entry, words)
        weights = self._weights[entry.name].copy()
        weights.reshape(-1)[words] = values
        self._weights[entry.name] = weights
        self._nulled[entry.name] += int(np.count_nonzero(nulled)) - \
            int(np.count_nonzero(was_nulled))
