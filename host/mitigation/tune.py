"""``host clip``: profile (Step 1), clip (Step 2) and tune the thresholds (Step 3) of seed 003.

Step 3 runs Algorithm 1 (:mod:`host.mitigation.search`) per layer, on the Step-2 model (every
layer clipped at its ACT_max), with faults injected in that layer's weights only. The objective
of a threshold T is seed 003's AUC (:func:`host.metrics.auc`, linear, over [0, p_max]) of the
mean accuracy over the rates, the clean point included. It runs on the campaign's variant path:

- the stored image and its nested error patterns (:func:`host.inject.error_pattern`, the bits of
  ``host inject --tensors LAYER --seed S --trial t``) are made once per layer and serve every
  candidate T: common random numbers, so candidates are compared on identical faults;
- the graph is cut where the layer's weights enter it (:func:`host.campaign.split_at_weights`):
  the prefix (which T does not change) runs once per layer on the clean weights, and each
  candidate T runs only the suffix (the layer, its clipped ReLU and what follows), one
  :class:`~host.executors.ort.OnnxExecutor` per T, with the variant weights from an
  :class:`~host.decode.IncrementalDecoder` walking the rates upwards.

Every probe (layer, T, AUC, trials, the curve) is appended to a JSONL results file as it comes
(flushed and fsynced); a rerun with the same settings reads the probes back instead of
re-evaluating them, so an interrupted search resumes, and the file reports the search.
"""

from __future__ import annotations

import glob
import hashlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnx

from host.campaign.grid import parse_rates, sweep_channel, sweep_channel_spec
from host.campaign.split import split_at_weights
from host.data import DataSpec
from host.data.recorded import choose_normalize, recorded_normalize
from host.decode import IncrementalDecoder, decode_weights
from host.errors import FlipLabError
from host.evaluation import top1
from host.executors.ort import OnnxExecutor
from host.export import CodecPlan, build_image
from host.fileio import ProbeLog
from host.image import write_atomic
from host.inject import error_pattern
from host.metrics import auc
from host.mitigation.clip import (
    DEFAULT_FORM,
    clip_activations,
    profile_act_max,
    read_metadata,
    select_layers,
    with_metadata,
)
from host.mitigation.search import SearchResult, threshold_search
from host.model import load_model
from host.model.loader import data_input_spec
from host.model.reading import read_onnx

#: results file format tag (first line of the probes file)
PROBES_FORMAT = "fliplab-clip-probes"


@dataclass(frozen=True)
class ClipSettings:
    """What ``host clip`` does. ``layers``: layer or ReLU names (None: every ReLU layer);
    ``form``: how a float activation is clipped (host.mitigation.clip.FORMS)."""

    data: DataSpec = field(default_factory=DataSpec)
    profile_samples: int = 1000
    layers: tuple[str, ...] | None = None
    form: str = DEFAULT_FORM


@dataclass(frozen=True)
class TuneSettings:
    """Step 3: the fault model and Algorithm 1's parameters (paper: 50 trials; N, M, delta
    are not given there, these defaults are ours)."""

    codec: str = "float32"
    channel: str = "bsc"
    rates: str = "1e-7:1e-5:6"
    trials: int = 20
    seed: int = 0
    samples: int | None = None  # evaluation samples (None: the profiling subset)
    n: int = 6
    m: int = 3
    delta: float = 0.005


def _load_onnx(path: str | os.PathLike) -> onnx.ModelProto:
    return read_onnx(Path(path))


def _check_output(model_path: str | os.PathLike, out: str | os.PathLike) -> None:
    src, dst = Path(model_path), Path(out)
    if dst.exists() and src.exists() and os.path.samefile(src, dst):
        raise FlipLabError(f"output {dst} is the input model; choose another path")
    if dst.exists() and dst.is_dir():
        raise FlipLabError(f"output path {dst} is a directory")


def profile_and_clip(model_path: str | os.PathLike, settings: ClipSettings
                     ) -> tuple[onnx.ModelProto, dict[str, float], np.ndarray, np.ndarray]:
    """Steps 1 and 2: ``(clipped model, ACT_max per layer, profiling x, y)``.

    The clipped model carries ``act_max``, ``thresholds`` (= ACT_max) and ``profile`` in its
    metadata.
    """
    model = _load_onnx(model_path)
    if read_metadata(model).get("thresholds"):
        raise FlipLabError(f"{model_path} is already clipped; clip the original model")
    chosen = select_layers(model, settings.layers)
    # --normalize, else the normalisation the model records, else unit (host.data.recorded)
    used = choose_normalize(settings.data.normalize, recorded_normalize(model))
    spec = DataSpec(settings.data.data, used, settings.profile_samples)
    shape, dtype = data_input_spec(model)
    x, y = spec.load(shape, input_dtype=dtype)
    act_max = profile_act_max(model, x)
    act_max = {r.layer: act_max[r.layer] for r in chosen}
    zero = [k for k, v in act_max.items() if v <= 0]
    if zero:
        raise FlipLabError(f"layer(s) {', '.join(zero)} never fire on the profiling samples "
                           f"(ACT_max = 0): clipping would silence them; leave them out "
                           f"with --layers")
    clipped = clip_activations(model, act_max, form=settings.form)
    clipped = with_metadata(clipped, act_max=act_max, profile={
        "data": settings.data.data, "normalize": used, "samples": len(y),
        "form": settings.form})
    return clipped, act_max, x, y


def write_model(model: onnx.ModelProto, out: str | os.PathLike) -> None:
    """Write ``model`` atomically."""
    write_atomic(out, model.SerializeToString())


# ------------------------------------------------------------------------------ Step 3

class LayerObjective:
    """T -> AUC for one layer, faults in that layer only (see the module docstring).

    ``reuse=False`` is the naive search the benchmark compares with (bench/bench_clip.py
    --search): the whole model per variant and the error patterns drawn again per candidate
    (the same bits, as they derive from (seed, trial) only).
    """

    def __init__(self, original: onnx.ModelProto, act_max: dict[str, float], layer: str,
                 x: np.ndarray, y: np.ndarray, tune: TuneSettings, workdir: Path, *,
                 reuse: bool = True, form: str = DEFAULT_FORM) -> None:
        self.original, self.act_max, self.layer, self.form = original, act_max, layer, form
        self.x, self.y, self.tune, self.workdir = x, y, tune, workdir
        self.rates = parse_rates(tune.rates)
        self.channel = sweep_channel(tune.channel)
        base = self._weight_set(act_max[layer])
        self.image = build_image(base, CodecPlan(tune.codec))[0]
        self.tensors = [t.name for t in self.image.select([glob.escape(layer)])]
        if not self.tensors:
            raise FlipLabError(f"layer {layer!r} has no weights to corrupt")
        self.clean = decode_weights(self.image)
        self.reuse = reuse
        self.patterns = self._patterns() if reuse else None
        self.specs = {t.name: (t.shape, t.dtype) for t in self.image.tensors}
        cut = split_at_weights(base.graph, self.tensors, input_name=base.input_name,
                               output_name=base.output_name) if reuse else None
        self.input_name, self.output_name = base.input_name, base.output_name
        self.feeds = {base.input_name: x}
        if cut is not None:
            self.feeds = {}
            if base.input_name in cut.boundary:
                self.feeds[base.input_name] = x
            if cut.prefix is not None:  # T does not change the prefix: run it once
                pre = OnnxExecutor(cut.prefix, {n: self.specs[n] for n in cut.prefix_weights},
                                   input_name=base.input_name,
                                   output_name=cut.prefix_outputs[0])
                sess = pre.session({n: self.clean.weights[n] for n in cut.prefix_weights})
                outs = sess.run(list(cut.prefix_outputs), {base.input_name: x})
                self.feeds.update(zip(cut.prefix_outputs, outs))
        self.split = cut is not None
        self.evaluations = 0

    def _patterns(self) -> list:
        return [error_pattern(self.image, self.channel, seed=self.tune.seed, trial=trial,
                              tensors=self.tensors, rate_max=self.rates[-1])
                for trial in range(self.tune.trials)]

    def _weight_set(self, t: float):
        thresholds = {**self.act_max, self.layer: t}
        path = self.workdir / "candidate.onnx"
        path.write_bytes(clip_activations(self.original, thresholds,
                                          form=self.form).SerializeToString())
        return load_model(path)

    def _executor(self, t: float) -> tuple[OnnxExecutor, tuple[str, ...]]:
        ws = self._weight_set(t)
        cut = split_at_weights(ws.graph, self.tensors, input_name=ws.input_name,
                               output_name=ws.output_name) if self.split else None
        if cut is not None:  # None: the graph cannot be cut there; run it whole
            names = cut.suffix_weights
            return OnnxExecutor(cut.suffix, {n: self.specs[n] for n in names},
                                input_name=cut.boundary[0], output_name=ws.output_name), names
        names = tuple(self.specs)
        return OnnxExecutor(ws.graph, self.specs, input_name=ws.input_name,
                            output_name=ws.output_name), names

    def _accuracy(self, executor: OnnxExecutor, names, weights) -> float:
        session = executor.session({n: weights[n] for n in names})
        logits = session.run([self.output_name], self.feeds)[0]
        return float(np.mean(top1(np.asarray(logits).reshape(len(self.y), -1)) == self.y))

    def curve(self, t: float) -> dict[float, list[float]]:
        """Accuracy of every trial at every rate (rate 0: the clean model), threshold T."""
        executor, names = self._executor(t)
        out = {0.0: [self._accuracy(executor, names, self.clean.weights)]}
        for pattern in self.patterns if self.patterns is not None else self._patterns():
            decoder, previous = IncrementalDecoder(self.clean), 0.0
            for rate in self.rates:
                variant = decoder.flip(pattern.between(previous, rate))
                previous = rate
                out.setdefault(rate, []).append(self._accuracy(executor, names, variant.weights))
        self.evaluations += 1
        return out


def _auc_of_curve(curve: dict[float, list[float]]) -> float:
    return auc({rate: float(np.mean(accs)) for rate, accs in curve.items()})


@dataclass
class LayerTuning:
    """One layer's search: ACT_max, the tuned T, the AUCs at ACT_max and at T, the trace."""

    layer: str
    act_max: float
    t: float
    auc_act_max: float
    auc_tuned: float
    auc_unclipped: float
    evaluations: int
    stopped: str
    rounds: list[dict]


def tune_thresholds(model_path: str | os.PathLike, clip: ClipSettings, tune: TuneSettings,
                    results: str | os.PathLike,
                    progress: Callable[[str], None] | None = None
                    ) -> tuple[onnx.ModelProto, list[LayerTuning]]:
    """Steps 1-3: the tuned model and each layer's search (probes appended to ``results``)."""
    clipped, act_max, x, y = profile_and_clip(model_path, clip)
    normalize = read_metadata(clipped)["profile"]["normalize"]  # the one profiled with
    if tune.samples is not None:
        shape, dtype = data_input_spec(clipped)
        x, y = DataSpec(clip.data.data, normalize, tune.samples).load(shape, input_dtype=dtype)
    original = _load_onnx(model_path)
    header = {"format": PROBES_FORMAT, "version": 1,
              "model_sha256": hashlib.sha256(Path(model_path).read_bytes()).hexdigest(),
              "act_max": act_max, "codec": tune.codec,
              "channel": sweep_channel_spec(tune.channel),
              "rates": list(parse_rates(tune.rates)), "trials": tune.trials, "seed": tune.seed,
              "samples": len(y), "data": clip.data.data, "normalize": normalize,
              "n": tune.n, "m": tune.m, "delta": tune.delta, "form": clip.form}
    log = ProbeLog(Path(results), header, key=lambda row: (row["layer"], float(row["t"])))
    tunings = []
    with tempfile.TemporaryDirectory(prefix="fliplab-clip-") as tmp:
        for layer in act_max:
            objective = LayerObjective(original, act_max, layer, x, y, tune, Path(tmp),
                                       form=clip.form)

            def auc_of(t: float, layer: str = layer, objective: LayerObjective = objective
                       ) -> float:
                row = log.rows.get((layer, float(t)))
                if row is None:
                    curve = objective.curve(t)
                    row = {"layer": layer, "t": float(t), "auc": _auc_of_curve(curve),
                           "trials": tune.trials,
                           "curve": {repr(r): a for r, a in curve.items()}}
                    log.record(row)
                    if progress:
                        progress(f"{layer}: T = {t:.6g}, AUC = {row['auc']:.4f}")
                return row["auc"]

            found: SearchResult = threshold_search(auc_of, act_max[layer], n=tune.n, m=tune.m,
                                                   delta=tune.delta)
            tunings.append(LayerTuning(
                layer=layer, act_max=act_max[layer], t=found.t,
                auc_act_max=auc_of(act_max[layer]), auc_tuned=auc_of(found.t),
                auc_unclipped=auc_of(float("inf")), evaluations=found.evaluations,
                stopped=found.stopped,
                rounds=[{"interval": list(r.interval), "thresholds": list(r.thresholds),
                         "aucs": list(r.aucs)} for r in found.rounds]))
    tuned = clip_activations(original, {tu.layer: tu.t for tu in tunings}, form=clip.form)
    tuned = with_metadata(tuned, act_max=act_max, profile=read_metadata(clipped)["profile"],
                          tuning={"probes": str(results),
                                  **{k: header[k] for k in ("codec", "channel", "rates",
                                                            "trials", "seed", "samples")},
                                  "layers": [asdict(tu) for tu in tunings]})
    return tuned, tunings


def clip_model(model: str | os.PathLike, out: str | os.PathLike, clip: ClipSettings,
               tune: TuneSettings | None = None, *, results: str | os.PathLike | None = None,
               progress: Callable[[str], None] | None = None) -> dict:
    """The ``host clip`` job: Steps 1-2 (``tune=None``) or 1-3, the model written to ``out``.

    Returns a JSON-ready summary: per layer ACT_max and T (with ``--tune``: the AUCs without
    clip, at ACT_max and at T, the number of probes and the rounds), the output and probes
    paths.
    """
    from host.models import resolve_model

    path = resolve_model(str(model))
    _check_output(path, out)
    if tune is None:
        clipped, act_max, _, _ = profile_and_clip(path, clip)
        write_model(clipped, out)
        return {"model": str(path), "output": str(out),
                "layers": [{"layer": k, "act_max": v, "t": v} for k, v in act_max.items()]}
    results = Path(results) if results is not None else Path(f"{out}.probes.jsonl")
    if results.exists() and os.path.samefile(results, path):
        raise FlipLabError("the probes file must not be the input model")
    tuned, tunings = tune_thresholds(path, clip, tune, results, progress)
    write_model(tuned, out)
    return {"model": str(path), "output": str(out), "probes": str(results),
            "layers": [asdict(t) for t in tunings]}
