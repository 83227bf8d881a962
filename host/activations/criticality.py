"""Per-neuron failure rate of one activation bit flip (seed 002, Fig. 3/4): ``host criticality``.

The *failure rate* of a neuron is the share of the originally correct samples (those the
fault-free quantised model, every layer output in its fixed-point format, classifies
correctly) that the flip of that neuron's stored bit (by default the MSB) makes wrong; the same
neuron is flipped in every sample (the paper's single-flip study). Every neuron of every chosen
layer is tried, without per-sample Python loops:

1. The quantised graph (:func:`host.activations.quantize.insert_fault_points`, no masks) runs
   once on the samples; the layer's output (and whatever else the rest of the graph reads) is
   kept: the *prefix* is computed once.
2. The graph is cut at the layer output (:func:`host.campaign.split.split_at_value`); for a
   batch of neurons, each correct sample's output with that one neuron flipped is a row, and
   the rows go through the *suffix* only, many neurons per onnxruntime run.
3. Closed form where the tail is linear: when a layer output is read by a global average pool
   alone, flipping neuron (c, position) by δ moves the pool's output c by δ / (H·W) and nothing
   else, so the rows start after the pool: 64 numbers instead of 64 × 14 × 14 for the paper's
   MNIST network. When the layer output is the model output, the flipped logits are scored
   directly.
4. Skipped: a (sample, neuron) pair whose change the next layer's quantiser absorbs (the
   pooled value rounds to the same code with and without the flip) cannot fail.

Results are written per layer as they come (``layers/NN_<layer>.csv``, atomic; a re-run skips
finished layers), then ``report.md``, ``worst.csv``, ``summary.json`` and histograms.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from host.activations.quantize import (
    ActivationFormat,
    check_bits,
    insert_fault_points,
    profile_formats,
    select_layers,
)
from host.data import DataSpec, check_labels
from host.errors import FlipLabError
from host.fileio import write_atomic

META = "criticality.json"
#: rows (sample, neuron pairs) per suffix run, bounded by MAX_ROW_BYTES of input
ROWS = 32768
MAX_ROW_BYTES = 64 << 20
WORST = 20


@dataclass(frozen=True)
class CriticalitySettings:
    """``host criticality``'s choices.

    Attributes:
        data: the samples (the first ``samples`` of the test split); the same samples
            calibrate the ranges.
        layers: ``"all"`` or a comma list of layer names (as ``host.activations`` names them).
        bits: stored bits per activation (2..8); signed: two's complement or unsigned codes.
        bit: the flipped bit (``"msb"`` or 0 .. bits-1).
        neurons: only the first N neurons of each layer (None: all; for benchmarks).
        threads: onnxruntime intra-op threads (None: its default).
    """

    data: DataSpec
    layers: str = "all"
    bits: int = 8
    signed: bool = True
    bit: int | str = "msb"
    neurons: int | None = None
    threads: int | None = None


@dataclass
class LayerResult:
    """One layer's failure rates: ``failures[j]`` of ``correct`` samples for neuron j."""

    format: ActivationFormat
    failures: np.ndarray
    correct: int
    evaluated_pairs: int
    skipped_pairs: int
    method: str
    seconds: float

    def table(self):
        import pandas as pd

        n = len(self.failures)
        pos = np.unravel_index(np.arange(n), self.format.shape)
        return pd.DataFrame({
            "layer": self.format.layer, "neuron": np.arange(n),
            "position": [",".join(str(int(p[j])) for p in pos) for j in range(n)],
            "failures": self.failures.astype(np.int64),
            "failure_rate": self.failures / max(self.correct, 1)})


def _session(model: onnx.ModelProto, threads: int | None):
    import onnxruntime as ort

    from host.executors.ort import ort_reason, session_options

    try:
        return ort.InferenceSession(model.SerializeToString(), session_options(threads),
                                    providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise FlipLabError(f"onnxruntime refused the model: {ort_reason(exc)}") from None


class FlipStudy:
    """The quantised model on its samples, ready to score single flips layer by layer.

    Args:
        model: the complete ONNX model (weights as initializers).
        x, y: samples and labels.
        formats: the fault points (from :func:`profile_formats`).
        bit: the flipped stored bit.
    """

    def __init__(self, model: onnx.ModelProto, x: np.ndarray, y: np.ndarray,
                 formats: list[ActivationFormat], *, bit: int | str = "msb",
                 threads: int | None = None) -> None:
        self.formats, self.bit, self.threads = formats, bit, threads
        self.quantised = insert_fault_points(model, formats, masks=False)
        g = self.quantised.graph
        self.input_name = g.input[0].name
        self.output_name = g.output[0].name
        logits = _session(self.quantised, threads).run([self.output_name],
                                                        {self.input_name: x})[0]
        logits = logits.reshape(len(x), -1)
        check_labels(y, logits.shape[1], "labels")
        self.right = logits.argmax(axis=1) == y
        self.x, self.y = x[self.right], y[self.right]
        self.logits = logits[self.right]

    @property
    def correct(self) -> int:
        return int(len(self.y))

    # -- the pieces of the graph ------------------------------------------------------------
    def _probe(self, names: list[str]) -> dict[str, np.ndarray]:
        from host.model.passes import expose_values

        probe = expose_values(self.quantised, names)
        out = _session(probe, self.threads).run(names, {self.input_name: self.x})
        return dict(zip(names, out))

    def _gap_reader(self, tensor: str) -> onnx.NodeProto | None:
        readers = [n for n in self.quantised.graph.node if tensor in n.input]
        if len(readers) == 1 and readers[0].op_type == "GlobalAveragePool":
            return readers[0]
        return None

    def layer(self, fmt: ActivationFormat, neurons: int | None = None) -> LayerResult:
        """Failure counts of the first ``neurons`` (None: all) neurons of ``fmt``'s layer."""
        from host.campaign.split import split_at_value

        t0 = time.perf_counter()
        n = fmt.neurons if neurons is None else min(int(neurons), fmt.neurons)
        if self.correct == 0:
            return LayerResult(fmt, np.zeros(n, np.int64), 0, 0, 0, "none", 0.0)
        if fmt.tensor == self.output_name:
            values = self.logits.reshape(self.correct, -1)
            flipped = _flipped(fmt, values, self.bit)
            failures = np.zeros(n, np.int64)
            for j in range(n):
                rows = values.copy()
                rows[:, j] = flipped[:, j]
                failures[j] = np.count_nonzero(rows.argmax(axis=1) != self.y)
            return LayerResult(fmt, failures, self.correct, n * self.correct, 0, "logits",
                               time.perf_counter() - t0)
        gap = self._gap_reader(fmt.tensor)
        if gap is not None:
            return self._closed_form(fmt, gap, n, t0)
        cut = split_at_value(self.quantised, fmt.tensor, input_name=self.input_name,
                             output_name=self.output_name)
        found = self._probe(list(cut.prefix_outputs))
        values = found[fmt.tensor].reshape(self.correct, -1)
        flipped = _flipped(fmt, values, self.bit)
        others = {b: self.x if b == self.input_name else found[b] for b in cut.boundary[1:]}
        session = _session(cut.suffix, self.threads)
        per = max(1, min(ROWS // self.correct,
                         MAX_ROW_BYTES // max(1, values.nbytes)))
        failures = np.zeros(n, np.int64)
        for start in range(0, n, per):
            js = np.arange(start, min(start + per, n))
            rows = np.tile(values, (len(js), 1))
            idx = np.arange(len(js)) * self.correct
            for k, j in enumerate(js):
                rows[idx[k]:idx[k] + self.correct, j] = flipped[:, j]
            feeds = {fmt.tensor: rows.reshape(len(rows), *fmt.shape)}
            feeds.update({b: np.tile(v, (len(js),) + (1,) * (v.ndim - 1))
                          for b, v in others.items()})
            out = session.run([self.output_name], feeds)[0].reshape(len(rows), -1)
            wrong = out.argmax(axis=1) != np.tile(self.y, len(js))
            failures[js] = wrong.reshape(len(js), self.correct).sum(axis=1)
        return LayerResult(fmt, failures, self.correct, n * self.correct, 0, "suffix",
                           time.perf_counter() - t0)

    def _closed_form(self, fmt: ActivationFormat, gap: onnx.NodeProto, n: int,
                     t0: float) -> LayerResult:
        """Layer output -> GlobalAveragePool: a flip of (c, position) by δ moves pool output c
        by δ / (H·W); the rows start after the pool."""
        from host.campaign.split import split_at_value

        pooled = gap.output[0]
        cut = split_at_value(self.quantised, pooled, input_name=self.input_name,
                             output_name=self.output_name)
        found = self._probe(list(dict.fromkeys([fmt.tensor, *cut.prefix_outputs])))
        values = found[fmt.tensor].reshape(self.correct, -1)
        delta = _flipped(fmt, values, self.bit).astype(np.float64) - values
        base = found[pooled]  # (S, C, 1, 1)
        channels = fmt.shape[0]
        area = fmt.neurons // channels
        base2 = base.reshape(self.correct, channels)
        after = next((f for f in self.formats if f.layer == gap.name), None)  # its quantiser
        others = {b: found[b] for b in cut.boundary[1:]}
        session = _session(cut.suffix, self.threads)
        failures = np.zeros(n, np.int64)
        skipped = 0
        pending_rows, pending_j, pending_s = [], [], []

        def flush() -> None:
            if not pending_rows:
                return
            rows = np.concatenate(pending_rows)
            feeds = {pooled: rows.reshape(len(rows), *base.shape[1:])}
            feeds.update({b: np.repeat(v[:1], len(rows), 0) if v.shape[0] == 1 else
                          v[np.concatenate(pending_s)] for b, v in others.items()})
            out = session.run([self.output_name], feeds)[0].reshape(len(rows), -1)
            wrong = out.argmax(axis=1) != self.y[np.concatenate(pending_s)]
            np.add.at(failures, np.concatenate(pending_j), wrong.astype(np.int64))
            pending_rows.clear()
            pending_j.clear()
            pending_s.clear()

        queued = 0
        for j in range(n):
            c = j // area
            new = (base2[:, c].astype(np.float64) + delta[:, j] / area).astype(np.float32)
            live = np.arange(self.correct)
            if after is not None:
                q = after.format
                live = np.flatnonzero(q.quantize(new) != q.quantize(base2[:, c]))
            skipped += self.correct - len(live)
            if len(live) == 0:
                continue
            rows = base2[live].copy()
            rows[:, c] = new[live]
            pending_rows.append(rows)
            pending_j.append(np.full(len(live), j))
            pending_s.append(live)
            queued += len(live)
            if queued >= ROWS:
                flush()
                queued = 0
        flush()
        return LayerResult(fmt, failures, self.correct, n * self.correct - skipped, skipped,
                           "closed form (global average pool)", time.perf_counter() - t0)


def _flipped(fmt: ActivationFormat, values: np.ndarray, bit: int | str) -> np.ndarray:
    """The stored values (on the format's grid) with ``bit`` flipped."""
    code = fmt.format.quantize(values)
    mask = np.uint8(fmt.format.flip_mask(bit))
    return fmt.format.dequantize((code.view(np.uint8) ^ mask).view(code.dtype))


def brute_force(model: onnx.ModelProto, x: np.ndarray, y: np.ndarray,
                formats: list[ActivationFormat], layer: str, *, bit: int | str = "msb"
                ) -> np.ndarray:
    """Failure counts of every neuron of ``layer`` by running the whole faulted graph once per
    neuron with a single-flip mask (slow; the reference the study is tested against)."""
    from host.activations.faults import find_format, single_flip_masks, zero_masks

    faulty = insert_fault_points(model, formats)
    session = _session(faulty, None)
    name = faulty.graph.input[0].name
    out_name = faulty.graph.output[0].name
    clean = session.run([out_name], {name: x, **zero_masks(formats)})[0].reshape(len(x), -1)
    right = clean.argmax(axis=1) == y
    fmt = find_format(formats, layer)
    counts = np.zeros(fmt.neurons, np.int64)
    for j in range(fmt.neurons):
        out = session.run([out_name], {name: x[right],
                                       **single_flip_masks(formats, layer, j, bit)})[0]
        counts[j] = np.count_nonzero(out.reshape(int(right.sum()), -1).argmax(axis=1)
                                     != y[right])
    return counts


# ------------------------------------------------------------------------------ the command

def _identity(model_path: Path, s: CriticalitySettings, formats: list[ActivationFormat]) -> dict:
    from host.export import file_sha256

    return {"model": str(model_path), "model_sha256": file_sha256(model_path),
            "data": s.data.data, "normalize": s.data.normalize, "samples": s.data.samples,
            "bits": s.bits, "signed": s.signed, "bit": s.bit, "neurons": s.neurons,
            "formats": [f.to_json() for f in formats]}


def run_criticality(model: str | Path, out: str | Path, settings: CriticalitySettings, *,
                    progress: bool = True,
                    on_layer: Callable[[LayerResult], None] | None = None) -> dict:
    """Run (or resume) the study into folder ``out``; returns the summary (``summary.json``).

    Raises:
        FlipLabError: bad input, or ``out`` holds a different study.
    """
    from tqdm import tqdm

    from host.model.reading import read_onnx
    from host.models import resolve_model

    s = settings
    if s.bit != "msb" and (isinstance(s.bit, bool) or not isinstance(s.bit, int)):
        raise FlipLabError(f"bit must be 'msb' or an integer, got {s.bit!r}")
    if s.neurons is not None and (isinstance(s.neurons, bool) or s.neurons < 1):
        raise FlipLabError(f"neurons must be an integer >= 1, got {s.neurons!r}")
    path = resolve_model(model)
    onnx_model = read_onnx(path)
    layers = select_layers(onnx_model, s.layers)
    from host.model import load_model

    ws = load_model(path)
    x, y = s.data.load(ws.input_shape, input_dtype=ws.input_dtype)
    check_bits(s.bits)
    formats = profile_formats(onnx_model, x, select_layers(onnx_model, "all"), bits=s.bits,
                              signed=s.signed, threads=s.threads)
    for f in formats:
        f.format.flip_mask(s.bit)  # refuses a bit outside the width, one line
    chosen = [f for f in formats if f.layer in {layer.name for layer in layers}]
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FlipLabError(f"output folder {out} is a file")
    (out / "layers").mkdir(parents=True, exist_ok=True)
    ident = _identity(path, s, formats)
    meta = out / META
    if meta.exists():
        try:
            old = json.loads(meta.read_text())
        except ValueError:
            raise FlipLabError(f"{meta} is not readable JSON; choose another --out") from None
        if {k: old.get(k) for k in ident} != ident:
            diff = [k for k in ident if old.get(k) != ident[k]]
            raise FlipLabError(f"{out} holds a different study ({', '.join(diff)} differ); "
                               f"choose another --out")
    else:
        write_atomic(meta, (json.dumps(ident, indent=2) + "\n").encode())
    study = None
    tables = []
    bar = tqdm(chosen, desc="criticality", unit="layer", disable=not progress)
    for index, fmt in enumerate(bar):
        from host.report.plots import slug

        file = out / "layers" / f"{index:02d}_{slug(fmt.layer)}.csv"
        if file.exists():
            import pandas as pd

            tables.append(pd.read_csv(file, dtype={"position": str}))
            continue
        if study is None:
            study = FlipStudy(onnx_model, x, y, formats, bit=s.bit, threads=s.threads)
        bar.set_postfix_str(fmt.layer)
        result = study.layer(fmt, s.neurons)
        table = result.table()
        table["method"] = result.method
        table["seconds"] = round(result.seconds, 3)
        table["skipped_pairs"] = result.skipped_pairs
        buffer = io.StringIO()
        table.to_csv(buffer, index=False)
        write_atomic(file, buffer.getvalue().encode())
        tables.append(table)
        if on_layer is not None:
            on_layer(result)
    correct = study.correct if study is not None else None
    return write_report(out, tables, chosen, correct)


def write_report(out: Path, tables: list, formats: list[ActivationFormat],
                 correct: int | None) -> dict:
    """``summary.json``, ``worst.csv``, ``report.md`` and ``plots/*.png`` from the per-layer
    tables."""
    import pandas as pd
    from matplotlib.figure import Figure

    from host.report.plots import slug

    allrows = pd.concat(tables, ignore_index=True)
    worst = allrows.sort_values(["failure_rate", "layer", "neuron"],
                                ascending=[False, True, True]).head(WORST)
    buffer = io.StringIO()
    worst[["layer", "neuron", "position", "failures", "failure_rate"]].to_csv(buffer,
                                                                              index=False)
    write_atomic(out / "worst.csv", buffer.getvalue().encode())
    layers = []
    for fmt, t in zip(formats, tables):
        layers.append({"layer": fmt.layer, "tensor": fmt.tensor, "shape": list(fmt.shape),
                       "format": {"bits": fmt.format.bits, "frac": fmt.format.frac,
                                  "signed": fmt.format.signed}, "max_abs": fmt.max_abs,
                       "neurons": int(len(t)), "mean_failure_rate": float(t.failure_rate.mean()),
                       "max_failure_rate": float(t.failure_rate.max()),
                       "method": str(t["method"].iloc[0]),
                       "seconds": float(t["seconds"].iloc[0]),
                       "skipped_pairs": int(t["skipped_pairs"].iloc[0])})
    summary = {"correct_samples": correct, "layers": layers,
               "worst": worst[["layer", "neuron", "position", "failures",
                               "failure_rate"]].to_dict(orient="records")}
    write_atomic(out / "summary.json", (json.dumps(summary, indent=2) + "\n").encode())
    plots = out / "plots"
    plots.mkdir(exist_ok=True)
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    bins = np.linspace(0, max(0.05, float(allrows.failure_rate.max())), 41)
    for fmt, t in zip(formats, tables):
        ax.hist(t.failure_rate, bins=bins, histtype="step", label=fmt.layer)
    ax.set_yscale("log")
    ax.set_xlabel("failure rate after one MSB flip")
    ax.set_ylabel("neurons")
    ax.legend(fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    write_atomic(plots / "histogram.png", buf.getvalue())
    lines = ["# Activation criticality: failure rate after one bit flip per neuron", "",
             f"Originally correct samples: {correct if correct is not None else 'see layers/'}. "
             "Failure rate = share of them the flip makes wrong (seed 002, Fig. 3/4).", "",
             "| layer | shape | format (bits, f) | neurons | mean | max | method | s |",
             "|---|---|---|---|---|---|---|---|"]
    for r in layers:
        lines.append(f"| {r['layer']} | {'x'.join(map(str, r['shape']))} | "
                     f"{r['format']['bits']}, {r['format']['frac']}"
                     f"{'' if r['format']['signed'] else ' unsigned'} | {r['neurons']} | "
                     f"{r['mean_failure_rate']:.4f} | {r['max_failure_rate']:.4f} | "
                     f"{r['method']} | {r['seconds']:.1f} |")
    lines += ["", f"## The {len(worst)} worst neurons", "",
              "| layer | neuron | position | failures | failure rate |", "|---|---|---|---|---|"]
    for _, w in worst.iterrows():
        lines.append(f"| {w.layer} | {w.neuron} | {w.position} | {w.failures} | "
                     f"{w.failure_rate:.4f} |")
    lines += ["", "![histogram](plots/histogram.png)", ""]
    write_atomic(out / "report.md", "\n".join(lines).encode())
    for fmt, t in zip(formats, tables):
        fig = Figure(figsize=(5, 3))
        ax = fig.add_subplot()
        ax.hist(t.failure_rate, bins=bins)
        ax.set_yscale("log")
        ax.set_title(fmt.layer)
        ax.set_xlabel("failure rate")
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        write_atomic(plots / f"histogram_{slug(fmt.layer)}.png", buf.getvalue())
    return summary
