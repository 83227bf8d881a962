"""``host robustness``: R(x) of one codec by bisection on log p, without a full grid.

Seed 000 defines R(x) as the largest raw bit error rate p whose mean accuracy over distorted
models is ≥ x·A (A: the undistorted model's accuracy on the same samples). The search keeps a
bracket [lo, hi] with mean(lo) ≥ x·A > mean(hi) and probes its geometric middle. At a probe p,
trials 0, 1, 2, ... are added (each the nested pattern of (seed, trial) read at p: the same
bits as trial t of a ``host sweep`` with the same seed) until the Student-t confidence interval
of the mean accuracy (``host.metrics.mean_ci``) is narrower than ±ci or lies wholly on one side
of x·A, or ``max_trials`` is reached. The search stops when hi/lo ≤ 1 + resolution.

Each probe ends with a verdict: ``above`` / ``below`` (the whole interval lies above / below
x·A), ``within`` (the interval is narrower than ±ci and contains x·A: decided by the mean, at
the stated accuracy tolerance) or ``unresolved`` (``max_trials`` reached first: decided by the
mean for the search, not counted in the interval).

Reported: ``r`` = lo, the largest probed rate that passes (the paper's definition restricted to
the probed rates; the true R(x) lies in [lo, hi) up to the per-probe uncertainty), and the
interval [ci_low, ci_high]: ci_low = the largest probe that passes as ``above`` or ``within``,
ci_high = the smallest probe that fails as ``below`` or ``within`` (R(x) lies between them at
the stated confidence, up to the ±ci accuracy tolerance); unresolved probes widen it, a hint to
raise ``max_trials``. ``inferences`` counts sample inferences (variants × samples, the reference
pass included).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from tqdm import tqdm

from host.campaign.grid import CampaignSpec, sweep_channel
from host.campaign.sweep import SweepSettings, make_spec, reference_run
from host.campaign.worker import CampaignJob, context_for
from host.data import DataSpec
from host.decode import IncrementalDecoder
from host.errors import FlipLabError
from host.executors import DEFAULT as DEFAULT_BACKEND
from host.inject import error_pattern
from host.metrics import mean_ci


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
    probes: list[Probe] = field(default_factory=list)

    def to_json(self) -> dict:
        d = asdict(self)
        d["probes"] = [asdict(p) for p in self.probes]
        return d


class _TrialSource:
    """Accuracy of trial (seed, t) at any rate: the trial's nested pattern read at that rate,
    through the campaign's variant path (host.campaign.worker).

    The pattern is drawn up to the probed rate only (it is the same bits whatever its
    ``rate_max``, docs/error-models.md), at a cost ~ 2·n·rate, small beside an inference.
    """

    def __init__(self, spec: CampaignSpec, job: CampaignJob) -> None:
        self.ctx = context_for(job)
        self.spec = spec
        self.stored = self.ctx.stored(spec.codecs[0])
        self.channel = sweep_channel(spec.channel)
        self.variants = 0

    def accuracy(self, trial: int, rate: float) -> float:
        pattern = error_pattern(self.stored.image, self.channel, seed=self.spec.seed,
                                trial=trial, rate_max=rate)
        variant = IncrementalDecoder(self.stored.clean).flip(pattern.at(rate))
        self.variants += 1
        return self.ctx.evaluate(self.stored.executor, variant).accuracy


@dataclass(frozen=True)
class RobustnessSettings:
    """What ``host robustness`` searches, and how precisely.

    Attributes:
        codec: the codec whose R(x) is sought.
        channel: the channel family (``bsc``, ``asym:P01,P10``, ...); its rate is searched.
        x: criterion in (0, 1]: mean accuracy >= x·A.
        ci: half-width of the mean-accuracy interval to reach at a probe (accuracy
            fraction, e.g. 0.005 = ±0.5 points).
        data: the labelled samples.
        max_trials, min_trials: trials per probe, 2 <= min_trials <= max_trials.
        seed: campaign seed.
        lo, hi: the search bracket of rates, 0 < lo < hi <= 1.
        resolution: stop when hi/lo <= 1 + resolution (> 0).
        confidence: coverage of each probe's interval.
        granularity: quantisation range per model, tensor or channel.
        backend: the executor (host.executors).
    """

    codec: str = "parity8"
    channel: str = "bsc"
    x: float = 0.95
    ci: float = 0.005
    data: DataSpec = field(default_factory=DataSpec)
    max_trials: int = 200
    min_trials: int = 3
    seed: int = 0
    lo: float = 1e-7
    hi: float = 0.5
    resolution: float = 0.1
    confidence: float = 0.95
    granularity: str = "model"
    backend: str = DEFAULT_BACKEND


def find_robustness(model: str, settings: RobustnessSettings = RobustnessSettings(), *,
                    progress: bool = True) -> RobustnessResult:
    """R(x) of ``settings.codec`` on ``model`` by bisection on log p (see the module
    docstring)."""
    s = settings
    x, ci, lo, hi, resolution = s.x, s.ci, s.lo, s.hi, s.resolution
    min_trials, max_trials, confidence = s.min_trials, s.max_trials, s.confidence
    if not 0.0 < x <= 1.0:
        raise FlipLabError(f"x must be in (0, 1], got {x}")
    if not ci > 0.0:
        raise FlipLabError(f"ci must be > 0 (an accuracy half-width), got {ci}")
    if min_trials < 2 or max_trials < min_trials:
        raise FlipLabError(f"need 2 <= min_trials <= max_trials, got {min_trials}, {max_trials}")
    if not 0.0 < lo < hi <= 1.0:
        raise FlipLabError(f"the search bracket needs 0 < lo < hi <= 1, got {lo:g}, {hi:g}")
    if not resolution > 0.0:
        raise FlipLabError(f"resolution must be > 0, got {resolution}")
    spec = make_spec(model, SweepSettings(
        codecs=s.codec, channel=s.channel, rates=f"{hi!r}", trials=max_trials, data=s.data,
        seed=s.seed, granularity=s.granularity, backend=s.backend))
    reference, right = reference_run(spec)
    a = reference["accuracy"]
    threshold = x * a
    job = CampaignJob(spec, np.packbits(right).tobytes())
    lo0, hi0 = lo, hi
    source = _TrialSource(spec, job)
    probes: list[Probe] = []

    def probe(rate: float) -> Probe:
        accs: list[float] = []
        while True:
            accs.append(source.accuracy(len(accs), rate))
            if len(accs) < min_trials:
                continue
            mean, low, high = mean_ci(accs, confidence)
            if low >= threshold:
                verdict = "above"
            elif high < threshold:
                verdict = "below"
            elif (high - low) / 2 <= ci:
                verdict = "within"
            else:
                verdict = "unresolved"
            if verdict != "unresolved" or len(accs) >= max_trials:
                p = Probe(rate, accs, mean, low, high, verdict)
                probes.append(p)
                bar.update(1)
                bar.set_postfix_str(f"p={rate:.3g} mean={mean:.4f} n={len(accs)}")
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
    n = len(source.ctx.y)
    return RobustnessResult(
        r=r, ci_low=ci_low, ci_high=ci_high, inferences=(source.variants + 1) * n, x=x, ci=ci,
        threshold=threshold, reference_accuracy=a, codec=spec.codecs[0], channel=spec.channel,
        lo=lo, hi=hi, resolution=resolution, status=status,
        unresolved=sum(p.verdict == "unresolved" for p in probes), variants=source.variants,
        samples=n, seed=s.seed, probes=probes)
