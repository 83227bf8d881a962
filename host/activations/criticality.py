"""Per-neuron failure rate of one activation bit flip (seed 002, Fig. 3/4): ``host criticality``.

The *failure rate* of a neuron is the share of the originally correct samples (those the
fault-free quantised model, every layer output in its fixed-point format, classifies
correctly) that the flip of that neuron's stored bit (by default the MSB) makes wrong; the same
neuron is flipped in every sample (the paper's single-flip study). Every neuron of every chosen
layer is tried, without per-sample Python loops:

1. The quantised graph (:func:`host.activations.quantize.insert_fault_points`, no masks) runs
   once on the samples; the values the later steps read are kept (the prefix, once).
2. Closed form where the tail is linear: when a layer output is read by a global average pool
   alone, flipping neuron (c, position) by δ moves the pool's output c by δ / (H·W) and nothing
   else; the rows (one per correct sample) start after the pool and go through the rest of the
   graph (:func:`host.campaign.split.split_at_value`), many neurons per onnxruntime run. Flipped
   logits are scored directly.
3. Local patch where the layer output reaches a global average pool through 2-D convolutions,
   ReLU, Clip, max-pool and quantisers (:func:`local_chain`): the change is carried as a patch
   (the region it can reach, new minus old values there) for all samples at once; the next
   convolution is one matrix product over the input channels the change reached.
4. Skipped: samples whose patch becomes all zero (a ReLU or max-pool masks the change, a
   quantiser rounds it away) and pairs whose pooled value keeps its code cannot fail.
5. Otherwise the graph is cut at the layer output and each flipped sample goes through the rest.

Results are written per layer as they come (``layers/<layer>.csv``, atomic), then
``report.md``, ``worst.csv``, ``summary.json`` and histograms. **Resume** is keyed on the
layer's name, not on its place in ``--layers``: a re-run, or a run with a wider ``--layers``
into the same folder, reads the finished layers' files and computes only the others. Each
file carries the study's identity digest (model sha256, data, samples, width, bit, neurons
and every layer's format) in its ``study`` column, as ``criticality.json`` carries the
identity itself; a folder or a layer file of a different study is refused, never mixed in.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
from host.model.graph import scores_output

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
            "failure_rate": self.failures / max(self.correct, 1), "correct": self.correct})


def _session(model: onnx.ModelProto, threads: int | None):
    import onnxruntime as ort

    from host.executors.ort import DISABLED_OPTIMIZERS, ort_reason, session_options

    try:
        return ort.InferenceSession(model.SerializeToString(), session_options(threads),
                                    providers=["CPUExecutionProvider"],
                                    disabled_optimizers=DISABLED_OPTIMIZERS)
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
                 threads: int | None = None, progress: bool = False) -> None:
        self.formats, self.bit, self.threads = formats, bit, threads
        self.progress = progress
        self.quantised = insert_fault_points(model, formats, masks=False)
        g = self.quantised.graph
        self.input_name = g.input[0].name
        self.output_name = scores_output(g)
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

    def _neurons(self, fmt: ActivationFormat, n: int):
        """range(n), with a progress bar (neurons of this layer) when asked for."""
        from tqdm import tqdm

        return tqdm(range(n), desc=fmt.layer, unit="neuron", leave=False,
                    disable=not self.progress, dynamic_ncols=True, mininterval=1.0)

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
        chain = local_chain(self.quantised, fmt.tensor)
        if chain is not None:
            return self._local(fmt, chain, n, t0)
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
            for k, col in enumerate(js):
                rows[idx[k]:idx[k] + self.correct, col] = flipped[:, col]
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
        queue = _SuffixQueue(session, pooled, base.shape[1:], others, self.output_name, self.y, n)
        skipped = 0
        for j in self._neurons(fmt, n):
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
            queue.add(rows, j, live)
        return LayerResult(fmt, queue.finish(), self.correct, n * self.correct - skipped, skipped,
                           "closed form (global average pool)", time.perf_counter() - t0)


    def _local(self, fmt: ActivationFormat, chain: list[_Step], n: int,
               t0: float) -> LayerResult:
        """Layer output -> Conv / Relu / MaxPool / quantiser ... -> global average pool: the
        change of one neuron is carried as a patch (the region it can reach, new minus old
        values there) through each step, on all correct samples at once; samples whose
        patch becomes all zero (a ReLU or max-pool masks the flip, a quantiser absorbs it)
        leave the computation, and the pool's output starts the suffix rows."""
        from host.campaign.split import split_at_value

        gap = chain[-1].node
        pooled = gap.output[0]
        cut = split_at_value(self.quantised, pooled, input_name=self.input_name,
                             output_name=self.output_name)
        names = [fmt.tensor, pooled] + [v for st in chain for v in st.values()]
        found = self._probe(list(dict.fromkeys(names + list(cut.prefix_outputs))))
        values = found[fmt.tensor]
        flat = values.reshape(self.correct, -1)
        area = int(np.prod(found[gap.input[0]].shape[2:]))
        chain_values = {v for st in chain[:-1] for v in st.values()}
        found.update({v: _spatial_major(found[v]) for v in chain_values})
        delta_all = (_flipped(fmt, flat, self.bit).astype(np.float64) - flat)
        base = found[pooled].reshape(self.correct, -1)
        after = next((f for f in self.formats if f.layer == gap.name), None)
        others = {b: found[b] for b in cut.boundary[1:]}
        session = _session(cut.suffix, self.threads)
        queue = _SuffixQueue(session, pooled, found[pooled].shape[1:], others, self.output_name,
                             self.y, n)
        skipped = 0

        shape = fmt.shape
        for j in self._neurons(fmt, n):
            c, y, x = np.unravel_index(j, shape)
            live = np.arange(self.correct)
            patch = _Patch(int(y), int(y) + 1, int(x), int(x) + 1,
                           delta_all[:, j].reshape(-1, 1, 1, 1), channels=np.array([c]))
            for st in chain[:-1]:
                patch = st.apply(patch, live, found)
                keep = np.flatnonzero(np.any(patch.delta != 0, axis=(1, 2, 3)))
                if len(keep) < len(live):
                    live, patch.delta = live[keep], patch.delta[keep]
                if len(live) == 0:
                    break
            if len(live):
                new = (base[live].astype(np.float64)
                       + patch.delta.sum(axis=(2, 3)) / area).astype(np.float32)
                if after is not None:
                    q = after.format
                    moved = np.any(q.quantize(new) != q.quantize(base[live]), axis=1)
                    live, new = live[moved], new[moved]
            skipped += self.correct - len(live)
            if len(live) == 0:
                continue
            queue.add(new, j, live)
        return LayerResult(fmt, queue.finish(), self.correct, n * self.correct - skipped, skipped,
                           "local (patch through " + ", ".join(st.node.op_type for st in chain)
                           + ")", time.perf_counter() - t0)



class _SuffixQueue:
    """Flipped pooled rows waiting for the suffix: ``add(rows, neuron, samples)`` queues them,
    a full queue (ROWS rows) runs as one batch, ``finish()`` runs the rest and returns the
    failures per neuron (a sample counts when the suffix's top-1 is not its label)."""

    def __init__(self, session, pooled: str, pooled_shape: tuple[int, ...],
                 others: dict[str, np.ndarray], output_name: str, y: np.ndarray,
                 neurons: int) -> None:
        self.session, self.pooled, self.pooled_shape = session, pooled, tuple(pooled_shape)
        self.others, self.output_name, self.y = others, output_name, y
        self.failures = np.zeros(neurons, np.int64)
        self.rows: list[np.ndarray] = []
        self.neurons: list[np.ndarray] = []
        self.samples: list[np.ndarray] = []
        self.queued = 0

    def add(self, rows: np.ndarray, neuron: int, samples: np.ndarray) -> None:
        self.rows.append(rows)
        self.neurons.append(np.full(len(samples), neuron))
        self.samples.append(samples)
        self.queued += len(samples)
        if self.queued >= ROWS:
            self._flush()

    def finish(self) -> np.ndarray:
        self._flush()
        return self.failures

    def _flush(self) -> None:
        if not self.rows:
            return
        rows = np.concatenate(self.rows)
        s_idx = np.concatenate(self.samples)
        feeds = {self.pooled: rows.reshape(len(rows), *self.pooled_shape)}
        feeds.update({b: np.repeat(v[:1], len(rows), 0) if v.shape[0] == 1 else v[s_idx]
                      for b, v in self.others.items()})
        out = self.session.run([self.output_name], feeds)[0].reshape(len(rows), -1)
        np.add.at(self.failures, np.concatenate(self.neurons),
                  (out.argmax(axis=1) != self.y[s_idx]).astype(np.int64))
        self.rows, self.neurons, self.samples, self.queued = [], [], [], 0


@dataclass
class _Patch:
    """Rows ``[y0, y1)`` x columns ``[x0, x1)`` of a (S, C, H, W) value: new minus old there."""

    y0: int
    y1: int
    x0: int
    x1: int
    delta: np.ndarray
    #: the channels ``delta`` holds (None: all); the flipped neuron's patch holds one
    channels: np.ndarray | None = None


@dataclass
class _Step:
    """One step of a local chain: a node and what it needs (initializer arrays, value names
    of its input and output whose fault-free values the prefix probe provides)."""

    node: onnx.NodeProto
    kind: str
    inp: str
    out: str
    weight: np.ndarray | None = None
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    kernel: int = 1
    scale: float = 1.0
    zero_point: int = 0
    qrange: tuple[int, int] = (0, 0)
    bounds: tuple[float, float] = (0.0, 0.0)
    _taps: dict = field(default_factory=dict)

    def values(self) -> list[str]:
        return [self.inp, self.out] if self.kind != "conv" else []

    def apply(self, p: _Patch, live: np.ndarray, found: dict[str, np.ndarray]) -> _Patch:
        if self.kind == "conv":
            return self._conv(p)
        if self.kind == "maxpool":
            return self._maxpool(p, live, found)
        old_in = _region(found[self.inp], p.y0, p.y1, p.x0, p.x1, live)
        old_out = _region(found[self.out], p.y0, p.y1, p.x0, p.x1, live)
        new = self._elementwise(old_in + p.delta)
        return _Patch(p.y0, p.y1, p.x0, p.x1, new - old_out)

    def _elementwise(self, x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float32, copy=False)
        if self.kind == "relu":
            return np.maximum(x, np.float32(0))
        if self.kind == "clip":
            return np.clip(x, np.float32(self.bounds[0]), np.float32(self.bounds[1]))
        q = np.rint(x / np.float32(self.scale))
        q = np.clip(q + np.float32(self.zero_point), *self.qrange)
        return (q - np.float32(self.zero_point)) * np.float32(self.scale)

    def _conv(self, p: _Patch) -> _Patch:
        """Δout = Δin (S, C' h w) @ M (C' h w, K oh ow): M holds the kernel taps linking each
        input position of the patch to each output position it reaches."""
        w = self.weight
        assert w is not None
        kh, kw = w.shape[2:]
        pt, pl = self.pads[0], self.pads[1]
        h_out, w_out = self.out_hw
        oy0, oy1 = max(0, p.y0 + pt - kh + 1), min(h_out, p.y1 + pt)
        ox0, ox1 = max(0, p.x0 + pl - kw + 1), min(w_out, p.x1 + pl)
        delta = p.delta
        channels = p.channels
        if channels is None:  # only the input channels the flip reached
            reached = np.flatnonzero(np.any(delta != 0, axis=(0, 2, 3)))
            if len(reached) < delta.shape[1]:
                channels, delta = reached, delta[:, reached]
        key = (p.y1 - p.y0, p.x1 - p.x0, oy1 - oy0, ox1 - ox0, p.y0 - oy0, p.x0 - ox0)
        if key not in self._taps:
            self._taps[key] = self._tap_matrix(*key)
        m = self._taps[key]  # (C, h*w, K*oh*ow)
        if channels is not None:
            m = m[channels]
        s = len(delta)
        out = delta.reshape(s, -1).astype(np.float32) @ m.reshape(-1, m.shape[2])
        return _Patch(oy0, oy1, ox0, ox1, out.reshape(s, w.shape[0], oy1 - oy0, ox1 - ox0))

    def _tap_matrix(self, h: int, wd: int, oh: int, ow: int, dy: int, dx: int) -> np.ndarray:
        w = self.weight
        assert w is not None
        k, c, kh, kw = w.shape
        pt, pl = self.pads[0], self.pads[1]
        m = np.zeros((c, h, wd, k, oh, ow), np.float32)
        for iy in range(h):
            for oy in range(oh):
                u = iy + dy - oy + pt  # input row (patch) -> kernel row for output row oy
                if not 0 <= u < kh:
                    continue
                for ix in range(wd):
                    for ox in range(ow):
                        v = ix + dx - ox + pl
                        if 0 <= v < kw:
                            m[:, iy, ix, :, oy, ox] = w[:, :, u, v].T
        return m.reshape(c, h * wd, k * oh * ow)

    out_hw: tuple[int, int] = (0, 0)

    def _maxpool(self, p: _Patch, live: np.ndarray, found: dict[str, np.ndarray]) -> _Patch:
        k = self.kernel
        old_out = found[self.out]  # spatial-major: (H, W, S, C)
        cy0, cy1 = p.y0 // k, min(old_out.shape[0], (p.y1 - 1) // k + 1)
        cx0, cx1 = p.x0 // k, min(old_out.shape[1], (p.x1 - 1) // k + 1)
        window = _region(found[self.inp], cy0 * k, cy1 * k, cx0 * k, cx1 * k,
                         live).astype(np.float32)
        ys, xs = p.y0 - cy0 * k, p.x0 - cx0 * k
        ye, xe = min(p.y1 - cy0 * k, window.shape[2]), min(p.x1 - cx0 * k, window.shape[3])
        window[:, :, ys:ye, xs:xe] += p.delta[:, :, :ye - ys, :xe - xs]
        s, c = window.shape[:2]
        new = window.reshape(s, c, cy1 - cy0, k, cx1 - cx0, k).max(axis=(3, 5))
        return _Patch(cy0, cy1, cx0, cx1, new - _region(old_out, cy0, cy1, cx0, cx1, live))


def _spatial_major(values: np.ndarray) -> np.ndarray:
    """(S, C, H, W) as (H, W, S, C): a patch's rows are then contiguous blocks (reading them
    from the sample-major layout gathers one short run per sample and channel)."""
    return np.ascontiguousarray(values.transpose(2, 3, 0, 1))


def _region(values: np.ndarray, y0: int, y1: int, x0: int, x1: int,
            live: np.ndarray) -> np.ndarray:
    """Rows [y0, y1) x columns [x0, x1) of a spatial-major value for samples ``live``, as
    (S_live, C, h, w)."""
    block = values[y0:y1, x0:x1]
    if len(live) != block.shape[2]:
        block = block[:, :, live]
    return block.transpose(2, 3, 0, 1)


def local_chain(model: onnx.ModelProto, tensor: str) -> list[_Step] | None:
    """The steps from layer output ``tensor`` to a GlobalAveragePool when every node on the
    way is a 2-D Conv (stride 1, no dilation or groups, constant weights), Relu, Clip,
    MaxPool (kernel = stride, no padding) or a QuantizeLinear -> DequantizeLinear pair with
    constant per-tensor parameters, each value read by one node; else None."""
    from onnx import numpy_helper

    g = model.graph
    consts = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in g.node:
        for name in node.input:
            if name:
                readers.setdefault(name, []).append(node)
    shapes = _shapes(model)
    steps: list[_Step] = []
    cur = tensor
    while True:
        rs = readers.get(cur, [])
        if len(rs) != 1:
            return None
        node = rs[0]
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        op = node.op_type
        if op == "GlobalAveragePool":
            if not steps or steps[0].kind != "conv":
                return None
            steps.append(_Step(node, "gap", cur, node.output[0]))
            return steps
        if op == "Conv":
            w = consts.get(node.input[1])
            out_shape = shapes.get(node.output[0])
            if (w is None or w.ndim != 4 or attrs.get("group", 1) != 1
                    or any(v != 1 for v in attrs.get("strides", [1, 1]))
                    or any(v != 1 for v in attrs.get("dilations", [1, 1]))
                    or attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET")
                    or out_shape is None):
                return None
            pads = tuple(attrs.get("pads", [0, 0, 0, 0]))
            step = _Step(node, "conv", cur, node.output[0], weight=w.astype(np.float32),
                         pads=(pads[0], pads[1], pads[2], pads[3]))
            step.out_hw = (out_shape[0], out_shape[1])
            steps.append(step)
        elif op == "Relu":
            steps.append(_Step(node, "relu", cur, node.output[0]))
        elif op == "Clip" and len(node.input) == 3 and node.input[1] in consts \
                and node.input[2] in consts:
            steps.append(_Step(node, "clip", cur, node.output[0],
                               bounds=(float(consts[node.input[1]]),
                                       float(consts[node.input[2]]))))
        elif op == "MaxPool":
            k = attrs.get("kernel_shape", [])
            if (len(k) != 2 or k[0] != k[1] or list(attrs.get("strides", [])) != list(k)
                    or any(attrs.get("pads", [0]))
                    or attrs.get("ceil_mode", 0) or any(v != 1 for v in
                                                        attrs.get("dilations", [1, 1]))):
                return None
            steps.append(_Step(node, "maxpool", cur, node.output[0], kernel=int(k[0])))
        elif op == "QuantizeLinear":
            nxt = readers.get(node.output[0], [])
            if len(nxt) != 1 or nxt[0].op_type != "DequantizeLinear" or len(node.input) < 3:
                return None
            scale, zp = consts.get(node.input[1]), consts.get(node.input[2])
            if scale is None or zp is None or scale.size != 1 or zp.size != 1:
                return None
            info = np.iinfo(zp.dtype)
            steps.append(_Step(node, "quantize", cur, nxt[0].output[0], scale=float(scale),
                               zero_point=int(zp), qrange=(int(info.min), int(info.max))))
            node = nxt[0]
        else:
            return None
        cur = node.output[0]


def _shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    """Spatial (H, W) of every 4-D value shape inference knows."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:
        return {}
    out: dict[str, tuple[int, ...]] = {}
    for v in inferred.graph.value_info:
        dims = v.type.tensor_type.shape.dim
        if len(dims) == 4 and all(d.HasField("dim_value") for d in dims[2:]):
            out[v.name] = (int(dims[2].dim_value), int(dims[3].dim_value))
    return out


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
    out_name = scores_output(faulty.graph)
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


def _digest(ident: dict) -> str:
    """A short digest of the study's identity (stamped on every per-layer file)."""
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def layer_file(out: Path, layer: str) -> Path:
    """The per-layer result file of ``layer``: named by the layer (not by its place in the
    ``--layers`` selection), so that any selection finds the layers already done; a name that
    is not a safe file name gets its slug plus a digest of the name (two names, one slug)."""
    from host.report.plots import slug

    name = slug(layer)
    if name != layer:
        name += "-" + hashlib.sha256(layer.encode()).hexdigest()[:8]
    return out / "layers" / f"{name}.csv"


def _finished(file: Path, layer: str, digest: str):
    """The finished table of ``layer`` in ``file``, or None when there is none; FlipLabError
    when the file holds another layer or another study (never mixed into this one)."""
    import pandas as pd

    if not file.exists():
        return None
    try:
        table = pd.read_csv(file, dtype={"position": str, "study": str, "layer": str})
    except (ValueError, pd.errors.ParserError):
        raise FlipLabError(f"{file} is not a readable criticality table; remove it or choose "
                           f"another --out") from None
    if "study" not in table or set(table["study"]) != {digest} or set(table["layer"]) != {layer}:
        raise FlipLabError(f"{file} holds another study or layer than this one ({layer!r}); "
                           f"remove it or choose another --out")
    return table


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
    digest = _digest(ident)
    study = None
    tables = []
    bar = tqdm(chosen, desc="criticality", unit="layer", disable=not progress)
    for fmt in bar:
        file = layer_file(out, fmt.layer)
        table = _finished(file, fmt.layer, digest)
        if table is not None:
            tables.append(table)
            continue
        if study is None:
            study = FlipStudy(onnx_model, x, y, formats, bit=s.bit, threads=s.threads,
                              progress=progress)
        bar.set_postfix_str(fmt.layer)
        result = study.layer(fmt, s.neurons)
        table = result.table()
        table["method"] = result.method
        table["seconds"] = round(result.seconds, 3)
        table["skipped_pairs"] = result.skipped_pairs
        table["study"] = digest
        buffer = io.StringIO()
        table.to_csv(buffer, index=False)
        write_atomic(file, buffer.getvalue().encode())
        tables.append(table)
        if on_layer is not None:
            on_layer(result)
    correct = study.correct if study is not None else int(tables[0]["correct"].iloc[0])
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
    layers: list[dict[str, Any]] = []
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
    bins = np.linspace(0, max(0.05, float(allrows.failure_rate.max())), 41).tolist()
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
