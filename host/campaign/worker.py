"""One unit of a campaign: (codec, scope, trial) walking all rates, in any process.

A worker process (the sweep's own, a local pool's, a Dask worker's) builds a
:class:`CampaignContext` once per campaign: the model, the data, one image per codec, the
clean decoded weights, the onnxruntime executors and, for per-layer scopes, the graph cut at
the layer (host.campaign.split) with a cache of the prefix activations. :func:`run_unit` then
evaluates every rate of one trial:

1. draw the trial's nested pattern once, up to the largest rate
   (``channel.pattern(payload, regions, seed=S, trial=T)``: the same bits as
   ``host inject --seed S --trial T`` with the scope's ``--tensors``/``--bits``);
2. walk the rates upward, flipping only the new bits (``pattern.between``) and re-decoding
   only the tensors they touch (a table gather per tensor);
3. run each variant: the whole graph for the ``model`` and ``bits:`` scopes (one onnxruntime
   session per variant with the weights as constant initializers), the suffix graph on the
   cached prefix activations for a ``layer:`` scope.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from host.campaign.grid import CampaignSpec, Unit, scope_regions, scope_tensors, sweep_channel
from host.campaign.split import GraphSplit, split_at_weights
from host.channels import flip_bits
from host.data import load_dataset
from host.decode import decode_tensor
from host.errors import FlipLabError
from host.export import CodecPlan, build_image, file_sha256
from host.image import Image
from host.model import WeightSet, load_model
from host.run import OnnxExecutor

#: samples per onnxruntime run (as host.run.OnnxExecutor.logits)
BATCH = 8192
#: default memory budget of the prefix-activation cache, per process (bytes)
PREFIX_CACHE_BYTES = 512 << 20


@dataclass(frozen=True)
class CampaignJob:
    """What a worker needs besides the unit: the spec and how to run.

    Attributes:
        spec: the campaign.
        reference_correct: ``np.packbits`` of the mask of samples the original model
            classifies correctly (for the ``failures`` column).
        threads: onnxruntime intra-op threads per session (None: host.run's default).
        reuse_prefix: compute the part of the graph before a layer scope's corrupted weights
            once per batch (True) or run the whole graph per variant (False, for benchmarks).
        prefix_cache_bytes: per-process budget for cached prefix activations.
    """

    spec: CampaignSpec
    reference_correct: bytes
    threads: int | None = None
    reuse_prefix: bool = True
    prefix_cache_bytes: int = PREFIX_CACHE_BYTES


def model_identity(path: str) -> str:
    """sha256 of a model file (what results and campaign.json record)."""
    return file_sha256(path)


def bits_per_weight(image: Image) -> float:
    """Stored bits per weight of an image (codes and check bits, no word padding)."""
    count = sum(t.count for t in image.tensors)
    return sum(t.stored_bits for t in image.tensors) / count if count else 0.0


@dataclass(frozen=True)
class StoredModel:
    """One codec's clean image and what decoding it gives (built once per process).

    Attributes:
        image: the clean memory image.
        weights: clean decoded weights {tensor name: array}.
        nulled, corrected: per tensor, weights nulled and bits corrected in the clean image.
        offsets: each tensor's first payload bit (int64, ascending), to find the tensors a
            set of flipped bits falls in.
    """

    image: Image
    weights: dict[str, np.ndarray]
    nulled: dict[str, int]
    corrected: dict[str, int]
    offsets: np.ndarray

    def variant(self, noisy: Image, flipped: np.ndarray, weights: dict[str, np.ndarray],
                nulled: dict[str, int], corrected: dict[str, int]) -> None:
        """Re-decode, in place of their entries, the tensors the ``flipped`` bits fall in."""
        for i in np.unique(np.searchsorted(self.offsets, flipped, side="right") - 1):
            entry = self.image.tensors[int(i)]
            weights[entry.name], nulled[entry.name], corrected[entry.name] = \
                decode_tensor(noisy, entry)


@dataclass
class _Variant:
    rate: float
    weights: dict[str, np.ndarray]
    nulled: int
    corrected: int
    flips: int
    seconds: float = 0.0
    predictions: list = field(default_factory=list)


class CampaignContext:
    """Per-process state of one campaign (built once, reused by every unit it runs)."""

    def __init__(self, job: CampaignJob) -> None:
        spec = job.spec
        if model_identity(spec.model) != spec.model_sha256:
            raise FlipLabError(f"model {spec.model} on this worker differs from the campaign's "
                               f"(sha256 {spec.model_sha256[:12]}...)")
        self.job, self.spec = job, spec
        self.ws: WeightSet = load_model(spec.model)
        self.x, self.y = load_dataset(spec.data, input_shape=self.ws.input_shape,
                                      normalize=spec.normalize, samples=spec.samples)
        mask = np.unpackbits(np.frombuffer(job.reference_correct, np.uint8), count=len(self.y))
        self.reference_correct = mask.astype(bool)
        self.channel = sweep_channel(spec.channel)
        self.specs = {t.name: (tuple(t.values.shape), t.values.dtype) for t in self.ws.tensors}
        self.executor = OnnxExecutor(self.ws.graph, self.specs, input_name=self.ws.input_name,
                                     output_name=self.ws.output_name, threads=job.threads)
        self._images: dict[str, StoredModel] = {}
        self._splits: dict[str, tuple[GraphSplit | None, OnnxExecutor | None,
                                      OnnxExecutor | None]] = {}
        self._prefix_cache: dict[tuple[str, str, int], list[np.ndarray]] = {}
        self._prefix_bytes = 0
        self._lock = threading.Lock()

    # -- per codec ------------------------------------------------------------------------
    def stored(self, codec: str) -> StoredModel:
        """The model stored with ``codec`` (the campaign's range and overrides)."""
        with self._lock:
            if codec not in self._images:
                plan = CodecPlan(codec, self.spec.overrides, self.spec.granularity)
                image, _ = build_image(self.ws, plan)
                weights, nulled, corrected = {}, {}, {}
                for e in image.tensors:
                    weights[e.name], nulled[e.name], corrected[e.name] = decode_tensor(image, e)
                offsets = np.array([e.bit_offset for e in image.tensors], dtype=np.int64)
                self._images[codec] = StoredModel(image, weights, nulled, corrected, offsets)
            return self._images[codec]

    # -- per layer scope ------------------------------------------------------------------
    def split(self, scope: str, corrupted: list[str]
              ) -> tuple[GraphSplit | None, OnnxExecutor | None, OnnxExecutor | None]:
        with self._lock:
            if scope not in self._splits:
                cut = split_at_weights(self.ws.graph, corrupted, input_name=self.ws.input_name,
                                       output_name=self.ws.output_name)
                pre = suf = None
                if cut is not None:
                    if cut.prefix is not None:
                        pre = OnnxExecutor(cut.prefix, {n: self.specs[n] for n in cut.prefix_weights},
                                           input_name=self.ws.input_name,
                                           output_name=cut.prefix_outputs[0],
                                           threads=self.job.threads)
                    suf = OnnxExecutor(cut.suffix, {n: self.specs[n] for n in cut.suffix_weights},
                                       input_name=cut.boundary[0],
                                       output_name=self.ws.output_name, threads=self.job.threads)
                self._splits[scope] = (cut, pre, suf)
            return self._splits[scope]

    def prefix_activations(self, codec: str, scope: str, cut: GraphSplit,
                           prefix: OnnxExecutor | None, start: int) -> dict[str, np.ndarray]:
        """Boundary tensors of samples ``[start, start + BATCH)`` (cached within the budget)."""
        xb = self.x[start:start + BATCH]
        feeds = {}
        if self.ws.input_name in cut.boundary:
            feeds[self.ws.input_name] = xb
        if prefix is None:
            return feeds
        key = (codec, scope, start)
        with self._lock:
            cached = self._prefix_cache.get(key)
        if cached is None:
            weights = self.stored(codec).weights
            session = prefix.session({n: weights[n] for n in cut.prefix_weights})
            cached = session.run(list(cut.prefix_outputs), {self.ws.input_name: xb})
            size = sum(a.nbytes for a in cached)
            with self._lock:
                if (key not in self._prefix_cache
                        and self._prefix_bytes + size <= self.job.prefix_cache_bytes):
                    self._prefix_cache[key] = cached
                    self._prefix_bytes += size
        feeds.update(zip(cut.prefix_outputs, cached))
        return feeds


_contexts: dict[str, CampaignContext] = {}
_contexts_lock = threading.Lock()


def _job_key(job: CampaignJob) -> str:
    return hashlib.sha256(repr((job.spec, job.reference_correct, job.threads, job.reuse_prefix,
                                job.prefix_cache_bytes)).encode()).hexdigest()


def context_for(job: CampaignJob) -> CampaignContext:
    """This process's context for ``job`` (built on first use)."""
    key = _job_key(job)
    with _contexts_lock:
        ctx = _contexts.get(key)
        if ctx is None:
            _contexts.clear()  # one campaign per process at a time
            ctx = _contexts[key] = CampaignContext(job)
        return ctx


def _walk(ctx: CampaignContext, unit: Unit) -> list[_Variant]:
    """Decoded weights of every variant of ``unit``: the clean one (trial 0) and each rate."""
    spec = ctx.spec
    stored = ctx.stored(unit.codec)
    image = stored.image
    variants: list[_Variant] = []
    if unit.trial == 0:
        variants.append(_Variant(0.0, dict(stored.weights), sum(stored.nulled.values()),
                                 sum(stored.corrected.values()), 0))
    t0 = time.perf_counter()
    regions = scope_regions(image, unit.scope)
    pattern = ctx.channel.pattern(image.payload, regions, seed=spec.seed, trial=unit.trial,
                                  rate_max=spec.rates[-1])
    noisy = image.payload.copy()
    noisy_image = image.with_payload(noisy)
    weights, nulled, corrected = dict(stored.weights), dict(stored.nulled), dict(stored.corrected)
    previous = 0.0
    shared = (time.perf_counter() - t0) / len(spec.rates)
    for rate in spec.rates:
        t0 = time.perf_counter()
        new = pattern.between(previous, rate)
        previous = rate
        flip_bits(noisy, new)
        stored.variant(noisy_image, new, weights, nulled, corrected)
        variants.append(_Variant(rate, dict(weights), sum(nulled.values()),
                                 sum(corrected.values()), pattern.count_at(rate),
                                 seconds=shared + time.perf_counter() - t0))
    return variants


def _run_whole(ctx: CampaignContext, variants: list[_Variant]) -> None:
    for v in variants:
        t0 = time.perf_counter()
        out = ctx.executor.logits(v.weights, ctx.x, batch_size=BATCH)
        v.predictions = [out.reshape(len(ctx.x), -1).argmax(axis=1)]
        v.seconds += time.perf_counter() - t0


def _run_suffix(ctx: CampaignContext, unit: Unit, variants: list[_Variant], cut: GraphSplit,
                prefix: OnnxExecutor | None, suffix: OnnxExecutor) -> None:
    """Per-layer scope: the prefix once per batch, then each variant's suffix on it."""
    sessions = []
    for v in variants:
        t0 = time.perf_counter()
        sessions.append(suffix.session({n: v.weights[n] for n in cut.suffix_weights}))
        v.seconds += time.perf_counter() - t0
    for start in range(0, len(ctx.x), BATCH):
        t0 = time.perf_counter()
        feeds = ctx.prefix_activations(unit.codec, unit.scope, cut, prefix, start)
        shared = (time.perf_counter() - t0) / len(variants)
        for v, session in zip(variants, sessions):
            t0 = time.perf_counter()
            out = session.run([ctx.ws.output_name], feeds)[0]
            v.predictions.append(out.reshape(len(out), -1).argmax(axis=1))
            v.seconds += shared + time.perf_counter() - t0


def run_unit(job: CampaignJob, unit: Unit) -> list[dict]:
    """The result rows of one unit (clean row first for trial 0, then one per rate)."""
    ctx = context_for(job)
    spec = ctx.spec
    variants = _walk(ctx, unit)
    cut = None
    if job.reuse_prefix and unit.scope.startswith("layer:"):
        image = ctx.stored(unit.codec).image
        cut, prefix, suffix = ctx.split(unit.scope, scope_tensors(image, unit.scope))
    if cut is not None:
        _run_suffix(ctx, unit, variants, cut, prefix, suffix)
    else:
        _run_whole(ctx, variants)
    bpw = bits_per_weight(ctx.stored(unit.codec).image)
    rows = []
    for v in variants:
        predictions = np.concatenate(v.predictions)
        right = predictions == ctx.y
        rows.append({
            "model": Path(spec.model).name,
            "model_sha256": spec.model_sha256, "codec": unit.codec, "bits_per_weight": bpw,
            "channel": spec.channel, "rate": v.rate, "trial": unit.trial, "scope": unit.scope,
            "seed": spec.seed, "samples": int(len(ctx.y)), "correct": int(right.sum()),
            "accuracy": float(right.mean()) if len(ctx.y) else float("nan"),
            "failures": int(np.count_nonzero(ctx.reference_correct & ~right)),
            "flips": int(v.flips), "nulled": int(v.nulled), "corrected": int(v.corrected),
            "elapsed_s": round(v.seconds, 6)})
    return rows
