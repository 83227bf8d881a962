"""The error-free channel, spec ``none``: every read returns what was written."""

from __future__ import annotations

import numpy as np

from host.channels.base import Channel, NestedPattern, empty_pattern
from host.channels.layout import RegionLayout


class NoiselessChannel(Channel):
    """No errors at any rate (the clean baseline of a campaign); its rate is 0."""

    name = "none"

    @property
    def spec(self) -> str:
        return "none"

    @property
    def rate(self) -> float:
        return 0.0

    def _pattern(
        self,
        payload: np.ndarray,
        layout: RegionLayout,
        root: np.random.SeedSequence,
        rate_max: float,
    ) -> NestedPattern:
        return empty_pattern(rate_max, layout.n_eligible)
