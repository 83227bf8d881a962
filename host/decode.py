"""Memory image -> weights: unpack each tensor's codes and decode them (a table gather).

Weights whose code failed its check (weight nulling's parity bit) or sat in a block that SECDED
could not correct are *nulled*: they read as 0 (for QDQ integer codes, as the zero point, whose
dequantised value is 0) and are counted per tensor (docs/decisions.md#3, #14).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from host.image import Image, TensorEntry


@dataclass
class DecodedWeights:
    weights: dict[str, np.ndarray]  # tensor name -> values in the graph's dtype and shape
    nulled: dict[str, int]  # tensor name -> number of nulled weights
    corrected: int  # bits corrected by an ECC codec (SECDED)

    @property
    def total_nulled(self) -> int:
        return sum(self.nulled.values())


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
    weights, nulled, corrected = {}, {}, 0
    for entry in image.tensors:
        weights[entry.name], nulled[entry.name], c = decode_tensor(image, entry)
        corrected += c
    return DecodedWeights(weights, nulled, corrected)
