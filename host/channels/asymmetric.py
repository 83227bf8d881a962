"""Asymmetric channel: the flip probability depends on the stored bit (RRAM-like).

Spec ``asym:P01,P10``: a stored 0 reads as 1 with probability P01, a stored 1 reads as 0 with
probability P10, every eligible bit independently. Resistive RAM in its low-power setting
errs far more often in one direction than the other (Buschjäger et al., RRAM BNNs).

Rate. The channel's rate is ``m = max(P01, P10)``; at sweep rate ``r`` the two probabilities
keep their ratio: ``P01(r) = r * P01 / m`` and ``P10(r) = r * P10 / m``. Each bit owns one
uniform ``U_i`` (as for BSC) and is wrong at rate ``r`` iff ``U_i < P_b(r)`` for its stored
value ``b``, i.e. from the onset rate ``U_i * m / P_b`` on. Candidates are thus drawn for the
larger rate and kept by the stored bit's own rate.
"""

from __future__ import annotations

import numpy as np

from host.channels.base import Channel, NestedPattern, check_rate, format_number
from host.channels.bitops import read_bits
from host.channels.layout import RegionLayout
from host.channels.sampling import sample_nested


class AsymmetricChannel(Channel):
    """Stored 0 -> 1 with probability ``p01``, stored 1 -> 0 with ``p10``.

    Args:
        p01: probability in [0, 1] that a stored 0 reads as 1.
        p10: probability in [0, 1] that a stored 1 reads as 0.
    """

    name = "asym"

    def __init__(self, p01: float, p10: float) -> None:
        self.p01 = check_rate(p01, "asym P01")
        self.p10 = check_rate(p10, "asym P10")

    @property
    def spec(self) -> str:
        return f"asym:{format_number(self.p01)},{format_number(self.p10)}"

    @property
    def rate(self) -> float:
        """``max(P01, P10)``; the sweep scales both probabilities by ``rate / max``."""
        return max(self.p01, self.p10)

    def _pattern(
        self,
        payload: np.ndarray,
        layout: RegionLayout,
        root: np.random.SeedSequence,
        rate_max: float,
    ) -> NestedPattern:
        m = self.rate
        # a bit is never wrong above its own rate share, so U_i < rate_max is enough
        cand = sample_nested(root, layout.n_eligible, rate_max if m > 0.0 else 0.0)
        positions = layout.to_bits(cand.index)
        stored = read_bits(payload, positions)
        share = np.where(stored == 1, self.p10, self.p01) / m if m > 0.0 else np.zeros(0)
        onset = np.where(share > 0.0, cand.u / np.where(share > 0.0, share, 1.0), np.inf)
        keep = onset < rate_max
        return NestedPattern(
            positions=positions[keep],
            rates=onset[keep],
            u=cand.u[keep],
            rate_max=rate_max,
            eligible_bits=layout.n_eligible,
        )
