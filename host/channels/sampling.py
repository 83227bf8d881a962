"""Nested sampling of rare events over many bits, at a cost that grows with the events.

The model: every eligible bit ``i`` (``0 <= i < n``) owns one uniform number ``U_i ~ U(0, 1)``,
independent across bits; at rate ``r`` the bit is *hit* iff ``U_i < r``. The hits at rate ``r``
are therefore independent Bernoulli(r), and hits at a lower rate are a subset of those at a
higher one (nested patterns). :func:`sample_nested` returns the bits with ``U_i < rate_max`` and
their ``U_i`` without drawing a number for every bit (why: docs/decisions.md#9).

Rate ladder. ``(0, DENSE_RATE]`` is cut at ``r_k = DENSE_RATE * 2**-k``, ``k = 0 .. K``
(``K = LEVELS - 1``; ``r_{K+1} = 0``). Level ``k`` marks every bit independently with
probability ``q_k = (r_k - r_{k+1}) / (1 - r_{k+1})`` (``q_K = r_K``), drawn as Geometric(q_k)
gaps between marked bits (``Generator.geometric``), and gives each marked bit a value
``U(r_{k+1}, r_k)``. A bit's ``U_i`` is the value of the deepest (lowest-rate) level that marks
it; a bit no level marks gets ``U_i ~ U(DENSE_RATE, 1)``, one uniform per bit, drawn only in
the dense regime ``rate_max > DENSE_RATE``. Since the levels are independent, the deepest
level marking a bit is ``k`` with probability ``q_k * prod_{j > k} (1 - q_j)
= q_k * (1 - r_{k+1}) = r_k - r_{k+1}`` (the product telescopes), and the value is uniform on
that level's interval: ``U_i`` is exactly U(0, 1), independently across bits. Levels are drawn
from the deepest up to the first ladder rate >= ``rate_max``, so the cost is about
``2 * n * rate_max`` draws in the sparse regime (and one uniform per bit in the dense regime).

Reproducibility. Level ``k`` draws from three generators of its own,
``default_rng(SeedSequence(root.entropy, spawn_key=root.spawn_key + (k, s)))`` (child ``s`` of
child ``k`` of ``root.spawn``) for ``s`` = 0 the geometric gaps, 1 the values, 2 the marks; the
dense stage is ``k = LEVELS``. Gaps are drawn in chunks (each gap the next number of its stream,
whatever the chunk), dense values in blocks of 2**20 bits, and the ``t``-th marked bit of a
level takes the ``t``-th number of each stream. Hence ``U_i`` (and the mark) of every bit is a function of the
root seed sequence and ``i`` alone: it depends neither on ``rate_max`` (re-running a single rate
alone gives the same bits as a sweep) nor on ``n`` (appending eligible bits does not change the
earlier ones).
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Any

import numpy as np

from host.errors import FlipLabError

#: rate_max above this draws one uniform per bit (the dense regime); the top ladder rate
DENSE_RATE = 1.0 / 16.0
#: number of ladder levels; the lowest ladder rate is DENSE_RATE * 2**-(LEVELS - 1) = 2**-24
#: ~ 6e-8 (its level costs about n * 6e-8 draws, and serves every lower rate exactly)
LEVELS = 21
#: spawn-key tag of device (stuck-at map) seed sequences, keeps them apart from trial streams
DEVICE_DOMAIN = 0x5354554B  # ASCII "STUK"
# sub-streams of a level: gaps, uniform values, marks
_GAPS, _VALUES, _MARKS = 0, 1, 2
_FIRST_CHUNK = 64
_MAX_CHUNK = 1 << 22
_BLOCK = 1 << 20


def level_rate(k: int) -> float:
    """Ladder rate ``r_k = DENSE_RATE * 2**-k`` (exact power of two)."""
    return DENSE_RATE * 2.0 ** (-k)


def check_seed(value: Any, what: str) -> int:
    """``value`` as an int >= 0 (bool refused), else a FlipLabError naming ``what``."""
    if isinstance(value, bool):
        raise FlipLabError(f"{what} must be a non-negative integer, got {value!r}")
    try:
        v = operator.index(value)
    except TypeError:
        raise FlipLabError(f"{what} must be a non-negative integer, got {value!r}") from None
    if v < 0:
        raise FlipLabError(f"{what} must be a non-negative integer, got {v}")
    return v


def trial_seed(seed: int, trial: int) -> np.random.SeedSequence:
    """The seed sequence of one trial: ``SeedSequence([seed, trial])``.

    Args:
        seed: campaign seed, integer >= 0.
        trial: trial number, integer >= 0.

    Every random choice of trial ``trial`` of a campaign seeded ``seed`` derives from this one
    sequence, so a trial re-run alone gives the same bits.
    """
    s = check_seed(seed, "seed")
    t = check_seed(trial, "trial")
    return np.random.SeedSequence([s, t])


def trial_rng(seed: int, trial: int) -> np.random.Generator:
    """``numpy.random.default_rng(SeedSequence([seed, trial]))``: the generator of one trial.

    Channels draw from spawned children of the same sequence (see the module docstring), so
    a campaign may use this generator for its own choices without correlating with the errors.
    """
    return np.random.default_rng(trial_seed(seed, trial))


def device_seed(device: int) -> np.random.SeedSequence:
    """Seed sequence of a device property (a stuck-at map), from the device seed alone.

    ``SeedSequence([device], spawn_key=(DEVICE_DOMAIN,))``; independent of any trial stream.
    """
    d = check_seed(device, "device seed")
    return np.random.SeedSequence([d], spawn_key=(DEVICE_DOMAIN,))


def _stream(root: np.random.SeedSequence, *key: int) -> np.random.Generator:
    """Generator of ``root``'s descendant ``key`` (``key = (k, s)``: child ``k`` of ``root``,
    then its child ``s``), built without mutating ``root``."""
    ss = np.random.SeedSequence(root.entropy, spawn_key=tuple(root.spawn_key) + key)
    return np.random.default_rng(ss)


def geometric_hits(rng: np.random.Generator, n: int, q: float) -> np.ndarray:
    """Sorted indices of the successes among ``n`` independent Bernoulli(q) trials.

    Draws Geometric(q) gaps (number of trials up to and including the next success) in chunks
    sized to the successes still expected in the trials left (plus six standard deviations;
    at least 64, at most 2**22), so the cost grows with the number of successes, about
    ``n * q``, not with ``n``, and little is drawn past the last trial. The chunking does not
    change the result: each gap takes the next number of ``rng``'s stream, whatever the chunk.
    """
    if n <= 0 or q <= 0.0:
        return np.zeros(0, dtype=np.int64)
    if q >= 1.0:
        return np.arange(n, dtype=np.int64)
    parts = []
    last = np.int64(-1)
    while True:
        expected = (n - 1 - int(last)) * q
        chunk = int(min(_MAX_CHUNK, max(_FIRST_CHUNK, expected + 6.0 * math.sqrt(expected))))
        hits = last + np.cumsum(rng.geometric(q, size=chunk), dtype=np.int64)
        if hits[-1] >= n:
            parts.append(hits[: np.searchsorted(hits, n)])
            break
        parts.append(hits)
        last = hits[-1]
    return np.concatenate(parts)


@dataclass(frozen=True)
class Candidates:
    """Bits with ``U_i < rate_max``: ``index`` sorted (int64), ``u`` their uniforms (float64),
    ``mark`` one more independent U(0, 1) per bit (float64) when requested, else None."""

    index: np.ndarray
    u: np.ndarray
    mark: np.ndarray | None
    rate_max: float


@dataclass(frozen=True)
class _Level:
    """The bits one ladder level marks: ``index`` sorted, values ``u``, marks ``mark``."""

    index: np.ndarray
    u: np.ndarray
    mark: np.ndarray


_Arrays = tuple[np.ndarray, np.ndarray, np.ndarray]


def _draw_level(root: np.random.SeedSequence, k: int, n: int, with_mark: bool) -> _Level:
    """Level ``k``: each of ``n`` bits marked with probability ``q_k``, values in
    ``[r_{k+1}, r_k)``."""
    hi = level_rate(k)
    lo = 0.0 if k == LEVELS - 1 else level_rate(k + 1)
    index = geometric_hits(_stream(root, k, _GAPS), n, (hi - lo) / (1.0 - lo))
    if index.size == 0:
        return _Level(index, np.zeros(0), np.zeros(0))
    u = lo + (hi - lo) * _stream(root, k, _VALUES).random(index.size)
    u = np.minimum(u, np.nextafter(hi, 0.0))  # lo + (hi - lo) * v may round up to hi
    mark = _stream(root, k, _MARKS).random(index.size) if with_mark else np.zeros(0)
    return _Level(index, u, mark)


#: bit positions merged at a time by the union of the levels
_UNION_BLOCK = 1 << 24


def _union_deepest_first(levels: list[_Level], n: int, rate_max: float, with_mark: bool
                         ) -> _Arrays:
    """Sorted union of the levels' bits with ``U_i < rate_max``; deeper levels come first
    in ``levels`` and win where two levels mark the same bit.

    Block by block of bit positions (bounded temporaries): one stable sort of the levels'
    entries in the block laid end to end (each level is sorted already: the sort merges
    runs), then the first entry of each bit: the deepest level's.
    """
    parts: list[list[np.ndarray]] = [[], [], []]
    for start in range(0, n, _UNION_BLOCK):
        spans = [(level, *np.searchsorted(level.index, [start, start + _UNION_BLOCK]))
                 for level in levels]
        keep = [level.u[a:b] < rate_max for level, a, b in spans]
        index = np.concatenate([level.index[a:b][k] for (level, a, b), k in zip(spans, keep)])
        if index.size == 0:
            continue
        order = np.argsort(index, kind="stable")
        index = index[order]
        first = np.ones(index.size, dtype=bool)
        np.not_equal(index[1:], index[:-1], out=first[1:])
        order = order[first]
        parts[0].append(index[first])
        parts[1].append(np.concatenate([level.u[a:b][k] for (level, a, b), k
                                        in zip(spans, keep)])[order])
        if with_mark:
            parts[2].append(np.concatenate([level.mark[a:b][k] for (level, a, b), k
                                            in zip(spans, keep)])[order])
    out = []
    for part, dtype in zip(parts, (np.int64, np.float64, np.float64)):  # one part list at a time
        out.append(np.concatenate(part) if part else np.zeros(0, dtype=dtype))
        part.clear()
    return out[0], out[1], out[2]


def _dense(
    root: np.random.SeedSequence, levels: list[_Level], n: int, rate_max: float, with_mark: bool
) -> _Arrays:
    """All bits with ``U_i < rate_max`` > DENSE_RATE: one uniform per bit, block by block,
    overwritten by the levels' values (shallowest first, so the deepest level wins)."""
    values = _stream(root, LEVELS, _VALUES)
    marks = _stream(root, LEVELS, _MARKS)  # drawn from only when with_mark
    parts_i, parts_u, parts_m = [], [], []
    mark: Any = None
    for start in range(0, n, _BLOCK):
        stop = min(start + _BLOCK, n)
        u = DENSE_RATE + (1.0 - DENSE_RATE) * values.random(stop - start)
        if with_mark:
            mark = marks.random(stop - start)
        for level in reversed(levels):
            a, b = np.searchsorted(level.index, [start, stop])
            u[level.index[a:b] - start] = level.u[a:b]
            if with_mark:
                mark[level.index[a:b] - start] = level.mark[a:b]
        hit = np.flatnonzero(u < rate_max)
        parts_i.append(start + hit)
        parts_u.append(u[hit])
        if with_mark:
            parts_m.append(mark[hit])
    index = np.concatenate(parts_i) if parts_i else np.zeros(0, dtype=np.int64)
    u = np.concatenate(parts_u) if parts_u else np.zeros(0)
    mark = np.concatenate(parts_m) if parts_m else np.zeros(0)
    return index, u, mark


def sample_nested(
    root: np.random.SeedSequence, n: int, rate_max: float, *, with_mark: bool = False
) -> Candidates:
    """The bits ``i < n`` whose uniform ``U_i`` is below ``rate_max``, with their ``U_i``.

    Args:
        root: seed sequence the per-level generators are spawned from.
        n: number of bits (>= 0).
        rate_max: in ``[0, 1]``; above ``DENSE_RATE`` one uniform is drawn per bit.
        with_mark: also return a second independent uniform per returned bit, itself a
            function of ``(root, i)`` only (used for the stuck-at value of a stuck cell).

    Returns:
        :class:`Candidates`; each bit is present independently with probability
        ``rate_max`` and, when present, ``U_i ~ U(0, rate_max)``.
    """
    if not 0.0 <= rate_max <= 1.0:
        raise FlipLabError(f"rate_max = {rate_max} is outside [0, 1]")
    if n <= 0 or rate_max <= 0.0:
        z = np.zeros(0)
        return Candidates(np.zeros(0, dtype=np.int64), z, z if with_mark else None, rate_max)
    top = LEVELS - 1
    while top > 0 and level_rate(top) < rate_max:
        top -= 1
    levels = [_draw_level(root, k, n, with_mark) for k in range(LEVELS - 1, top - 1, -1)]
    if rate_max > DENSE_RATE:
        index, u, mark = _dense(root, levels, n, rate_max, with_mark)
    else:
        index, u, mark = _union_deepest_first(levels, n, rate_max, with_mark)
    return Candidates(index, u, mark if with_mark else None, rate_max)
