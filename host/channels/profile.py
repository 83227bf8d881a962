"""Replay of an error profile (:mod:`host.profile`): measured or preset memory behaviour.

Spec ``profile:FILE[@S][,seed=D]`` (a fitted profile file) or a preset name
``NAME[@S][,seed=D]`` (``rram-ulp``, ``bram-undervolt``, ...; :mod:`host.channels.presets`).

Model at scale ``s`` (``s = 1``: the profile as measured). A cell storing ``b`` at bit
position ``j`` of a ``q``-bit field, in block ``B`` and bit column ``c`` of the 32-bit word:

* transient: wrong in a read with probability ``s * t_b(q, j)`` (the per-position rates),
  independently per read (per trial);
* permanent: wrong in every read of device ``D`` with probability
  ``s * m_b * G_B * C_c``, where ``G_B ~ Gamma(k, 1/k)`` (mean 1) is the block's factor drawn
  from the device seed (negative-binomial counts per block, shape ``k``) and ``C_c`` the
  column weight (mean 1). Probabilities are capped at 1.

Rate. The channel's rate (the sweep coordinate) is the profile's mean raw bit error rate
``s * p_ref`` (``Profile.reference_rate``), so ``--rates`` of a sweep are RBERs comparable with
``bsc`` and the scale of rate ``r`` is ``r / p_ref``. Each cell owns a uniform ``U_i`` per
trial and ``V_i`` per device, as the other channels; its onset rate is
``U_i * p_ref / t_i`` (transient) or ``V_i * p_ref / perm_i`` (permanent), the earlier of the
two, so patterns are nested in the rate. Candidates are drawn at the largest per-cell rate
(O(flips) times the ratio of the largest to the mean cell rate; the dense regime caps it at one
uniform per cell).
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

from host.channels.base import Channel, NestedPattern, check_rate, empty_pattern, format_number
from host.channels.bitops import read_bits
from host.channels.layout import RegionLayout
from host.channels.sampling import check_seed, device_seed, sample_nested
from host.errors import FlipLabError
from host.image import WORD_BITS
from host.profile import Profile

#: spawn-key tag of the block factors of a device, apart from its permanent-cell stream
_BLOCK_DOMAIN = 0x424C4B  # "BLK"


def block_factors(profile: Profile, device: int, n_blocks: int) -> np.ndarray:
    """``G_B`` for blocks ``0 .. n_blocks - 1`` of device ``device`` (ones when unclustered);
    block ``B``'s factor does not depend on ``n_blocks``."""
    if math.isinf(profile.block_k) or n_blocks == 0:
        return np.ones(n_blocks)
    ss = np.random.SeedSequence([check_seed(device, "device seed")], spawn_key=(_BLOCK_DOMAIN,))
    k = profile.block_k
    return np.random.default_rng(ss).gamma(k, 1.0 / k, size=n_blocks)


class ProfileChannel(Channel):
    """Replays ``profile`` at scale ``scale`` on device ``device``.

    Args:
        profile: the rates at scale 1.
        scale: s >= 0; the channel's rate is ``s * profile.reference_rate`` (must be <= 1).
        device: device seed of the permanent map and block factors.
        label: the spec's head, ``profile:FILE`` or a preset name.
    """

    def __init__(self, profile: Profile, scale: float = 1.0, device: int = 0,
                 label: str = "profile") -> None:
        self.profile = profile
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale >= 0.0 \
                or math.isinf(scale):
            raise FlipLabError(f"{label}: scale must be a finite number >= 0, got {scale!r}")
        self.scale = float(scale)
        self.device = check_seed(device, f"{label}: device seed")
        self.label = label
        self.name = label.partition(":")[0]
        #: the device's permanent cells per (layout, stored payload, rate_max): drawn once
        self._permanent: dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        if self.scale * profile.reference_rate > 1.0:
            raise FlipLabError(f"{label}@{format_number(self.scale)}: mean error rate "
                               f"{self.scale * profile.reference_rate:.3g} is above 1")

    @property
    def spec(self) -> str:
        scale = "" if self.scale == 1.0 else f"@{format_number(self.scale)}"
        return f"{self.label}{scale},seed={self.device}"

    @property
    def rate(self) -> float:
        """``scale * reference_rate``: the profile's mean raw bit error rate at this scale."""
        return self.scale * self.profile.reference_rate

    def with_rate(self, rate: float) -> ProfileChannel:
        """The same profile and device at the scale whose mean error rate is ``rate``."""
        r = check_rate(rate)
        ref = self.profile.reference_rate
        return ProfileChannel(self.profile, r / ref if ref > 0 else 0.0, self.device, self.label)

    def _cell_rates(self, layout: RegionLayout, bits: np.ndarray, stored: np.ndarray,
                    index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(transient, permanent) rates at scale 1 of the cells at payload ``bits``."""
        p = self.profile
        trans = np.zeros(bits.size)
        if bits.size:
            region = layout.region_of(index)
            for r_i, region_obj in enumerate(layout.regions):
                sel = region == r_i
                if not sel.any():
                    continue
                q = region_obj.field_bits
                j = (bits[sel] - region_obj.start_bit) % q
                p01, p10 = p.position_rates(q)
                trans[sel] = np.where(stored[sel] == 1, p10[j], p01[j])
        perm = np.where(stored == 1, p.permanent_p10, p.permanent_p01).astype(np.float64)
        if bits.size and (p.permanent_p01 > 0 or p.permanent_p10 > 0):
            block_bits = p.block_bytes * 8
            n_blocks = int(layout.payload_bits // block_bits) + 1
            perm = perm * block_factors(p, self.device, n_blocks)[bits // block_bits]
            perm = perm * p.column_weights()[bits % WORD_BITS]
        return trans, perm

    def _max_rates(self, layout: RegionLayout) -> tuple[float, float]:
        """Upper bounds of the per-cell transient and permanent rates at scale 1."""
        p = self.profile
        t = max([p.transient_p01, p.transient_p10]
                + [max(p.position_rates(r.field_bits)[0].max(),
                       p.position_rates(r.field_bits)[1].max()) for r in layout.regions])
        m = max(p.permanent_p01, p.permanent_p10)
        if m > 0:
            block_bits = p.block_bytes * 8
            n_blocks = int(layout.payload_bits // block_bits) + 1
            m *= float(block_factors(p, self.device, n_blocks).max())
            m *= float(p.column_weights().max())
        return t, m

    def _onsets(self, cand_index: np.ndarray, u: np.ndarray, payload: np.ndarray,
                layout: RegionLayout, which: int, rate_max: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        bits = layout.to_bits(cand_index)
        stored = read_bits(payload, bits)
        rates = self._cell_rates(layout, bits, stored, cand_index)[which]
        ref = self.profile.reference_rate
        onset = np.where(rates > 0, u * ref / np.where(rates > 0, rates, 1.0), np.inf)
        keep = onset < rate_max
        return bits[keep], onset[keep], u[keep]

    def _permanent_cells(self, payload: np.ndarray, layout: RegionLayout, rate_max: float,
                         m_max: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The device's permanently wrong cells up to ``rate_max`` (bits, onsets, uniforms).

        A property of (device, layout, stored bits): drawn once and kept (a few entries), so
        the trials of a campaign pay only for their transient flips. The draw itself thins
        candidates taken at the largest cell rate, up to one uniform per cell."""
        digest = hashlib.blake2b(payload.tobytes(), digest_size=16).digest()
        key = (tuple(layout.regions), layout.payload_bits, digest, rate_max)
        if key not in self._permanent:
            ref = self.profile.reference_rate
            cand = sample_nested(device_seed(self.device), layout.n_eligible,
                                 min(1.0, rate_max * m_max / ref))
            if len(self._permanent) >= 4:
                self._permanent.pop(next(iter(self._permanent)))
            self._permanent[key] = self._onsets(cand.index, cand.u, payload, layout, 1,
                                                rate_max)
        return self._permanent[key]

    def _pattern(self, payload: np.ndarray, layout: RegionLayout,
                 root: np.random.SeedSequence, rate_max: float) -> NestedPattern:
        ref = self.profile.reference_rate
        n = layout.n_eligible
        if ref <= 0.0 or rate_max <= 0.0 or n == 0:
            return empty_pattern(rate_max, n)
        t_max, m_max = self._max_rates(layout)
        parts = []
        if t_max > 0:  # transient: from the trial's stream
            cand = sample_nested(root, n, min(1.0, rate_max * t_max / ref))
            parts.append(self._onsets(cand.index, cand.u, payload, layout, 0, rate_max))
        if m_max > 0:  # permanent: from the device's stream, the same in every trial
            parts.append(self._permanent_cells(payload, layout, rate_max, m_max))
        bits = np.concatenate([b for b, _, _ in parts])
        onset = np.concatenate([o for _, o, _ in parts])
        u = np.concatenate([x for _, _, x in parts])
        order = np.lexsort((onset, bits))  # by position, earliest onset first
        bits, onset, u = bits[order], onset[order], u[order]
        first = np.ones(bits.size, dtype=bool)
        first[1:] = bits[1:] != bits[:-1]
        return NestedPattern(bits[first], onset[first], u[first], rate_max, n)
