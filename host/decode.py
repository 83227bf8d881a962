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

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from host.channels import flip_bits
from host.codecs.bitstream import read_codes
from host.errors import FlipLabError
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


#: codes unpacked and decoded at a time in a :func:`patchable` tensor (a multiple of 8, so
#: that each chunk starts on a byte; bounded uint64 and float64 temporaries)
DECODE_CHUNK = 1 << 20


def decode_tensor(image: Image, entry: TensorEntry) -> tuple[np.ndarray, int, int]:
    """(values shaped like the tensor, nulled count, corrected bits) of one tensor."""
    codec = entry.codec_obj
    if entry.count > DECODE_CHUNK and patchable(entry):  # a chunk at a time, same values
        segment, dtype = image.segment(entry), np.dtype(entry.dtype)
        values, count = np.empty(entry.count, dtype=dtype), 0
        for lo in range(0, entry.count, DECODE_CHUNK):
            n = min(DECODE_CHUNK, entry.count - lo)
            codes, _, _ = codec.unpack(segment[lo * codec.bits // 8:], n)
            part, mask = codec.decode(codes, entry.params, dtype=dtype)
            values[lo:lo + n] = part
            count += int(np.count_nonzero(mask))
        return values.reshape(entry.shape), count, 0
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
    """Whether a tensor's weights decode word by word (:meth:`Codec.word_by_word`): such a
    tensor can be re-decoded at the touched words only."""
    return entry.codec_obj.word_by_word(entry.params)


def decode_words(image: Image, entry: TensorEntry, index: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(values, nulled mask) of the weights ``index`` of a :func:`patchable` tensor: exactly
    ``decode_tensor``'s values at those positions, reading and decoding only those codes."""
    codec = entry.codec_obj
    codes = read_codes(image.segment(entry), index, codec.bits)
    return codec.decode(codes, entry.params, dtype=np.dtype(entry.dtype))


#: touched weights decoded at a time (bounded temporaries, however many bits a flip adds)
PATCH_CHUNK = 1 << 18


def _chunks(words: np.ndarray) -> Iterator[np.ndarray]:
    for i in range(0, words.size, PATCH_CHUNK):
        yield words[i:i + PATCH_CHUNK]


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
    decoded. Other tensors (SECDED, per-channel parameters, or more than a quarter of the
    words touched) are decoded again in full. ``reset()`` returns to the clean image.

    Two ways to hold the variants:

    - by copy (default): a changed tensor is a new array (a copy of the previous variant's
      with the touched weights written) and each flip writes a new payload, so returned
      variants never change afterwards;
    - ``in_place=True``: the walk changes the clean image's payload and the clean decoded
      weights themselves, and ``reset()`` puts them back (flipping the same bits again and
      decoding the touched weights from the restored payload). A returned variant is valid
      until the next ``flip`` or ``reset``; the memory is one payload and one set of weights
      whatever the number of variants (``host sweep --low-memory``, docs/campaigns.md).

    A decoder is one walk: give each concurrent walk its own, made from the same decoded clean
    image (``IncrementalDecoder(clean)`` costs no decoding and no copy). An in-place walk
    must be the only user of ``clean`` until it is reset.

    Args:
        clean: the clean image, or its :class:`DecodedWeights`.
        in_place: change ``clean`` during the walk instead of copying (see above).
    """

    def __init__(self, clean: Image | DecodedWeights, *, in_place: bool = False) -> None:
        self.clean = clean if isinstance(clean, DecodedWeights) else decode_weights(clean)
        image = self.clean.image
        self._offsets = np.array([e.bit_offset for e in image.tensors], dtype=np.int64)
        self._patchable = [patchable(e) for e in image.tensors]
        self.in_place = in_place
        self._flipped: list[np.ndarray] = []  # in place: positions flipped since the reset
        self._whole: set[int] = set()  # in place: tensors decoded whole since the reset
        if in_place:
            for name, values in self.clean.weights.items():  # writable and not the payload's
                if not values.flags.writeable or np.may_share_memory(values, image.payload):
                    self.clean.weights[name] = values.copy()
        self.reset()

    def reset(self) -> DecodedWeights:
        """Back to the clean image; returns its decoded weights."""
        if self._flipped:
            self._restore()
        self._image = self.clean.image
        self._weights = dict(self.clean.weights)
        self._nulled = dict(self.clean.nulled)
        self._corrected = dict(self.clean.corrected)
        return self.clean

    def _restore(self) -> None:
        """In place: flip the walk's bits back and decode what they touched again."""
        image = self.clean.image
        for positions in self._flipped:  # batch by batch: no temporaries the size of all
            flip_bits(image.payload, positions)
        for positions in self._flipped:  # the touched words found again, not kept meanwhile
            for i, _, words in self._split(positions):
                if words is not None and i not in self._whole:
                    weights = self.clean.weights[image.tensors[i].name].reshape(-1)
                    for chunk in _chunks(words):
                        weights[chunk] = decode_words(image, image.tensors[i], chunk)[0]
        for i in self._whole:
            entry = image.tensors[i]
            self.clean.weights[entry.name][...] = decode_tensor(image, entry)[0]
        self._flipped, self._whole = [], set()

    def _split(self, positions: np.ndarray
               ) -> Iterator[tuple[int, np.ndarray, np.ndarray | None]]:
        """For each tensor sorted ``positions`` fall in: (its index, those positions, the
        weights they touch or None where the tensor is to be decoded whole), one at a time."""
        tensors = self.clean.image.tensors
        bounds = np.searchsorted(positions, self._offsets)
        for i in map(int, np.flatnonzero(np.diff(np.append(bounds, positions.size)))):
            entry = tensors[i]
            mine = positions[bounds[i]:(bounds[i + 1] if i + 1 < len(tensors) else None)]
            words = (_touched_words(mine - entry.bit_offset, entry.codec_obj.bits, entry.count)
                     if self._patchable[i] else None)
            yield i, mine, (words if words is not None and words.size * 4 <= entry.count
                            else None)

    def flip(self, positions: np.ndarray) -> DecodedWeights:
        """Flip the payload bits ``positions`` (each flipped once more) and decode the result.

        Tensor by tensor: the touched words' old decodes (the nulled count moves by their old
        and new ones), the tensor's bits flipped, its touched words (or all) decoded.
        """
        positions = np.asarray(positions, dtype=np.int64)
        if positions.size > 1 and np.any(positions[1:] < positions[:-1]):
            positions = np.sort(positions)
        before = self._image
        if positions.size and not 0 <= positions[0] <= positions[-1] < before.payload_bits:
            bad = positions[0] if positions[0] < 0 else positions[-1]
            raise FlipLabError(f"bit position {bad} is outside the {before.payload_bits}-bit "
                               f"payload")
        if self.in_place:
            noisy = before
            self._flipped.append(positions)
        else:  # never written in place: earlier variants keep theirs
            noisy = self._image = before.with_payload(before.payload.copy())
        for i, mine, words in self._split(positions):
            entry = before.tensors[i]
            was_nulled = 0 if words is None else sum(
                int(np.count_nonzero(decode_words(before, entry, c)[1])) for c in _chunks(words))
            flip_bits(noisy.payload, mine)
            if words is None:
                values, self._nulled[entry.name], self._corrected[entry.name] = \
                    decode_tensor(noisy, entry)
                if self.in_place:
                    self._weights[entry.name][...] = values
                    self._whole.add(i)
                else:
                    self._weights[entry.name] = values
            elif words.size:
                self._patch(noisy, entry, words, was_nulled)
        return DecodedWeights(noisy, dict(self._weights), dict(self._nulled),
                              dict(self._corrected))

    def _patch(self, noisy: Image, entry: TensorEntry, words: np.ndarray, was_nulled: int
               ) -> None:
        """The weights ``words`` of the current tensor decoded from ``noisy`` (written into
        a copy of the tensor, or into it when in place)."""
        weights = self._weights[entry.name]
        if not self.in_place:
            weights = self._weights[entry.name] = weights.copy()
        nulled = 0
        for chunk in _chunks(words):
            values, mask = decode_words(noisy, entry, chunk)
            weights.reshape(-1)[chunk] = values
            nulled += int(np.count_nonzero(mask))
        self._nulled[entry.name] += nulled - was_nulled
