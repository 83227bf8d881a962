"""Binary symmetric channel BSC(p): every eligible bit flips independently with probability p.

Spec ``bsc:P`` with P in [0, 1], the raw bit error rate (RBER) of the memory (Qin, Sun,
Vucinic: each distorted model is the stored model passed once through BSC(p); on average
``p * q * N`` flips for N weights of q bits). The channel's rate is P.
"""

from __future__ import annotations

import numpy as np

from host.channels.base import Channel, NestedPattern, check_rate, format_number
from host.channels.layout import RegionLayout
from host.channels.sampling import sample_nested


class BinarySymmetricChannel(Channel):
    """BSC(rber): each eligible bit flips with probability ``rber``, independently.

    Args:
        rber: raw bit error rate, in [0, 1].
    """

    name = "bsc"

    def __init__(self, rber: float) -> None:
        self.rber = check_rate(rber, "bsc rber")

    @property
    def spec(self) -> str:
        return f"bsc:{format_number(self.rber)}"

    @property
    def rate(self) -> float:
        """The raw bit error rate P."""
        return self.rber

    def _pattern(
        self,
        payload: np.ndarray,
        layout: RegionLayout,
        root: np.random.SeedSequence,
        rate_max: float,
    ) -> NestedPattern:
        cand = sample_nested(root, layout.n_eligible, rate_max)
        return NestedPattern(
            positions=layout.to_bits(cand.index),
            rates=cand.u,
            u=cand.u,
            rate_max=rate_max,
            eligible_bits=layout.n_eligible,
        )
