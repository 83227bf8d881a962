"""Stuck-at cells: a fixed set of cells of the device always reads 0 or always reads 1.

Spec ``stuck:F,S[,seed=D]``: a fraction F in [0, 1] of the eligible cells is stuck, a share S
in [0, 1] of those at 1 and the rest at 0. A stuck cell reads its stuck value whatever was
written, so it is an error only where the stored bit differs (on random data about half the
stuck cells).

The stuck map is a property of the device, not of a read: it is drawn from the device seed D
(default 0) alone, so ``seed`` and ``trial`` do not change it and every read of every trial
sees the same cells. Cell ``i`` owns a uniform ``U_i`` and a second uniform ``V_i`` from the
device seed; it is stuck at fraction ``F`` iff ``U_i < F`` (so a cell stuck at ``F`` is stuck at
every ``F' > F``: the maps are nested in F) and its stuck value is ``1`` iff ``V_i < S``. The
channel's rate is F.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from host.channels.base import Channel, NestedPattern, check_rate, format_number
from host.channels.bitops import check_payload, read_bits
from host.channels.layout import RegionLayout
from host.channels.sampling import check_seed, device_seed, sample_nested
from host.regions import Region


class StuckAtChannel(Channel):
    """A fraction ``fraction`` of cells stuck, a share ``share_one`` of them at 1.

    Args:
        fraction: fraction F of eligible cells that are stuck, in [0, 1].
        share_one: share S of the stuck cells that are stuck at 1, in [0, 1].
        device: device seed D (integer >= 0) the stuck map is drawn from.
    """

    name = "stuck"

    def __init__(self, fraction: float, share_one: float, device: int = 0) -> None:
        self.fraction = check_rate(fraction, "stuck fraction F")
        self.share_one = check_rate(share_one, "stuck share S")
        self.device = check_seed(device, "stuck device seed")

    @property
    def spec(self) -> str:
        return (
            f"stuck:{format_number(self.fraction)},{format_number(self.share_one)},"
            f"seed={self.device}"
        )

    @property
    def rate(self) -> float:
        """The stuck fraction F."""
        return self.fraction

    def _map(
        self, layout: RegionLayout, fraction: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(stuck positions, stuck values, onset fractions U_i) at ``fraction``."""
        cand = sample_nested(device_seed(self.device), layout.n_eligible, fraction, with_mark=True)
        assert cand.mark is not None  # asked for with_mark
        value = (np.asarray(cand.mark) < self.share_one).astype(np.uint8)
        return layout.to_bits(cand.index), value, cand.u

    def stuck_cells(
        self, payload: np.ndarray, regions: Sequence[Region], *, fraction: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The device's stuck cells at ``fraction`` (default F) and their stuck values.

        Returns:
            (sorted absolute payload bit positions (int64), stuck values (uint8, 0 or 1)).
        """
        payload = check_payload(payload)
        layout = RegionLayout(regions, payload.size * 8)
        f = self.fraction if fraction is None else check_rate(fraction, "stuck fraction")
        positions, value, _ = self._map(layout, f)
        return positions, value

    def _pattern(
        self,
        payload: np.ndarray,
        layout: RegionLayout,
        root: np.random.SeedSequence,
        rate_max: float,
    ) -> NestedPattern:
        del root  # the stuck map depends on the device seed only, not on (seed, trial)
        positions, value, u = self._map(layout, rate_max)
        wrong = read_bits(payload, positions) != value
        return NestedPattern(
            positions=positions[wrong],
            rates=u[wrong],
            u=u[wrong],
            rate_max=rate_max,
            eligible_bits=layout.n_eligible,
        )
