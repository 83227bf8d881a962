"""Where errors may land: fields of the payload bit stream.

The payload is a little-endian bit stream: payload bit ``i`` is bit ``i % 8`` of byte ``i // 8``
(docs/image-format.md). A :class:`Region` describes ``n_fields`` fields of ``field_bits`` bits
each, field ``k`` starting at payload bit ``start_bit + k * field_bits``; only the bit positions
``j`` in ``positions`` (0 = least significant bit of the field) are *eligible* for errors, all of
them when ``positions`` is None.

The image layer makes regions (``Image.regions``: the stored bits of selected tensors); channels
take them (``host.channels``). Neither owns the other, so the type lives here.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from host.errors import FlipLabError


def _as_int(value: Any, what: str) -> int:
    """``value`` as a Python int (bool refused), else a FlipLabError naming ``what``."""
    if isinstance(value, bool):
        raise FlipLabError(f"{what} must be an integer, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise FlipLabError(f"{what} must be an integer, got {value!r}") from None


@dataclass(frozen=True)
class Region:
    """Fields of a payload where bit errors may land.

    Attributes:
        start_bit: payload bit index (>= 0) of bit 0 of field 0.
        n_fields: number of fields (>= 0).
        field_bits: bits per field (>= 1), e.g. the codec's q.
        positions: eligible bit positions inside each field, each in ``[0, field_bits)``,
            0 = least significant; None means all ``field_bits`` positions. Stored sorted.
        tensor: name of the tensor the fields hold (informational only).
    """

    start_bit: int
    n_fields: int
    field_bits: int
    positions: tuple[int, ...] | None = None
    tensor: str = ""

    def __post_init__(self) -> None:
        start = _as_int(self.start_bit, "region start_bit")
        n_fields = _as_int(self.n_fields, "region n_fields")
        field_bits = _as_int(self.field_bits, "region field_bits")
        label = f"region {self.tensor!r}" if self.tensor else "region"
        if start < 0:
            raise FlipLabError(f"{label}: start_bit must be >= 0, got {start}")
        if n_fields < 0:
            raise FlipLabError(f"{label}: n_fields must be >= 0, got {n_fields}")
        if field_bits < 1:
            raise FlipLabError(f"{label}: field_bits must be >= 1, got {field_bits}")
        positions = self.positions
        if positions is not None:
            if isinstance(positions, (str, bytes)) or not isinstance(positions, Sequence):
                raise FlipLabError(
                    f"{label}: positions must be a sequence of bit positions or None, "
                    f"got {positions!r}"
                )
            pos = sorted(_as_int(p, f"{label}: bit position") for p in positions)
            bad = [p for p in pos if not 0 <= p < field_bits]
            if bad:
                raise FlipLabError(
                    f"{label}: bit position {bad[0]} is outside [0, {field_bits - 1}] "
                    f"for {field_bits}-bit fields"
                )
            if len(set(pos)) != len(pos):
                raise FlipLabError(f"{label}: bit positions repeat in {tuple(positions)}")
            positions = tuple(pos)
        object.__setattr__(self, "start_bit", start)
        object.__setattr__(self, "n_fields", n_fields)
        object.__setattr__(self, "field_bits", field_bits)
        object.__setattr__(self, "positions", positions)
        object.__setattr__(self, "tensor", str(self.tensor))

    @property
    def end_bit(self) -> int:
        """One past the last payload bit the region's fields span."""
        return self.start_bit + self.n_fields * self.field_bits

    @property
    def eligible_per_field(self) -> int:
        """Number of eligible bits in one field."""
        return self.field_bits if self.positions is None else len(self.positions)

    @property
    def n_eligible(self) -> int:
        """Number of eligible bits in the region."""
        return self.n_fields * self.eligible_per_field


def whole_payload(payload_bytes: int, tensor: str = "") -> Region:
    """One region covering every bit of a ``payload_bytes``-byte payload."""
    return Region(start_bit=0, n_fields=int(payload_bytes), field_bits=8, tensor=tensor)
