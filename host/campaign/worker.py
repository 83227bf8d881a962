"""One unit of a campaign: (codec, scope, trial) walking all rates, in any process.

A worker process (the sweep's own, a local pool's, a Dask worker's) builds a
:class:`CampaignContext` once per campaign: the model, the data, one stored model per codec
(its clean image, an :class:`~host.decode.IncrementalDecoder` over it and the campaign's
executor for it) and, for per-layer scopes on onnxruntime, the graph cut at the layer
(host.campaign.split) with a cache of the prefix activations (docs/decisions.md#11). :func:`run_unit` then evaluates
every rate of one trial along the same path as ``host eval``:

1. the trial's nested error pattern, once, up to the largest rate (docs/decisions.md#9)
   (:func:`host.inject.error_pattern` with the scope's tensors / bit positions: the same bits
   as ``host inject --seed S --trial T``);
2. walking the rates upward, the decoder flips only the new bits and re-decodes only the
   tensors they touch;
3. the executor runs each variant (for a ``layer:`` scope on onnxruntime: the suffix graph on
   the cached prefix activations), and :class:`~host.evaluation.Evaluation` scores it.
"""

from __future__ import annotations

import ctypes
import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from host.campaign.grid import CampaignSpec, Unit, scope_selection, scope_tensors, sweep_channel
from host.campaign.split import GraphSplit, split_at_weights
from host.channels import NestedPattern
from host.decode import DecodedWeights, IncrementalDecoder, decode_weights
from host.errors import FlipLabError
from host.evaluation import Evaluation, run_variant, top1
from host.executors import DEFAULT, get_executor
from host.executors.base import Executor
from host.executors.ort import OnnxExecutor
from host.export import CodecPlan, build_accel_image, build_image, file_sha256
from host.image import Image
from host.inject import error_pattern
from host.model import WeightSet, load_model

#: samples per onnxruntime run (as host.executors.ort.OnnxExecutor.logits)
BATCH = 8192
#: default memory budget of the prefix-activation cache, per process (bytes)
PREFIX_CACHE_BYTES = 512 << 20
#: memory budget of one batch's activation masks (bytes)
ACT_MASK_BYTES = 64 << 20


@dataclass(frozen=True)
class CampaignJob:
    """What a worker needs besides the unit: the spec and how to run.

    Attributes:
        spec: the campaign.
        reference_correct: ``np.packbits`` of the mask of samples the original model
            classifies correctly (for the ``failures`` column).
        threads: onnxruntime intra-op threads per session (None: the executor's default).
        reuse_prefix: compute the part of the graph before a layer scope's corrupted weights
            once per batch (True) or run the whole graph per variant (False, for benchmarks).
        prefix_cache_bytes: per-process budget for cached prefix activations.
        low_memory: hold one copy of the weights per process (``host sweep --low-memory``):
            every codec's image is stored before the float weights are dropped, each walk
            changes the clean image and weights in place and puts them back
            (:class:`~host.decode.IncrementalDecoder` ``in_place``), one walk at a time, and
            onnxruntime reads the weights as inputs (no session copy, no pre-packing: its
            sums may differ in the last bits from a pre-packed session's; the reference pass
            runs the same way). Weight faults only.
    """

    spec: CampaignSpec
    reference_correct: bytes
    threads: int | None = None
    reuse_prefix: bool = True
    prefix_cache_bytes: int = PREFIX_CACHE_BYTES
    low_memory: bool = False


def check_low_memory(target: str) -> None:
    """``--low-memory`` runs weight faults only: activation faults keep each rate's variant
    (a session each) for every batch of samples."""
    if target != "weights":
        raise FlipLabError("--low-memory runs weight faults only (activation faults keep "
                           "every rate's variant for each batch)")


def return_freed_memory() -> None:
    """Have the C library give large freed blocks back to the system (low-memory campaigns).

    glibc serves blocks below its mmap threshold from the heap, and raises that threshold (up
    to 32 MiB) whenever a larger block is freed; after that, numpy temporaries of a few MB stay
    resident once freed, and the heap grows by the largest set of them alive at once (measured
    here: 150 MB on a 100 M-parameter sweep). Fixing the threshold at 1 MiB (``mallopt``,
    ``M_MMAP_THRESHOLD``) maps every larger block on its own and unmaps it when it is freed.
    Nothing happens where the C library is not glibc.
    """
    try:
        ctypes.CDLL("libc.so.6").mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD = 1 MiB
    except (OSError, AttributeError):
        pass


def model_identity(path: str) -> str:
    """sha256 of a model file (what results and campaign.json record)."""
    return file_sha256(path)


def bits_per_weight(image: Image) -> float:
    """Stored bits per weight of an image (codes and check bits, no word padding)."""
    count = sum(t.count for t in image.tensors)
    return sum(t.stored_bits for t in image.tensors) / count if count else 0.0


def store(ws: WeightSet, spec: CampaignSpec, codec: str) -> Image:
    """The clean image of the model stored with ``codec`` (the campaign's range, overrides,
    and the accelerator's layer program when the backend runs one)."""
    plan = CodecPlan(codec, spec.overrides, spec.granularity)
    build = build_image if spec.backend == DEFAULT else build_accel_image
    return build(ws, plan, measure=False)[0]


@dataclass(frozen=True)
class StoredModel:
    """One codec's clean image, what it decodes to, and the campaign's executor for it."""

    image: Image
    clean: DecodedWeights
    executor: Executor


@dataclass
class _Variant:
    rate: float
    decoded: DecodedWeights
    flips: int
    seconds: float = 0.0


class CampaignContext:
    """Per-process state of one campaign (built once, reused by every unit it runs)."""

    def __init__(self, job: CampaignJob) -> None:
        spec = job.spec
        if model_identity(spec.model) != spec.model_sha256:
            raise FlipLabError(f"model {spec.model} on this worker differs from the campaign's "
                               f"(sha256 {spec.model_sha256[:12]}...)")
        self.job, self.spec = job, spec
        self.ws: WeightSet = load_model(spec.model)
        self.specs = {t.name: (tuple(t.values.shape), t.values.dtype) for t in self.ws.tensors}
        self.x, self.y = spec.dataset.load(self.ws.input_shape, input_dtype=self.ws.input_dtype)
        mask = np.unpackbits(np.frombuffer(job.reference_correct, np.uint8), count=len(self.y))
        self.reference_correct = mask.astype(bool)
        self.channel = sweep_channel(spec.channel)
        self._executor = get_executor(spec.backend)
        self._stored: dict[str, StoredModel] = {}
        self._splits: dict[str, tuple[GraphSplit | None, OnnxExecutor | None,
                                      OnnxExecutor | None]] = {}
        self._prefix_cache: dict[tuple[str, str, int], list[np.ndarray]] = {}
        self._prefix_bytes = 0
        self._lock = threading.Lock()
        self._activations: tuple[list, OnnxExecutor] | None = None
        self._quantised_right: dict[str, np.ndarray] = {}
        self._walking = threading.Lock()  # low memory: one in-place walk at a time
        self._images: dict[str, Image] = {}
        if job.low_memory:
            check_low_memory(spec.target)
            return_freed_memory()
        if spec.target == "weights":  # every image now: the float weights can go
            self._images = {codec: store(self.ws, spec, codec) for codec in spec.codecs}
            self.ws = replace(self.ws, tensors=[])

    # -- activation faults (host.activations) ---------------------------------------------
    def activations(self) -> tuple[list, OnnxExecutor]:
        """The fault points (ranges profiled on the campaign's samples with the original
        weights) and an executor of the graph with a mask input at each of them."""
        from host.activations.quantize import insert_fault_points, profile_formats, select_layers
        from host.model import with_weights_as_initializers

        with self._lock:
            if self._activations is None:
                ws, spec = self.ws, self.spec
                full = with_weights_as_initializers(ws.graph, {t.name: t.values
                                                               for t in ws.tensors})
                formats = profile_formats(full, self.x, select_layers(full, spec.act_layers),
                                          bits=spec.act_bits, signed=spec.act_signed,
                                          threads=self.job.threads)
                executor = OnnxExecutor(insert_fault_points(ws.graph, formats), self.specs,
                                        input_name=ws.input_name, output_name=ws.output_name,
                                        threads=self.job.threads)
                self._activations = (formats, executor)
            return self._activations

    def quantised_reference(self, codec: str) -> np.ndarray:
        """Activation faults' reference (seed 002's failure): the mask of samples the
        fault-free quantised network (``codec``'s clean weights, every fault point in its
        fixed-point format, no flips) classifies correctly."""
        from host.activations.faults import zero_masks

        if codec not in self._quantised_right:
            formats, executor = self.activations()
            session = executor.session(self.stored(codec).clean.weights)
            [scores], _, _ = _activation_scores(
                self, [session], lambda k, start, stop: (zero_masks(formats, stop - start), 0))
            with self._lock:
                self._quantised_right[codec] = top1(scores) == self.y
        return self._quantised_right[codec]

    # -- per codec ------------------------------------------------------------------------
    def stored(self, codec: str) -> StoredModel:
        """The model stored with ``codec``, decoded once (low memory: for one walk at a
        time, :func:`_variants` releases it)."""
        with self._lock:
            if codec not in self._stored:
                if codec in self._images:
                    image = self._images[codec]
                elif self.spec.target == "weights":  # the float weights are gone
                    raise FlipLabError(f"codec {codec!r} is not one of the campaign's")
                else:
                    image = store(self.ws, self.spec, codec)
                self._stored[codec] = self._decoded(image)
            return self._stored[codec]

    def image(self, codec: str) -> Image:
        """The model's clean image with ``codec`` (not decoded, in a low-memory campaign)."""
        return self._images[codec] if codec in self._images else self.stored(codec).image

    def release(self, codec: str) -> None:
        """Drop ``codec``'s decoded weights (low memory: after each walk)."""
        with self._lock:
            self._stored.pop(codec, None)

    def _decoded(self, image: Image) -> StoredModel:
        options: dict[str, Any] = ({"threads": self.job.threads}
                                   if "threads" in self._executor.options else {})
        if self.job.low_memory and "strategy" in self._executor.options:
            options["strategy"] = "inputs"
        return StoredModel(image, decode_weights(image), self._executor.for_image(image, **options))

    def evaluate(self, executor: Executor, variant: DecodedWeights,
                 flips: int | None = None) -> Evaluation:
        """One variant on the campaign's samples (the path of ``host eval``)."""
        return run_variant(executor, variant, self.x, self.y, flips=flips)

    # -- per layer scope (onnxruntime) ----------------------------------------------------
    def split(self, scope: str, corrupted: list[str]
              ) -> tuple[GraphSplit | None, OnnxExecutor | None, OnnxExecutor | None]:
        with self._lock:
            if scope not in self._splits:
                ws, specs = self.ws, self.specs
                cut = split_at_weights(ws.graph, corrupted, input_name=ws.input_name,
                                       output_name=ws.output_name)
                pre = suf = None
                if cut is not None:
                    if cut.prefix is not None:
                        pre = OnnxExecutor(cut.prefix, {n: specs[n] for n in cut.prefix_weights},
                                           input_name=ws.input_name,
                                           output_name=cut.prefix_outputs[0],
                                           threads=self.job.threads)
                    suf = OnnxExecutor(cut.suffix, {n: specs[n] for n in cut.suffix_weights},
                                       input_name=cut.boundary[0], output_name=ws.output_name,
                                       threads=self.job.threads)
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
            weights = self.stored(codec).clean.weights
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
                                job.prefix_cache_bytes, job.low_memory)).encode()).hexdigest()


def context_for(job: CampaignJob) -> CampaignContext:
    """This process's context for ``job`` (built on first use)."""
    key = _job_key(job)
    with _contexts_lock:
        ctx = _contexts.get(key)
        if ctx is None:
            _contexts.clear()  # one campaign per process at a time
            ctx = _contexts[key] = CampaignContext(job)
        return ctx


def _variants(ctx: CampaignContext, unit: Unit) -> Iterator[_Variant]:
    """Every variant of ``unit``, as it is made: the clean one (trial 0), then each rate.

    Holds no variant while it makes the next: a caller that drops each variant before asking
    for the next keeps one variant's weights alive, however many rates the campaign has. In a
    low-memory campaign the walk is its process's only one: it draws the error pattern before
    the clean weights are decoded (their memory peaks do not meet), changes those weights in
    place, and drops them at its end (the next unit decodes its codec again).
    """
    if not ctx.job.low_memory:  # this walk's own decoder: units may run in threads
        pattern, shared = _pattern(ctx, unit)
        stored = ctx.stored(unit.codec)
        yield from _walk(ctx, unit, stored, IncrementalDecoder(stored.clean), pattern, shared)
        return
    with ctx._walking:  # the clean image and weights are this walk's until it resets them
        pattern, shared = _pattern(ctx, unit)
        stored = ctx.stored(unit.codec)
        decoder = IncrementalDecoder(stored.clean, in_place=True)
        try:
            yield from _walk(ctx, unit, stored, decoder, pattern, shared)
        finally:
            decoder.reset()
            ctx.release(unit.codec)


def _pattern(ctx: CampaignContext, unit: Unit) -> tuple[NestedPattern, float]:
    """The unit's nested error pattern and its share of seconds per rate."""
    spec = ctx.spec
    t0 = time.perf_counter()
    pattern = error_pattern(ctx.image(unit.codec), ctx.channel, seed=spec.seed,
                            trial=unit.trial, rate_max=spec.rates[-1],
                            **scope_selection(unit.scope))
    return pattern, (time.perf_counter() - t0) / len(spec.rates)


def _walk(ctx: CampaignContext, unit: Unit, stored: StoredModel, decoder: IncrementalDecoder,
          pattern: NestedPattern, shared: float) -> Iterator[_Variant]:
    if unit.trial == 0:
        yield _Variant(0.0, stored.clean, 0)
    previous = 0.0
    for rate in ctx.spec.rates:
        t0 = time.perf_counter()
        new_flips = pattern.between(previous, rate)
        previous = rate
        yield _Variant(rate, decoder.flip(new_flips), pattern.count_at(rate),
                       seconds=shared + time.perf_counter() - t0)


@dataclass(frozen=True)
class _Scored:
    """One variant's result, without its weights (so that it can outlive them)."""

    rate: float
    flips: int
    seconds: float
    evaluation: Evaluation
    act_flips: int = 0  # activation bits flipped (target activations or both)


def _run_whole(ctx: CampaignContext, unit: Unit) -> Iterator[_Scored]:
    for v in _variants(ctx, unit):
        t0 = time.perf_counter()
        ev = ctx.evaluate(ctx.stored(unit.codec).executor, v.decoded, v.flips)
        scored = _Scored(v.rate, v.flips, v.seconds + time.perf_counter() - t0, ev)
        del v  # one variant alive at a time: drop its weights before the next is decoded
        yield scored


def _run_suffix(ctx: CampaignContext, unit: Unit, cut: GraphSplit, prefix: OnnxExecutor | None,
                suffix: OnnxExecutor) -> Iterator[_Scored]:
    """Per-layer scope: each variant's suffix on the prefix activations.

    Variant by variant, so one variant is alive at a time: the prefix activations of each
    batch are computed once and kept in the context's cache (within its budget; beyond it they
    are computed again for each variant, which costs what running the whole graph costs).
    """
    for v in _variants(ctx, unit):
        t0 = time.perf_counter()
        session = suffix.session({n: v.decoded.weights[n] for n in cut.suffix_weights})
        out = [session.run([ctx.ws.output_name],
                           ctx.prefix_activations(unit.codec, unit.scope, cut, prefix, start))[0]
               for start in range(0, len(ctx.x), BATCH)]
        scores = np.concatenate(out) if out else np.zeros((0, 0), np.float32)
        ev = Evaluation.of(scores, ctx.y, v.decoded, flips=v.flips, backend=ctx.spec.backend)
        scored = _Scored(v.rate, v.flips, v.seconds + time.perf_counter() - t0, ev)
        del v, session  # one variant alive at a time
        yield scored


def _clean_variants(ctx: CampaignContext, unit: Unit) -> Iterator[_Variant]:
    """The variants of an activations-only unit: the stored weights, clean, at every rate."""
    clean = ctx.stored(unit.codec).clean
    if unit.trial == 0:
        yield _Variant(0.0, clean, 0)
    for rate in ctx.spec.rates:
        yield _Variant(rate, clean, 0)


def _run_activations(ctx: CampaignContext, unit: Unit) -> Iterator[_Scored]:
    """Activation faults (with weight faults for target ``both``): per batch of samples, each
    rate's masks (host.activations.faults) go with that rate's weights through one graph."""
    from host.activations.faults import ActivationErrors, zero_masks

    formats, executor = ctx.activations()
    spec = ctx.spec
    variants = list(_variants(ctx, unit) if spec.target == "both" else _clean_variants(ctx, unit))
    sessions: list = []
    for v in variants:
        t0 = time.perf_counter()
        same = sessions and spec.target != "both"
        sessions.append(sessions[0] if same else executor.session(v.decoded.weights))
        v.seconds += time.perf_counter() - t0
    errors = ActivationErrors(formats, seed=spec.seed, trial=unit.trial,
                              rate_max=spec.rates[-1])

    def masks(k: int, start: int, stop: int) -> tuple[dict[str, np.ndarray], int]:
        if variants[k].rate > 0:
            return errors.masks(start, stop, variants[k].rate)
        return zero_masks(formats, stop - start), 0

    scores, act_flips, seconds = _activation_scores(ctx, sessions, masks)
    for k, v in enumerate(variants):
        ev = Evaluation.of(scores[k], ctx.y, v.decoded, flips=v.flips, backend=spec.backend)
        yield _Scored(v.rate, v.flips, v.seconds + seconds[k], ev, act_flips[k])


def _activation_scores(ctx: CampaignContext, sessions: list,
                       masks: Callable[[int, int, int], tuple[dict[str, np.ndarray], int]]
                       ) -> tuple[list[np.ndarray], list[int], list[float]]:
    """Each session of the activation-fault graph over the campaign's samples, batch by batch
    (sized to the masks' memory budget; a fixed-batch model's last batch padded), session
    ``k`` fed ``masks(k, start, stop)`` = (masks, bits flipped). Returns per session its
    scores, the activation bits flipped and the seconds spent."""
    formats, executor = ctx.activations()
    per_sample = sum(f.neurons for f in formats)
    batch = executor.batch or max(1, min(BATCH, ACT_MASK_BYTES // max(1, per_sample)))
    logits: list[list[np.ndarray]] = [[] for _ in sessions]
    flipped = [0] * len(sessions)
    seconds = [0.0] * len(sessions)
    n = len(ctx.x)
    for start in range(0, n, batch):
        stop = min(start + batch, n)
        xb = ctx.x[start:stop]
        pad = batch - len(xb) if executor.batch else 0
        if pad:
            xb = np.concatenate([xb, np.repeat(xb[-1:], pad, 0)])
        for k, session in enumerate(sessions):
            t0 = time.perf_counter()
            mk, flips = masks(k, start, stop)
            flipped[k] += flips
            if pad:
                mk = {name: np.concatenate([m, np.zeros((pad, *m.shape[1:]), m.dtype)])
                      for name, m in mk.items()}
            out = session.run([ctx.ws.output_name], {ctx.ws.input_name: xb, **mk})[0]
            logits[k].append(out[:stop - start])
            seconds[k] += time.perf_counter() - t0
    scores = [np.concatenate(part) if part else np.zeros((0, 0), np.float32) for part in logits]
    return scores, flipped, seconds


def run_unit(job: CampaignJob, unit: Unit) -> list[dict]:
    """The result rows of one unit (clean row first for trial 0, then one per rate)."""
    ctx = context_for(job)
    spec = ctx.spec
    image = ctx.image(unit.codec)
    cut = None
    if spec.target != "weights":
        results: Iterator[_Scored] = _run_activations(ctx, unit)
    else:
        if job.reuse_prefix and spec.backend == DEFAULT and unit.scope.startswith("layer:"):
            cut, prefix, suffix = ctx.split(unit.scope, scope_tensors(image, unit.scope))
        results = (_run_suffix(ctx, unit, cut, prefix, suffix) if cut is not None and suffix
                   else _run_whole(ctx, unit))
    bpw = bits_per_weight(image)
    # failures: right answers of the fault-free network turned wrong; with activation faults
    # that network is the quantised one (docs/activation-faults.md), else the float model
    reference = (ctx.reference_correct if spec.target == "weights"
                 else ctx.quantised_reference(unit.codec))
    rows = []
    for scored in results:
        ev = scored.evaluation
        rows.append({
            "model": Path(spec.model).name,
            "model_sha256": spec.model_sha256, "codec": unit.codec, "bits_per_weight": bpw,
            "channel": spec.channel, "rate": scored.rate, "trial": unit.trial, "scope": unit.scope,
            "seed": spec.seed, "samples": ev.samples, "correct": ev.correct,
            "accuracy": ev.accuracy, "failures": ev.failures(reference),
            "flips": int(scored.flips), "nulled": ev.total_nulled, "corrected": int(ev.corrected),
            "elapsed_s": round(scored.seconds, 6), "target": spec.target,
            "act_flips": int(scored.act_flips)})
    return rows
