"""``host sweep``: a grid campaign (codecs × scopes × rates × trials), resumable, on one
process, a local process pool or a Dask distributed cluster.

Every random choice derives from (campaign seed, codec, scope, trial) through the channel's
``SeedSequence([seed, trial])`` over the (codec, scope)'s eligible bits, so results are the
same whatever executes the units and in whatever order they finish (docs/campaigns.md).
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from host.campaign.grid import (
    TARGETS,
    CampaignSpec,
    Unit,
    check_codecs,
    parse_rates,
    parse_scopes,
    sweep_channel_spec,
)
from host.campaign.store import RESULTS, DamagedLine, ResultWriter, RunLock, open_run, prepare_folder
from host.campaign.worker import (
    CampaignJob,
    check_low_memory,
    context_for,
    model_identity,
    return_freed_memory,
    run_unit,
    store,
)
from host.data import DataSpec, check_labels
from host.data.recorded import choose_normalize, recorded_normalize
from host.errors import FlipLabError
from host.evaluation import top1
from host.executors import DEFAULT as DEFAULT_BACKEND
from host.executors import get_executor
from host.executors.ort import OnnxExecutor
from host.export import CodecPlan
from host.model import load_model
from host.models import resolve_model


class CampaignInterrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep: every finished unit is on disk; the message says how to resume."""


@dataclass
class SweepResult:
    """What ``run_sweep`` did.

    Attributes:
        out: the campaign folder; results: its ``results.jsonl``.
        units_total / units_run / units_skipped: units of the grid, run now, found finished.
        rows_written: rows appended now.
        reference: the original model's accuracy on the samples (``campaign.json``).
        summary: ``host.report.summary_table(out)`` (a DataFrame).
        damaged: the damaged lines of ``results.jsonl`` dropped on resuming (a torn last line).
    """

    out: Path
    results: Path
    units_total: int
    units_run: int
    units_skipped: int
    rows_written: int
    reference: dict
    summary: object = field(default=None, repr=False)
    damaged: list[DamagedLine] = field(default_factory=list)


@dataclass(frozen=True)
class SweepSettings:
    """A campaign as the user states it (``host sweep``'s options); :func:`make_spec` checks
    it and turns it into a :class:`CampaignSpec`.

    Attributes:
        codecs: ``"fixed8,parity8"`` or a list of codec specs.
        rates: ``"lo:hi:n"``, a comma list, or a sequence of rates in (0, 1].
        trials: trials per rate (M), >= 1.
        channel: the channel family whose rate is swept (``bsc``, ``asym:P01,P10``,
            ``stuck:F,S[,seed=D]``).
        scopes: ``model`` (default), ``layers``, ``layer:NAME``, ``bits:POSITIONS``.
        granularity: quantisation range per ``model``, ``tensor`` or ``channel``.
        overrides: ``PATTERN=CODEC`` texts or (pattern, codec) pairs.
        data: the labelled samples.
        seed: campaign seed, >= 0.
        backend: the executor (host.executors); ``reference`` and ``rtl`` store the
            accelerator's layer program with each image.
        target: ``weights`` (default), ``activations`` or ``both`` (docs/activation-faults.md).
        act_bits, act_signed, act_layers: the activations' format and which layer outputs.
    """

    codecs: str | Sequence[str]
    rates: str | Sequence[float]
    trials: int
    channel: str = "bsc"
    scopes: Sequence[str] | None = None
    granularity: str = "model"
    overrides: Sequence[str | tuple[str, str]] = ()
    data: DataSpec = field(default_factory=DataSpec)
    seed: int = 0
    backend: str = DEFAULT_BACKEND
    target: str = "weights"
    act_bits: int = 8
    act_signed: bool = True
    act_layers: str = "all"


def _check_target(s: SweepSettings, channel_spec: str, path: Path) -> None:
    """Activation faults (seed 002): BSC on the onnxruntime graph, layer outputs that exist."""
    if s.target not in TARGETS:
        raise FlipLabError(f"unknown target {s.target!r}; choose {', '.join(TARGETS)}")
    if s.target == "weights":
        return
    from host.activations.quantize import check_bits, select_layers
    from host.model.reading import read_onnx

    check_bits(s.act_bits)
    if channel_spec != "bsc":
        raise FlipLabError(f"--target {s.target}: activation faults take --channel bsc only "
                           f"(got {channel_spec!r})")
    if s.backend != DEFAULT_BACKEND:
        raise FlipLabError(f"--target {s.target} runs on the onnxruntime backend only "
                           f"(the fault points are ONNX nodes)")
    if s.target == "activations" and s.scopes and [x.strip() for x in s.scopes] != ["model"]:
        raise FlipLabError("--target activations corrupts no weights, so it takes no --scope "
                           "or --tensors (they select weights; use --target both)")
    select_layers(read_onnx(path), s.act_layers)


def make_spec(model: str | Path, settings: SweepSettings) -> CampaignSpec:
    """Validate the user's choices (cheap checks first) and build the :class:`CampaignSpec`."""
    s = settings
    get_executor(s.backend)
    codec_specs = check_codecs(s.codecs)
    channel_spec = sweep_channel_spec(s.channel)
    rate_list = parse_rates(s.rates) if isinstance(s.rates, str) else parse_rates(
        ",".join(repr(float(r)) for r in s.rates))
    trials, seed = s.trials, s.seed
    if isinstance(trials, bool) or not isinstance(trials, (int, np.integer)) or trials < 1:
        raise FlipLabError(f"trials must be an integer >= 1, got {trials!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise FlipLabError(f"seed must be an integer >= 0, got {seed!r}")
    pairs = tuple(CodecPlan.parse_override(o) if isinstance(o, str) else (o[0], o[1])
                  for o in s.overrides)
    CodecPlan(codec_specs[0], pairs, s.granularity)  # validates range and override codecs
    path = resolve_model(model)
    _check_target(s, channel_spec, path)
    ws = load_model(path)
    layers = list(dict.fromkeys(t.layer for t in ws.tensors))
    spec = CampaignSpec(
        model=str(path), model_sha256=model_identity(str(path)), codecs=codec_specs,
        channel=channel_spec, rates=rate_list, trials=int(trials),
        scopes=parse_scopes(s.scopes, layers), granularity=s.granularity, overrides=pairs,
        data=s.data.data, normalize=choose_normalize(s.data.normalize, recorded_normalize(ws.graph),
                                                      ws.input_dtype),
        samples=s.data.samples, seed=int(seed),
        backend=s.backend, target=s.target, act_bits=int(s.act_bits), act_signed=bool(s.act_signed),
        act_layers=s.act_layers)
    for codec in codec_specs:  # every codec must store this model (and overrides must match)
        store(ws, spec, codec)
    return spec


def reference_run(spec: CampaignSpec, threads: int | None = None, *,
                  low_memory: bool = False) -> tuple[dict, np.ndarray]:
    """The original model (its own float weights) on the campaign's samples; with
    ``low_memory`` onnxruntime reads the weights as inputs, as the campaign's variants do
    (:class:`~host.campaign.worker.CampaignJob`).

    Returns ``({"accuracy", "correct", "samples"}, mask of correctly classified samples)``.
    """
    ws = load_model(spec.model)
    x, y = spec.dataset.load(ws.input_shape, input_dtype=ws.input_dtype)
    specs = {t.name: (tuple(t.values.shape), t.values.dtype) for t in ws.tensors}
    executor = OnnxExecutor(ws.graph, specs, input_name=ws.input_name,
                            output_name=ws.output_name, threads=threads,
                            strategy="inputs" if low_memory else "session")
    scores = executor.logits({t.name: t.values for t in ws.tensors}, x).reshape(len(x), -1)
    check_labels(y, scores.shape[1], spec.data)
    right = top1(scores) == y
    return ({"accuracy": float(right.mean()), "correct": int(right.sum()),
             "samples": int(len(y))}, right)


def quantised_reference(job: CampaignJob) -> dict[str, dict]:
    """Activation faults: per codec, the fault-free quantised network (the codec's clean
    weights, every fault point in its fixed-point format, no flip) on the campaign's samples,
    ``{codec: {"accuracy", "correct", "samples"}}``. Its right answers are what a row's
    ``failures`` count against (seed 002: a failure is a right answer of the fault-free 8-bit
    network turned wrong), and ``correct`` is the failure rate's denominator."""
    ctx = context_for(job)
    out = {}
    for codec in job.spec.codecs:
        right = ctx.quantised_reference(codec)
        out[codec] = {"accuracy": float(right.mean()) if len(right) else 0.0,
                      "correct": int(right.sum()), "samples": int(len(right))}
    return out


# ---------------------------------------------------------------------------------------------
# executors: each yields the rows of one unit at a time, in completion order

def _serial(job: CampaignJob, units: list[Unit]) -> Iterator[list[dict]]:
    for unit in units:
        yield run_unit(job, unit)


_pool_job: CampaignJob | None = None


def _pool_init(job: CampaignJob) -> None:
    """Worker start: Ctrl-C is the parent's business; build the context once."""
    global _pool_job
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _pool_job = job


def _pool_run(unit: Unit) -> list[dict]:
    assert _pool_job is not None
    return run_unit(_pool_job, unit)


def _pool(job: CampaignJob, units: list[Unit], workers: int) -> Iterator[list[dict]]:
    # spawn: a forked child would inherit onnxruntime's thread pools in an undefined state
    pool = multiprocessing.get_context("spawn").Pool(workers, _pool_init, (job,))
    try:
        yield from pool.imap_unordered(_pool_run, units)
        pool.close()
    finally:
        pool.terminate()  # on Ctrl-C or an error: unfinished units are simply not written
        pool.join()


def _dask(job: CampaignJob, units: list[Unit], address: str) -> Iterator[list[dict]]:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise FlipLabError("--scheduler needs Dask distributed: pip install 'dask[distributed]'") from None
    try:
        client = Client(address, timeout="10s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise FlipLabError(f"cannot reach the Dask scheduler at {address}: "
                           f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    futures = []
    try:
        [job_future] = client.scatter([job], broadcast=True)
        futures = [client.submit(run_unit, job_future, u, pure=False) for u in units]
        for future in as_completed(futures, loop=client.loop):
            yield future.result()
    finally:
        if futures:
            client.cancel(futures)
        client.close()


# ---------------------------------------------------------------------------------------------

def run_sweep(spec: CampaignSpec, out: str | Path, *, workers: int = 1,
              scheduler: str | None = None, progress: bool = True, reuse_prefix: bool = True,
              prefix_cache_bytes: int | None = None, summary: bool = True,
              low_memory: bool = False) -> SweepResult:
    """Run (or resume) the campaign ``spec`` into the folder ``out``.

    Args:
        spec: the campaign (see :func:`make_spec`).
        out: folder for ``campaign.json`` and ``results.jsonl``; a folder holding the same
            campaign is resumed (finished units skipped), a different one refused.
        workers: local processes (1: this process); each onnxruntime session then uses 1 thread.
        scheduler: address of a Dask distributed scheduler (``tcp://host:8786``) to run the
            units on instead; its workers must see the same model and data paths.
        progress: show a tqdm progress bar (variants done, with ETA) on stderr.
        reuse_prefix: per-layer scopes compute the graph before the layer once per batch.
        prefix_cache_bytes: per-process memory budget of the prefix activations.
        summary: compute ``host.report.summary_table`` at the end.
        low_memory: one copy of the weights per process (weight faults only; see
            :class:`~host.campaign.worker.CampaignJob`).

    Raises:
        FlipLabError: bad input or a different campaign in ``out``.
        CampaignInterrupted: Ctrl-C; finished units are on disk, re-running resumes.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise FlipLabError(f"workers must be an integer >= 1, got {workers!r}")
    if low_memory:
        check_low_memory(spec.target)
        return_freed_memory()
    out = Path(out)
    threads = None if workers == 1 and scheduler is None else 1
    reference, right = reference_run(spec, threads, low_memory=low_memory)
    prepare_folder(out)
    with RunLock(out):
        return _locked_sweep(spec, out, reference, right, workers=workers, scheduler=scheduler,
                             threads=threads, progress=progress, reuse_prefix=reuse_prefix,
                             prefix_cache_bytes=prefix_cache_bytes, summary=summary,
                             low_memory=low_memory)


def _locked_sweep(spec: CampaignSpec, out: Path, reference: dict, right: np.ndarray, *,
                  workers: int, scheduler: str | None, threads: int | None, progress: bool,
                  reuse_prefix: bool, prefix_cache_bytes: int | None,
                  summary: bool, low_memory: bool) -> SweepResult:
    job = CampaignJob(spec, np.packbits(right).tobytes(), threads, reuse_prefix,
                      **({} if prefix_cache_bytes is None else
                         {"prefix_cache_bytes": int(prefix_cache_bytes)}),
                      low_memory=low_memory)
    if spec.target != "weights":
        reference = {**reference, "quantised": quantised_reference(job)}
    resumed = open_run(out, spec, reference)
    done = resumed.done
    todo = [u for u in spec.units() if u.key not in done]
    if scheduler is not None:
        stream = _dask(job, todo, scheduler)
    elif workers > 1 and len(todo) > 1:
        stream = _pool(job, todo, min(workers, len(todo)))
    else:
        stream = _serial(job, todo)
    rows_written = units_run = 0
    variants = sum(spec.rows_of(u) for u in todo)
    try:
        with ResultWriter(out) as writer, tqdm(total=variants, desc="sweep", unit="variant",
                                               disable=not progress or not todo,
                                               dynamic_ncols=True) as bar:
            for rows in stream:
                writer.append(rows)
                rows_written += len(rows)
                units_run += 1
                bar.update(len(rows))
    except KeyboardInterrupt:
        _close(stream)
        total = len(spec.units())
        raise CampaignInterrupted(
            f"sweep interrupted: {len(done) + units_run} of {total} units are in "
            f"{out / RESULTS}; run the same command again to resume") from None
    result = SweepResult(out, out / RESULTS, len(spec.units()), units_run, len(done),
                         rows_written, reference, damaged=resumed.damaged)
    if summary:
        from host.report import summary_table
        result.summary = summary_table(out)
    return result


def _close(stream: Iterator) -> None:
    close = getattr(stream, "close", None)
    if close is not None:
        try:
            close()
        except KeyboardInterrupt:  # a second Ctrl-C while shutting down the workers
            pass
