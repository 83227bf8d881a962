"""Memory image -> weights: unpack each tensor's codes and decode them (a table gather).

Weights whose code failed its check (weight nulling's parity bit) or sat in a block that SECDED
could not correct are *nulled*: they read as 0 (for QDQ integer codes, as the zero point, whose
dequantised value is 0) and are counted per tensor (docs/decisions.md#3, #14).

Two ways in, one decoding:

- :func:`decode_weights` decodes a whole image (``host eval``);
- :class:`IncrementalDecoder` decodes a clean image once and then follows a growing set of bit
  flips (a campaign walking the rates of one trial's nested pattern, or a bisection probing
  rates): each call flips only the new bits and re-decodes only the tensors they fall in
  (docs/decisions.md#4, #9).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from host.channels import flip_bits
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


class IncrementalDecoder:
    """A clean image decoded once, then variants of it made by flipping payload bits.

    ``flip(positions)`` adds bit flips to the current variant (payload bit indices, as a
    channel's :class:`~host.channels.NestedPattern` gives them) and returns the new variant's
    :class:`DecodedWeights`; only the tensors the new flips fall in are decoded again.
    ``reset()`` returns to the clean image. Returned variants never change afterwards: a
    re-decoded tensor is a new array, and the payload is copied into each variant's image.

    A decoder is one walk: give each concurrent walk its own, made from the same decoded clean
    image (``IncrementalDecoder(clean)`` costs one payload copy, no decoding).

    Args:
        clean: the clean image, or its :class:`DecodedWeights`.
    """

    def __init__(self, clean: Image | DecodedWeights) -> None:
        self.clean = clean if isinstance(clean, DecodedWeights) else decode_weights(clean)
        image = self.clean.image
        self._offsets = np.array([e.bit_offset for e in image.tensors], dtype=np.int64)
        self.reset()

    def reset(self) -> DecodedWeights:
        """Back to the clean image; returns its decoded weights."""
        self._payload = self.clean.image.payload.copy()
        self._weights = dict(self.clean.weights)
        self._nulled = dict(self.clean.nulled)
        self._corrected = dict(self.clean.corrected)
        return self.clean

    def flip(self, positions: np.ndarray) -> DecodedWeights:
        """Flip the payload bits ``positions`` (each flipped once more) and decode the result."""
        positions = np.asarray(positions, dtype=np.int64)
        flip_bits(self._payload, positions)
        noisy = self.clean.image.with_payload(self._payload.copy())
        tensors = self.clean.image.tensors
        touched = np.unique(np.searchsorted(self._offsets, positions, side="right") - 1)
        for i in touched[touched >= 0]:
            entry = tensors[int(i)]
            self._weights[entry.name], self._nulled[entry.name], \
                self._corrected[entry.name] = decode_tensor(noisy, entry)
        return DecodedWeights(noisy, dict(self._weights), dict(self._nulled),
                              dict(self._corrected))
