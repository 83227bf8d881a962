"""``host plan``: the least stored bits that meet a robustness target, one codec per layer.

1. **Sensitivity.** A per-layer campaign (``host sweep --scope layers``, prefix reuse) at the
   target rate ``p`` gives, for every layer L and codec c, the mean accuracy when only L's
   weights, stored in c, take errors: the layer's *drop* ``d(L, c) = max(0, A - acc)``
   (A: the undistorted model's accuracy). ``reliable(<first codec>)`` has drop 0.
2. **Search.** The plan's predicted drop is the sum of its layers' drops (errors in different
   layers act independently to first order: an assumption the verification step measures);
   its cost is the total stored bits. :func:`pareto_front` builds every non-dominated
   (bits, drop) assignment layer by layer (exact: a dominated partial assignment can never
   complete to a better one, as both sums are additive); the plan is the cheapest front point
   whose drop fits the target's budget ``A - threshold``.
3. **Verification.** Whole-model campaigns over rates around ``p`` for the plan (its codecs as
   ``--override`` arguments), each uniform codec, and the papers' choices (seed 000: parity8
   on everything; the SECDED baseline secded(fixed8)): measured accuracy at ``p`` beside the
   prediction, and R(x).

Targets: ``R(X)>=P`` (the mean accuracy at rate P is at least X·A, i.e. R(X) >= P) or
``acc>=A@P`` (mean accuracy at least A at rate P).
"""

from __future__ import annotations

import glob
import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from host.errors import FlipLabError

PAPERS = (("parity8", "seed 000: parity on every weight"),
          ("secded(fixed8)", "SECDED baseline"))
_R_TARGET = re.compile(r"^\s*R\(\s*(?P<x>[^)]+)\)\s*>=\s*(?P<p>\S+)\s*$", re.IGNORECASE)
_ACC_TARGET = re.compile(r"^\s*acc(uracy)?\s*>=\s*(?P<a>[^@\s]+)\s*@\s*(?P<p>\S+)\s*$",
                         re.IGNORECASE)


@dataclass(frozen=True)
class Target:
    """``R(x) >= rate`` (``x`` set) or ``accuracy >= accuracy at rate`` (``accuracy`` set)."""

    rate: float
    x: float | None = None
    accuracy: float | None = None
    text: str = ""

    def threshold(self, reference: float) -> float:
        """The mean accuracy a plan must keep at ``rate``."""
        if self.x is not None:
            return self.x * reference
        assert self.accuracy is not None  # a target names x or an accuracy
        return float(self.accuracy)


def parse_target(text: str) -> Target:
    """``"R(0.95)>=1e-2"`` or ``"acc>=0.9@1e-2"``."""
    def number(s: str, what: str, lo: float, hi: float, open_lo: bool) -> float:
        try:
            v = float(s)
        except ValueError:
            v = math.nan
        if not (lo < v <= hi if open_lo else lo <= v <= hi):
            raise FlipLabError(f"target {text!r}: {what} {s!r} is not a number in "
                               f"{'(' if open_lo else '['}{lo}, {hi}]")
        return v

    m = _R_TARGET.match(text or "")
    if m:
        return Target(number(m["p"], "rate", 0.0, 1.0, True),
                      x=number(m["x"], "x", 0.0, 1.0, True), text=text)
    m = _ACC_TARGET.match(text or "")
    if m:
        return Target(number(m["p"], "rate", 0.0, 1.0, True),
                      accuracy=number(m["a"], "accuracy", 0.0, 1.0, False), text=text)
    raise FlipLabError(f"target {text!r} is neither 'R(X)>=P' (e.g. 'R(0.95)>=1e-2') nor "
                       f"'acc>=A@P' (e.g. 'acc>=0.9@1e-2')")


@dataclass(frozen=True)
class Option:
    """One codec for one layer: its stored bits and its measured accuracy drop."""

    codec: str
    bits: int
    drop: float


@dataclass(frozen=True)
class Assignment:
    """A codec per layer (in layer order), its total bits and predicted drop."""

    bits: int
    drop: float
    codecs: tuple[str, ...]


def pareto_front(options: Sequence[Sequence[Option]]) -> list[Assignment]:
    """Every assignment (one option per layer) not dominated in (bits, drop), by bits.

    Layer by layer, the partial assignments are extended by every option of the next layer and
    pruned to the non-dominated ones (fewer bits, or the same bits and less drop).
    """
    front = [Assignment(0, 0.0, ())]
    for layer in options:
        if not layer:
            raise FlipLabError("a layer has no codec option")
        grown = sorted((Assignment(a.bits + o.bits, a.drop + o.drop, a.codecs + (o.codec,))
                        for a in front for o in layer), key=lambda a: (a.bits, a.drop))
        front, best = [], math.inf
        for a in grown:
            if a.drop < best - 1e-15:
                front.append(a)
                best = a.drop
    return front


def cheapest(front: Sequence[Assignment], budget: float) -> Assignment | None:
    """The assignment with the fewest bits whose drop is at most ``budget`` (None if none)."""
    fits = [a for a in front if a.drop <= budget + 1e-12]
    return min(fits, key=lambda a: (a.bits, a.drop)) if fits else None


def exhaustive(options: Sequence[Sequence[Option]], budget: float) -> Assignment | None:
    """The same optimum by trying every assignment (for tests and tiny models)."""
    best = None
    for combo in itertools.product(*options):
        a = Assignment(sum(o.bits for o in combo), sum(o.drop for o in combo),
                       tuple(o.codec for o in combo))
        if a.drop <= budget + 1e-12 and (best is None or (a.bits, a.drop) < (best.bits, best.drop)):
            best = a
    return best


# ---------------------------------------------------------------------------------------------
# the campaign flow


@dataclass
class PlanSettings:
    """``host plan``'s options."""

    codecs: str | Sequence[str]
    target: str
    channel: str = "bsc"
    trials: int = 10
    data: object = None  # host.data.DataSpec
    seed: int = 0
    rates: int = 7  # verification grid: this many log-spaced rates from p/10 to 10p


@dataclass
class PlanResult:
    """What ``host plan`` found (JSON-ready through :meth:`to_json`)."""

    target: Target
    reference: float
    threshold: float
    layers: list[str]
    options: dict[str, list[Option]]
    plan: Assignment | None
    front: list[Assignment]
    weights: int
    rows: list[dict] = field(default_factory=list)
    plot: str | None = None

    def overrides(self) -> list[str]:
        if self.plan is None:
            return []
        return [f"--override '{glob.escape(layer)}={codec}'"
                for layer, codec in zip(self.layers, self.plan.codecs)]

    def to_json(self) -> dict:
        return {
            "target": self.target.text, "rate": self.target.rate,
            "reference_accuracy": self.reference, "threshold": self.threshold,
            "plan": None if self.plan is None else {
                "codecs": dict(zip(self.layers, self.plan.codecs)),
                "bits_per_weight": self.plan.bits / self.weights,
                "predicted_accuracy": self.reference - self.plan.drop,
                "overrides": self.overrides()},
            "sensitivity": {layer: [{"codec": o.codec, "bits": o.bits, "drop": o.drop}
                                    for o in opts] for layer, opts in self.options.items()},
            "front": [{"bits_per_weight": a.bits / self.weights,
                       "predicted_accuracy": self.reference - a.drop,
                       "codecs": list(a.codecs)} for a in self.front],
            "table": self.rows, "plot": self.plot,
        }


def _layer_bits(image, layers: list[str]) -> dict[str, int]:
    bits = dict.fromkeys(layers, 0)
    for t in image.tensors:
        bits[t.layer] += t.stored_bits
    return bits


def _mean_at(rows: list[dict], rate: float) -> dict[tuple[str, str], float]:
    acc: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        if math.isclose(r["rate"], rate, rel_tol=1e-9):
            acc.setdefault((r["codec"], r["scope"]), []).append(r["accuracy"])
    return {k: float(np.mean(v)) for k, v in acc.items()}


def _rates_around(p: float, n: int) -> list[float]:
    grid = np.geomspace(p / 10, min(10 * p, 1.0), n).tolist()
    return sorted({float(f"{r:.6g}") for r in grid} | {p})


def make_plan(model: str | Path, settings: PlanSettings, out: str | Path, *,
              progress: bool = True, verify: bool = True) -> PlanResult:
    """Measure, search and verify (module docstring); campaigns go to ``out/sensitivity``,
    ``out/uniform`` and ``out/plan`` (each resumable), the plot to ``out/pareto.png``."""
    from host.campaign import SweepSettings, make_spec, run_sweep
    from host.campaign.grid import check_codecs
    from host.campaign.store import read_rows
    from host.campaign.worker import store
    from host.data import DataSpec
    from host.model import load_model

    s = settings
    target = parse_target(s.target)
    codecs = list(check_codecs(s.codecs))
    if any(c.startswith("reliable(") for c in codecs):
        raise FlipLabError("give the noisy-memory codecs; the planner adds reliable(...) itself")
    data: DataSpec = s.data if isinstance(s.data, DataSpec) else DataSpec()
    out = Path(out)
    sens = make_spec(model, SweepSettings(codecs=codecs, rates=[target.rate], trials=s.trials,
                                          channel=s.channel, scopes=["layers"], data=data,
                                          seed=s.seed))
    result = run_sweep(sens, out / "sensitivity", progress=progress, summary=False)
    reference = float(result.reference["accuracy"])
    threshold = target.threshold(reference)
    ws = load_model(sens.model)
    layers = list(dict.fromkeys(t.layer for t in ws.tensors))
    means = _mean_at(read_rows(out / "sensitivity"), target.rate)
    reliable = f"reliable({codecs[0]})"
    options: dict[str, list[Option]] = {}
    weights = 0
    for codec in codecs + [reliable]:
        image = store(ws, sens, codec)
        weights = sum(t.count for t in image.tensors)
        for layer, bits in _layer_bits(image, layers).items():
            drop = 0.0 if codec == reliable else max(0.0, reference - means[(codec,
                                                                             f"layer:{layer}")])
            options.setdefault(layer, []).append(Option(codec, bits, drop))
    front = pareto_front([options[layer] for layer in layers])
    plan = cheapest(front, reference - threshold)
    res = PlanResult(target, reference, threshold, layers, options, plan, front, weights)
    if verify:
        _verify(model, s, res, codecs, data, out, progress)
        res.plot = str(_plot(res, out / "pareto.png"))
    return res


def _verify(model, s: PlanSettings, res: PlanResult, codecs: list[str], data, out: Path,
            progress: bool) -> None:
    import pandas as pd

    from host.campaign import SweepSettings, make_spec, run_sweep
    from host.campaign.store import read_rows
    from host.metrics import r_interpolated

    rates = _rates_around(res.target.rate, s.rates)
    x = res.threshold / res.reference
    uniform = list(dict.fromkeys(codecs + [c for c, _ in PAPERS]))
    runs: list[tuple[str, list[str], list[str]]] = [("uniform", uniform, [])]
    if res.plan is not None:
        counts = {c: res.plan.codecs.count(c) for c in res.plan.codecs}
        main = max(counts, key=lambda c: counts[c])
        overrides = [f"{glob.escape(layer)}={codec}"
                     for layer, codec in zip(res.layers, res.plan.codecs) if codec != main]
        runs.append(("plan", [main], overrides))
    notes = dict(PAPERS)
    for name, cods, overrides in runs:
        spec = make_spec(model, SweepSettings(codecs=cods, rates=rates, trials=s.trials,
                                              channel=s.channel, overrides=overrides,
                                              data=data, seed=s.seed))
        run_sweep(spec, out / name, progress=progress, summary=False)
        df = pd.DataFrame(read_rows(out / name))
        for codec in cods:
            sub = df[df["codec"] == codec]
            at_p = float(sub[np.isclose(sub["rate"], res.target.rate)]["accuracy"].mean())
            r = r_interpolated(sub[["rate", "accuracy"]], x, res.reference, n_boot=200)
            if name == "plan" and res.plan is not None:
                label, bits = "plan", res.plan.bits
                predicted = res.reference - res.plan.drop
            else:
                label = codec
                bits = sum(o.bits for layer in res.layers for o in res.options[layer]
                           if o.codec == codec)
                predicted = res.reference - sum(o.drop for layer in res.layers
                                                for o in res.options[layer] if o.codec == codec)
            res.rows.append({
                "name": label, "note": notes.get(codec, "uniform") if name != "plan" else
                "least bits meeting the target",
                "bits_per_weight": bits / res.weights if bits else float(sub["bits_per_weight"]
                                                                         .iloc[0]),
                "predicted_accuracy": predicted if bits else None,
                "measured_accuracy": at_p, "meets_target": at_p >= res.threshold,
                "r_x": None if math.isnan(r.rber_interpolated) else float(r.rber_interpolated),
                "r_x_grid": None if math.isnan(r.grid.rber) else float(r.grid.rber),
                "r_x_status": r.grid.status})


def _plot(res: PlanResult, path: Path) -> Path:
    import io

    from matplotlib.figure import Figure

    from host.image import write_atomic

    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.add_subplot()
    xs = [a.bits / res.weights for a in res.front]
    ys = [res.reference - a.drop for a in res.front]
    ax.step(xs, ys, where="post", color="0.6", label="Pareto front (predicted)")
    ax.plot(xs, ys, "o", color="0.6", ms=3)
    for row in res.rows:
        ax.plot(row["bits_per_weight"], row["measured_accuracy"], "s" if row["name"] == "plan"
                else "^", ms=7, label=f"{row['name']} (measured)")
    ax.axhline(res.threshold, ls="--", color="tab:red", lw=1, label="target")
    ax.set_xlabel("stored bits per weight")
    ax.set_ylabel(f"mean accuracy at rate {res.target.rate:g}")
    ax.set_title(f"host plan: {res.target.text}")
    ax.legend(fontsize=7, loc="lower right")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, buf.getvalue())
    return path
