"""``host robustness``: R(x) of one codec by bisection on log p, without a full grid.

Seed 000 defines R(x) as the largest raw bit error rate p whose mean accuracy over distorted
models is ≥ x·A (A: the undistorted model's accuracy on the same samples). The search keeps a
bracket [lo, hi] with mean(lo) ≥ x·A > mean(hi) and probes its geometric middle; it stops when
hi/lo ≤ 1 + resolution.

A probe at p decides whether mu(p), the mean over trials of the full-test-set accuracy, is
above x·A, by sequential stopping over trials *and* samples (host.campaign.sequential): trial
t is the nested pattern of (seed, t) read at p (the same bits as trial t of a ``host sweep``
with the same seed), scored on the first n samples of its own random order of the test set;
trials and samples per trial double until the two-stage interval (it covers the variance
between trials and the sampling of samples) lies wholly above or below x·A, or is narrower
than ±ci. A probe far from the threshold stops on a fraction of the test set and few trials.

Each probe ends with a verdict: ``above`` / ``below`` (the whole interval lies above / below
x·A; right at the stated confidence), ``within`` (the interval is narrower than ±ci and
contains x·A: decided by the mean, x·A lies in the indifference zone) or ``unresolved``
(``max_trials`` reached while more samples could not narrow the interval enough: decided by
the mean for the search, not counted in the interval).

Reported: ``r`` = lo, the largest probed rate that passes (the paper's definition restricted to
the probed rates; the true R(x) lies in [lo, hi) up to the per-probe uncertainty), and the
interval [ci_low, ci_high]: ci_low = the largest probe that passes as ``above`` or ``within``,
ci_high = the smallest probe that fails as ``below`` or ``within``. Each end rests on one
decision at the stated confidence, so R(x) lies in the interval with probability at least
1 - 2·(1 - confidence) (union bound; rates share their trials' patterns, no independence is
assumed), up to the ±ci tolerance; unresolved probes widen it, a hint to raise
``max_trials``. ``inferences`` counts sample inferences run (the reference pass included);
``reused`` the samples answered by an identical variant seen before.

Resumable: with a probes file (``results``), each probe is appended as it is decided, and a
rerun with the same settings reads them back; the search is deterministic, so it resumes
where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from host.campaign.grid import CampaignSpec, sweep_channel
from host.campaign.sequential import SequentialRule, decide, sample_order
from host.campaign.sweep import SweepSettings, make_spec, reference_run
from host.campaign.worker import CampaignJob, context_for
from host.data import DataSpec
from host.decode import DecodedWeights, IncrementalDecoder
from host.errors import FlipLabError
from host.evaluation import run_variant
from host.executors import DEFAULT as DEFAULT_BACKEND
from host.fileio import ProbeLog
from host.inject import error_pattern

#: results file format tag (the "format" of the probes file's header line)
PROBES_FORMAT = "fliplab-robustness-probes"


@dataclass
class Probe:
    """One probed rate: its trial accuracies, their mean and interval, and the verdict
    (``above``, ``below``, ``within``, ``unresolved``; see the module docstring)."""

    rate: float
    accuracies: list[float]
    mean: float
    ci_low: float
    ci_high: float
    verdict: str
    trials: int
    samples: int
    between: float
    within: float
    looks: int


@dataclass
class RobustnessResult:
    """R(x) of one codec and how it was found (``to_json`` keys are stable)."""

    r: float
    ci_low: float
    ci_high: float
    inferences: int
    x: float
    ci: float
    threshold: float
    reference_accuracy: float
    codec: str
    channel: str
    lo: float
    hi: float
    resolution: float
    status: str
    unresolved: int
    variants: int
    samples: int
    seed: int
    confidence: float
    looks: int
    look_level: float
    reused: int
    probes: list[Probe] = field(default_factory=list)

    def to_json(self) -> dict:
        d = asdict(self)
        d["probes"] = [asdict(p) for p in self.probes]
        return d


class _TrialSource:
    """How many of a trial's samples a variant classifies correctly, at any rate: the
    trial's nested pattern read at that rate, through the campaign's variant path
    (host.campaign.worker), on the samples ``sample_order(seed, trial)[start:stop]``.

    The pattern is drawn up to the probed rate only (it is the same bits whatever its
    ``rate_max``, docs/error-models.md), at a cost ~ 2·n·rate, small beside an inference.
    Variants that decode to identical weights (no flip at a low rate, or flips the codec
    corrects or that land on equal values) share one per-sample record of right answers,
    keyed by a digest of the decoded weights: a sample is run once per distinct variant,
    and a variant equal to the clean model is never run (the reference pass scored it).
    """

    def __init__(self, spec: CampaignSpec, job: CampaignJob, right: np.ndarray) -> None:
        self.ctx = context_for(job)
        self.spec = spec
        self.stored = self.ctx.stored(spec.codecs[0])
        self.channel = sweep_channel(spec.channel)
        self.n = len(self.ctx.y)
        self.variants = 0  # distinct variants run on at least one sample
        self.inferences = 0  # sample inferences run
        self.reused = 0  # samples answered from an identical variant
        self._orders: dict[int, np.ndarray] = {}
        self._clean = _digest(self.stored.clean)
        self._known: dict[bytes, np.ndarray] = {self._clean: right.astype(np.int8)}

    def order(self, trial: int) -> np.ndarray:
        if trial not in self._orders:
            self._orders[trial] = sample_order(self.spec.seed, trial, self.n)
        return self._orders[trial]

    def count(self, trial: int, rate: float, start: int, stop: int) -> int:
        pattern = error_pattern(self.stored.image, self.channel, seed=self.spec.seed,
                                trial=trial, rate_max=rate)
        flips = pattern.at(rate)
        variant = IncrementalDecoder(self.stored.clean).flip(flips) if len(flips) else None
        key = self._clean if variant is None else _digest(variant)
        known = self._known.get(key)
        if known is None:
            known = self._known[key] = np.full(self.n, -1, np.int8)
        idx = self.order(trial)[start:stop]
        todo = idx[known[idx] < 0]
        if todo.size:
            assert variant is not None  # the clean variant is known on every sample
            ev = run_variant(self.stored.executor, variant, self.ctx.x[todo], self.ctx.y[todo])
            known[todo] = ev.right
            self.variants += int(todo.size == np.count_nonzero(known >= 0))  # first run
            self.inferences += int(todo.size)
        self.reused += int(idx.size - todo.size)
        return int(known[idx].sum())


def _digest(decoded: DecodedWeights) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for name in sorted(decoded.weights):
        h.update(name.encode())
        h.update(np.ascontiguousarray(decoded.weights[name]).tobytes())
    return h.digest()


@dataclass(frozen=True)
class RobustnessSettings:
    """What ``host robustness`` searches, and how precisely.

    Attributes:
        codec: the codec whose R(x) is sought.
        channel: the channel family (``bsc``, ``asym:P01,P10``, ...); its rate is searched.
        x: criterion in (0, 1]: mean accuracy >= x·A.
        ci: half-width of the indifference zone around x·A at a probe (accuracy fraction,
            e.g. 0.005 = ±0.5 points): an interval this narrow decides by its mean.
        data: the labelled samples.
        max_trials, min_trials: trials per probe at most, and at a probe's first look
            (lowered to max_trials if above it); 2 <= both.
        seed: campaign seed.
        lo, hi: the search bracket of rates, 0 < lo < hi <= 1.
        resolution: stop when hi/lo <= 1 + resolution (> 0).
        confidence: probability that a probe's decision and interval are right (all its
            looks together, host.campaign.sequential).
        first_samples: samples per trial at a probe's first look (None: N/32, at least 64;
            the full test set turns sequential stopping over samples off).
        trial_cost: cost of one trial besides its samples, in sample-inferences (steers
            trials against samples; never the result's validity).
        granularity: quantisation range per model, tensor or channel.
        backend: the executor (host.executors).
    """

    codec: str = "parity8"
    channel: str = "bsc"
    x: float = 0.95
    ci: float = 0.005
    data: DataSpec = field(default_factory=DataSpec)
    max_trials: int = 200
    min_trials: int = 8
    seed: int = 0
    lo: float = 1e-7
    hi: float = 0.5
    resolution: float = 0.1
    confidence: float = 0.95
    first_samples: int | None = None
    trial_cost: float = 256.0
    granularity: str = "model"
    backend: str = DEFAULT_BACKEND


def find_robustness(model: str, settings: RobustnessSettings = RobustnessSettings(), *,
                    results: Path | None = None, progress: bool = True) -> RobustnessResult:
    """R(x) of ``settings.codec`` on ``model`` by bisection on log p (see the module
    docstring). ``results``: the probes file, read back on a rerun with the same settings."""
    s = settings
    x, lo, hi, resolution = s.x, s.lo, s.hi, s.resolution
    if not 0.0 < x <= 1.0:
        raise FlipLabError(f"x must be in (0, 1], got {x}")
    if not 0.0 < lo < hi <= 1.0:
        raise FlipLabError(f"the search bracket needs 0 < lo < hi <= 1, got {lo:g}, {hi:g}")
    if not resolution > 0.0:
        raise FlipLabError(f"resolution must be > 0, got {resolution}")
    if not s.trial_cost >= 0.0:
        raise FlipLabError(f"trial_cost must be >= 0, got {s.trial_cost}")
    min_trials = min(s.min_trials, s.max_trials)  # --max-trials below the default start
    SequentialRule(1, s.confidence, s.ci, min_trials, s.max_trials, s.first_samples)
    spec = make_spec(model, SweepSettings(
        codecs=s.codec, channel=s.channel, rates=f"{hi!r}", trials=s.max_trials, data=s.data,
        seed=s.seed, granularity=s.granularity, backend=s.backend))
    log = None
    if results is not None:
        header = {"format": PROBES_FORMAT, "model_sha256": spec.model_sha256,
                  "settings": json.loads(json.dumps(asdict(s), default=str))}
        log = ProbeLog(results, header, key=lambda row: float(row["rate"]))
    reference, right = reference_run(spec)
    a = reference["accuracy"]
    threshold = x * a
    job = CampaignJob(spec, np.packbits(right).tobytes())
    source = _TrialSource(spec, job, np.asarray(right, bool))
    n = source.n
    rule = SequentialRule(n, s.confidence, s.ci, min_trials, s.max_trials,
                          s.first_samples and min(s.first_samples, n), s.trial_cost)
    lo0, hi0 = lo, hi
    probes: list[Probe] = []

    def probe(rate: float) -> Probe:
        row = log.rows.get(rate) if log is not None else None
        if row is not None:
            p = Probe(**{k: row[k] for k in Probe.__dataclass_fields__})
        else:
            d = decide(lambda t, start, stop: source.count(t, rate, start, stop), threshold,
                       rule)
            e = d.estimate
            p = Probe(rate, d.accuracies, e.mean, e.low, e.high, d.verdict, e.trials,
                      e.samples, e.between, e.within, d.looks)
            if log is not None:
                log.record(asdict(p))
        probes.append(p)
        bar.update(1)
        bar.set_postfix_str(f"p={rate:.3g} mean={p.mean:.4f} T={p.trials} n={p.samples}")
        return p

    steps = 2 + math.ceil(math.log2(math.log(hi / lo) / math.log1p(resolution)) + 1)
    with tqdm(total=steps, desc="robustness", unit="probe", disable=not progress) as bar:
        top = probe(hi)
        if top.mean >= threshold:
            status, r = "above_bracket", hi
        else:
            bottom = probe(lo)
            if bottom.mean < threshold:
                status, r = "below_bracket", 0.0
            else:
                status = "bracketed"
                while hi / lo > 1 + resolution:
                    mid = math.sqrt(lo * hi)
                    if probe(mid).mean >= threshold:
                        lo = mid
                    else:
                        hi = mid
                r = lo
        bar.total = len(probes)
        bar.refresh()
    resolved = [p for p in probes if p.verdict != "unresolved"]
    passing = [p.rate for p in resolved if p.mean >= threshold]
    failing = [p.rate for p in resolved if p.mean < threshold]
    ci_high = min(failing) if failing else (math.inf if status == "above_bracket" else hi0)
    below = [p for p in passing if p < ci_high]
    ci_low = max(below) if below else (lo0 if status == "bracketed" else 0.0)
    if status == "bracketed":
        ci_low, ci_high = min(ci_low, r), max(ci_high, hi)
    return RobustnessResult(
        r=r, ci_low=ci_low, ci_high=ci_high, inferences=n + source.inferences, x=x, ci=s.ci,
        threshold=threshold, reference_accuracy=a, codec=spec.codecs[0], channel=spec.channel,
        lo=lo, hi=hi, resolution=resolution, status=status,
        unresolved=sum(p.verdict == "unresolved" for p in probes), variants=source.variants,
        samples=n, seed=s.seed, confidence=s.confidence, looks=rule.looks(),
        look_level=rule.level, reused=source.reused, probes=probes)
