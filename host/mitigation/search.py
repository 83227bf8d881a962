"""Seed 003's Algorithm 1 (threshold fine-tuning), exactly as the paper writes it.

The search keeps an interval S, starting at ``[0, ACT_max]``. ``AUC_Calculation(S)`` evaluates
the objective at the four boundaries of S's thirds, ``T_1 = min S``, ``T_2 = T_1 + (max S -
min S) / 3``, ``T_3 = T_2 + (max S - min S) / 3``, ``T_4 = max S``. ``Interval_Search`` keeps the
neighbourhood of the best boundary (index of the highest AUC; on ties the highest T, see
below):

- index 4: ``S = [T_3, T_4]`` (one third), index 1: ``S = [T_1, T_2]`` (one third),
- else ``S = [T_(index-1), T_(index+1)]`` (two thirds), and ``T = T_index``.

The loop runs while ``counter < N`` (``counter`` starts at 1 and grows by one per round) and
returns T early when ``max |AUC_(i+1) - AUC_i| <= delta`` and ``counter >= M``. As in the paper,
the returned T is the one chosen by the last ``Interval_Search``, i.e. before the last four
probes; when the search stops before any ``Interval_Search`` ran (N <= 2, or the delta rule in
the first round with M <= 2), where the paper leaves T undefined, we return what
``Interval_Search`` would have chosen from the first four probes.

The paper does not say which index wins a tie. We take the highest T: an AUC plateau (common
where the layer's faults are few and every candidate scores the same) is no evidence for
clipping more of the clean activations, and the paper's bell-shaped AUC(T) has its plateau
above the peak.

Probes are cached by threshold: a boundary kept from the previous round is not evaluated again,
so a search of R rounds calls the objective ``4 + 2 (R - 1)`` times.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from host.errors import FlipLabError


@dataclass(frozen=True)
class Round:
    """One ``AUC_Calculation``: the interval, its four thresholds and their AUCs."""

    interval: tuple[float, float]
    thresholds: tuple[float, float, float, float]
    aucs: tuple[float, float, float, float]


@dataclass
class SearchResult:
    """What Algorithm 1 returns, with its trace.

    Attributes:
        t: the threshold T.
        rounds: every ``AUC_Calculation``, in order.
        evaluations: objective calls (distinct thresholds probed).
        stopped: ``"delta"`` (the delta / M rule) or ``"N"`` (the round limit).
    """

    t: float
    rounds: list[Round] = field(default_factory=list)
    evaluations: int = 0
    stopped: str = "N"


def auc_calculation(s: tuple[float, float], auc_of: Callable[[float], float]
                    ) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The four thresholds of S's thirds and their AUCs (the paper's lines 27-35)."""
    lo, hi = min(s), max(s)
    t1 = lo
    t2 = t1 + (hi - lo) / 3
    t3 = t2 + (hi - lo) / 3
    t4 = hi
    ts = (t1, t2, t3, t4)
    return ts, tuple(auc_of(t) for t in ts)


def interval_search(ts: tuple[float, ...], aucs: tuple[float, ...]
                    ) -> tuple[tuple[float, float], float]:
    """The next interval and T from four probes (the paper's lines 17-26; indices from 1)."""
    index = max(range(4), key=lambda i: (aucs[i], i)) + 1  # highest AUC, highest T on ties
    if index == 4:
        s = (ts[2], ts[3])
    elif index == 1:
        s = (ts[0], ts[1])
    else:
        s = (ts[index - 2], ts[index])
    return s, ts[index - 1]


def threshold_search(auc_of: Callable[[float], float], act_max: float, *, n: int = 6,
                     m: int = 3, delta: float = 0.005) -> SearchResult:
    """Algorithm 1 of seed 003 over ``[0, act_max]``.

    Args:
        auc_of: the objective, T -> AUC (called once per distinct T).
        act_max: the layer's ACT_max (> 0), the top of the first interval.
        n: N, the round limit (the loop runs while counter < N); >= 2.
        m: M, the least counter at which the delta rule may stop the search; 1 <= M < N.
        delta: the delta of the stopping rule (AUC units), >= 0.

    Returns:
        The :class:`SearchResult`.
    """
    if not act_max > 0:
        raise FlipLabError(f"ACT_max must be > 0 to search a threshold, got {act_max!r}")
    if n < 2 or not 1 <= m < n or delta < 0:
        raise FlipLabError(f"Algorithm 1 needs N >= 2, 1 <= M < N and delta >= 0 "
                           f"(got N={n}, M={m}, delta={delta})")
    cache: dict[float, float] = {}

    def cached(t: float) -> float:
        if t not in cache:
            cache[t] = float(auc_of(t))
        return cache[t]

    result = SearchResult(t=float("nan"))
    counter = 1
    t = None
    ts: tuple[float, ...] = ()
    aucs: tuple[float, ...] = ()
    while counter < n:
        if counter == 1:
            s = (0.0, float(act_max))
        else:
            s, t = interval_search(ts, aucs)
        ts, aucs = auc_calculation(s, cached)
        result.rounds.append(Round(s, ts, aucs))  # type: ignore[arg-type]  # four each
        counter += 1
        deltas: list[float] = [abs(aucs[i + 1] - aucs[i]) for i in range(3)]
        if max(deltas) <= delta and counter >= m:
            result.stopped = "delta"
            break
    if t is None:  # no Interval_Search ran: the paper leaves T undefined
        t = interval_search(ts, aucs)[1]
    result.t, result.evaluations = t, len(cache)
    return result
