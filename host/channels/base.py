"""The channel interface, nested error patterns and flip reports.

A channel corrupts the eligible bits of a payload (see :mod:`host.regions`). Each
channel has one *rate*, the coordinate a sweep varies (for ``bsc:P`` the raw bit error rate P;
see each family for its meaning). :meth:`Channel.pattern` returns the errors of one trial for
every rate up to ``rate_max`` at once, as a :class:`NestedPattern`: each candidate bit carries
the rate at which it starts to be wrong, so the errors at a lower rate are a subset of those at
a higher rate and a sweep over rates only flips the new bits.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from host.channels.bitops import check_payload, flip_bits, read_bits
from host.channels.layout import RegionLayout
from host.channels.sampling import trial_seed
from host.errors import FlipLabError
from host.regions import Region


def check_rate(rate: object, what: str = "rate") -> float:
    """``rate`` as a float in [0, 1], else a FlipLabError naming ``what``."""
    if isinstance(rate, bool):
        raise FlipLabError(f"{what} must be a number in [0, 1], got {rate!r}")
    try:
        r = float(rate)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise FlipLabError(f"{what} must be a number in [0, 1], got {rate!r}") from None
    if not 0.0 <= r <= 1.0:  # also refuses nan
        raise FlipLabError(f"{what} = {r} is outside [0, 1]")
    return r


@dataclass(frozen=True)
class FlipReport:
    """What a channel did to a payload.

    Attributes:
        flips: number of payload bits that changed.
        zero_to_one: bits stored as 0 that read as 1.
        one_to_zero: bits stored as 1 that read as 0.
        eligible_bits: number of bits that could have changed (the regions' eligible bits).
    """

    flips: int
    zero_to_one: int
    one_to_zero: int
    eligible_bits: int

    @property
    def observed_rber(self) -> float:
        """Fraction of eligible bits that changed (0.0 when there are none)."""
        return self.flips / self.eligible_bits if self.eligible_bits else 0.0

    @classmethod
    def of(cls, payload: np.ndarray, positions: np.ndarray, eligible_bits: int) -> FlipReport:
        """Report for flipping the distinct ``positions`` of the clean ``payload``."""
        stored = read_bits(payload, positions)
        ones = int(np.count_nonzero(stored))
        return cls(int(stored.size), int(stored.size) - ones, ones, int(eligible_bits))


@dataclass(frozen=True)
class NestedPattern:
    """The errors of one trial for every rate in ``[0, rate_max]``.

    Attributes:
        positions: sorted absolute payload bit indices (int64) that are wrong at some rate
            ``<= rate_max``.
        rates: onset rate of each position (float64, in ``[0, rate_max)``): the position is
            wrong at rate ``r`` iff ``rates[i] < r``.
        u: the uniform number U(0, 1) drawn for each position's bit (for ``bsc`` equal to
            ``rates``; for ``asym`` the onset is ``u`` scaled by the stored bit's rate).
        rate_max: largest rate the pattern covers.
        eligible_bits: number of eligible bits the pattern was drawn over.
    """

    positions: np.ndarray
    rates: np.ndarray
    u: np.ndarray
    rate_max: float
    eligible_bits: int

    def _check(self, rate: float) -> float:
        r = check_rate(rate)
        if r > self.rate_max:
            raise FlipLabError(f"rate {r} is above the pattern's rate_max {self.rate_max}")
        return r

    def at(self, rate: float) -> np.ndarray:
        """Sorted absolute bit positions that are wrong at ``rate`` (0 <= rate <= rate_max)."""
        r = self._check(rate)
        return self.positions[self.rates < r]

    def between(self, rate_lo: float, rate_hi: float) -> np.ndarray:
        """Positions wrong at ``rate_hi`` but not at ``rate_lo`` (the new flips of a sweep step).

        ``rate_lo <= rate_hi``; flipping ``at(rate_lo)`` then ``between(rate_lo, rate_hi)``
        gives the payload at ``rate_hi``.
        """
        lo, hi = self._check(rate_lo), self._check(rate_hi)
        if lo > hi:
            raise FlipLabError(f"rate_lo {lo} is above rate_hi {hi}")
        return self.positions[(self.rates >= lo) & (self.rates < hi)]

    def count_at(self, rate: float) -> int:
        """Number of wrong bits at ``rate``."""
        r = self._check(rate)
        return int(np.count_nonzero(self.rates < r))


class Channel(ABC):
    """An error model acting on the eligible payload bits.

    Subclasses set :attr:`name`, :attr:`spec`, :attr:`rate` and implement :meth:`_pattern`.
    """

    #: family name, the part of the spec string before ``:``
    name: str = ""

    @property
    @abstractmethod
    def spec(self) -> str:
        """Canonical spec string; ``parse_channel(spec)`` gives an equal channel."""

    @property
    @abstractmethod
    def rate(self) -> float:
        """The channel's own rate in [0, 1]: the sweep coordinate it is specified at."""

    def __repr__(self) -> str:
        return f"parse_channel({self.spec!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Channel) and other.spec == self.spec

    def __hash__(self) -> int:
        return hash(self.spec)

    def pattern(
        self,
        payload: np.ndarray,
        regions: Sequence[Region],
        *,
        seed: int,
        trial: int = 0,
        rate_max: float | None = None,
    ) -> NestedPattern:
        """The nested error pattern of trial ``trial`` for all rates up to ``rate_max``.

        Args:
            payload: the clean payload, 1-D uint8 (read, never written).
            regions: where errors may land; must lie inside the payload and not overlap.
            seed: campaign seed (integer >= 0).
            trial: trial number (integer >= 0).
            rate_max: largest rate needed, in [0, 1]; default the channel's own rate.

        The pattern depends only on ``(seed, trial)``, the region layout and, for ``asym`` and
        ``stuck``, the stored bits and the channel's parameters: not on ``rate_max`` beyond
        cutting it off (see :mod:`host.channels.sampling`).
        """
        payload = check_payload(payload)
        layout = RegionLayout(regions, payload.size * 8)
        r_max = self.rate if rate_max is None else check_rate(rate_max, "rate_max")
        root = trial_seed(seed, trial)
        return self._pattern(payload, layout, root, r_max)

    @abstractmethod
    def _pattern(
        self,
        payload: np.ndarray,
        layout: RegionLayout,
        root: np.random.SeedSequence,
        rate_max: float,
    ) -> NestedPattern:
        """Draw the pattern (arguments already validated)."""

    def apply(
        self,
        payload: np.ndarray,
        regions: Sequence[Region],
        *,
        seed: int,
        trial: int = 0,
    ) -> tuple[np.ndarray, FlipReport]:
        """A corrupted copy of ``payload`` at the channel's own rate, and what changed.

        Same bits as ``pattern(..., rate_max=R).at(self.rate)`` for any ``R >= self.rate``.
        """
        pat = self.pattern(payload, regions, seed=seed, trial=trial, rate_max=self.rate)
        flips = pat.at(self.rate)
        noisy = payload.copy()
        flip_bits(noisy, flips)
        return noisy, FlipReport.of(payload, flips, pat.eligible_bits)


def empty_pattern(rate_max: float, eligible_bits: int) -> NestedPattern:
    """A pattern with no errors at any rate."""
    z = np.zeros(0, dtype=np.float64)
    return NestedPattern(np.zeros(0, dtype=np.int64), z, z, rate_max, eligible_bits)


def format_number(x: float) -> str:
    """Shortest round-tripping text of a parameter (``0.001``, ``1e-06``, ``0.5``)."""
    if math.isfinite(x) and x == int(x) and abs(x) < 1e15:
        return str(int(x))
    return repr(float(x))
