"""The eligible bits of a region list, numbered: what a channel draws its errors over.

A channel numbers the eligible bits of a :class:`~host.regions.Region` list
``0 .. n_eligible - 1`` (regions taken in increasing ``start_bit``; inside a region field by
field, inside a field by increasing position) and draws its errors over those indices;
:class:`RegionLayout` maps such indices back to absolute payload bit positions, vectorised.
Because regions may not overlap and are taken in address order, increasing eligible indices map
to increasing payload bits.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from host.errors import FlipLabError
from host.regions import Region


class RegionLayout:
    """A validated region list and the map eligible index -> absolute payload bit.

    Args:
        regions: the regions; they must not overlap. They are taken in increasing
            ``start_bit`` whatever order they are given in, so the error pattern does not
            depend on that order.
        payload_bits: size of the payload in bits; every region must end inside it.

    Raises:
        FlipLabError: a region is not a :class:`Region`, two regions overlap, or a region
            ends beyond the payload.
    """

    def __init__(self, regions: Sequence[Region], payload_bits: int) -> None:
        if isinstance(regions, Region):
            regions = [regions]
        regions = list(regions)
        for r in regions:
            if not isinstance(r, Region):
                raise FlipLabError(f"regions must be host.channels.Region objects, got {r!r}")
        ordered = sorted(regions, key=lambda r: (r.start_bit, r.end_bit))
        for r in ordered:
            if r.end_bit > payload_bits:
                raise FlipLabError(
                    f"region {r.tensor!r} spans payload bits [{r.start_bit}, {r.end_bit}) "
                    f"but the payload has only {payload_bits} bits"
                )
        nonempty = [r for r in ordered if r.n_eligible > 0]
        for a, b in zip(nonempty, nonempty[1:]):
            if b.start_bit < a.end_bit:
                raise FlipLabError(
                    f"regions {a.tensor!r} [{a.start_bit}, {a.end_bit}) and {b.tensor!r} "
                    f"[{b.start_bit}, {b.end_bit}) overlap"
                )
        self.regions: tuple[Region, ...] = tuple(nonempty)
        self.payload_bits = int(payload_bits)
        counts = np.array([r.n_eligible for r in self.regions], dtype=np.int64)
        #: first eligible index of each region; the last entry is the total
        self._offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self._start = np.array([r.start_bit for r in self.regions], dtype=np.int64)
        self._field_bits = np.array([r.field_bits for r in self.regions], dtype=np.int64)
        self._per_field = np.array([r.eligible_per_field for r in self.regions], dtype=np.int64)
        tables = [
            np.arange(r.field_bits, dtype=np.int64)
            if r.positions is None
            else np.array(r.positions, dtype=np.int64)
            for r in self.regions
        ]
        self._table_offsets = np.concatenate(
            [[0], np.cumsum([len(t) for t in tables])]
        ).astype(np.int64)
        self._table = np.concatenate(tables) if tables else np.zeros(0, dtype=np.int64)
        self._contiguous = all(r.positions is None or len(r.positions) == r.field_bits
                               for r in self.regions)

    @property
    def n_eligible(self) -> int:
        """Total number of eligible bits over all regions."""
        return int(self._offsets[-1])

    def to_bits(self, index: np.ndarray) -> np.ndarray:
        """Absolute payload bit positions of eligible indices.

        Args:
            index: int array of eligible indices in ``[0, n_eligible)``.

        Returns:
            int64 array of payload bit indices, same shape; increasing where ``index`` is.
        """
        index = np.asarray(index, dtype=np.int64)
        if index.size == 0:
            return np.zeros(index.shape, dtype=np.int64)
        if index.min() < 0 or index.max() >= self.n_eligible:
            raise FlipLabError(
                f"eligible bit index outside [0, {self.n_eligible}) in {self.n_eligible}-bit layout"
            )
        if len(self.regions) == 1:
            r = self.regions[0]
            if r.positions is None or len(r.positions) == r.field_bits:
                return index + r.start_bit  # every bit eligible: no field arithmetic
            region = np.zeros(index.shape, dtype=np.int64)
            local = index
        else:
            region = np.searchsorted(self._offsets, index, side="right") - 1
            local = index - self._offsets[region]
        if self._contiguous:
            return self._start[region] + local
        per_field = self._per_field[region]
        field = local // per_field
        slot = local - field * per_field
        bit_in_field = self._table[self._table_offsets[region] + slot]
        return self._start[region] + field * self._field_bits[region] + bit_in_field

    def region_of(self, index: np.ndarray) -> np.ndarray:
        """Position in :attr:`regions` of the region each eligible index falls in (int64)."""
        return np.searchsorted(self._offsets, np.asarray(index, dtype=np.int64),
                               side="right") - 1

    def all_bits(self) -> np.ndarray:
        """Every eligible payload bit, increasing (size ``n_eligible``; for small layouts)."""
        return self.to_bits(np.arange(self.n_eligible, dtype=np.int64))
