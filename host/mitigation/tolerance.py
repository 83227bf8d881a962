"""The bit-error tolerance T^b of a binarized network, without fault injection (seed 004).

For every *sign layer* (a MatMul, Gemm or Conv whose output goes through a sign activation)
the pre-activation ``h`` of neuron n at position (u, v) for sample i gives the local error
tolerance (eq. 2, and eq. 6 for a layer whose inputs are 0…Z rather than ±1)::

    T[i, n, u, v] = |h - s_n - 1/2| / Z

and, for a level b, the share of positions with ``T >= b`` per neuron (eq. 3), its mean over
the neurons of the network (eq. 4) and over the data set (eq. 5). Theorem 1: where
``T >= b`` at every position, any ⌊b/2⌋ weight sign flips of the neuron leave its output
unchanged.

The threshold s_n is read from the graph in the three forms users export:

- ``GreaterOrEqual(h, tau) -> Where(+1, -1)`` (FlipLab's folded form, models/digits_bnn):
  +1 iff ``h >= tau``, so ``s = tau - 1``;
- ``BatchNormalization -> Sign`` or ``-> BipolarQuant`` (QONNX): +1 iff ``BN(h) >= 0``, i.e.
  ``h >= c`` with ``c = mean - beta * sqrt(var + eps) / gamma`` for gamma > 0 (``s = ceil(c)
  - 1``) and ``h <= c`` for gamma < 0 (``s = floor(c)``, the sense of the neuron reversed:
  ``|h - s - 1/2|`` is still the distance to the decision boundary); gamma = 0 makes the
  output constant, T = inf;
- ``Sign`` / ``BipolarQuant`` directly (s = -1: +1 iff h >= 0).

A constant bias (Gemm's C, Conv's B, or an Add of a constant before the activation) moves the
threshold. The ties ``BN(h) = 0`` count as +1, as in the accelerator's folding
(:func:`host.hw.dense.fold_batchnorm`). Where a layer's inputs are integers (±1 after a sign,
or integer data), h is an integer and the formula is eq. 2/6 exactly; where they are real (a
first layer on unit-scaled data), the boundary is c itself: ``T = |h - c| / Z``, the same
distance in the input's own units. Z is 1 for ±1 inputs and ``max |x|`` over the data set for a
layer that reads the data.

One onnxruntime pass over the data computes it: :func:`host.model.passes.expose_values` adds
the pre-activations (and the inputs of data-reading layers) as graph outputs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from tqdm import tqdm

from host.errors import FlipLabError
from host.model.graph import constant_array, consumers, is_bipolar_quant, is_default_domain
from host.model.passes import expose_values, lower_bipolar_quant, name_unnamed_nodes
from host.model.reading import read_onnx

LAYER_OPS = ("MatMul", "Gemm", "Conv")
#: ops that only move a value around: a layer reading the data through them reads the data
_SHAPE_OPS = frozenset({"Reshape", "Flatten", "Transpose", "Identity", "Squeeze", "Unsqueeze"})


@dataclass(frozen=True)
class SignLayer:
    """One sign layer as read from the graph.

    Attributes:
        name: the layer node's name.
        h: the value holding the pre-activation (the layer node's output).
        x: the layer's data input value.
        neuron_axis: 1 for Conv (NCHW), -1 for MatMul / Gemm.
        kind: ``threshold``, ``batchnorm`` or ``sign``.
        c: per-neuron real boundary: +1 iff ``sense * (h - c) >= 0``; NaN for a constant neuron.
        sense: per-neuron +1 or -1 (-1: gamma < 0).
        reads_data: True when the layer's input is the model input (through shape-only ops).
        node_bias: per-neuron bias the layer node itself adds (Gemm's C, Conv's B), taken off
            its output to give h.
    """

    name: str
    h: str
    x: str
    neuron_axis: int
    kind: str
    c: np.ndarray
    sense: np.ndarray
    reads_data: bool
    node_bias: np.ndarray

    def pre_activation(self, output: np.ndarray) -> np.ndarray:
        """h, shape (samples, positions, neurons), from the layer node's output."""
        h = np.moveaxis(np.asarray(output), self.neuron_axis, -1)
        h = h.reshape(len(h), -1, h.shape[-1])
        return h - self.node_bias.astype(h.dtype) if self.node_bias.any() else h


def _single(readers: list) -> onnx.NodeProto | None:
    return readers[0][0] if len(readers) == 1 else None


def _const(graph: onnx.GraphProto, name: str) -> np.ndarray | None:
    value = constant_array(graph, name)
    return None if value is None else np.asarray(value, dtype=np.float64)


def _reads_data(graph: onnx.GraphProto, value: str, data_input: str) -> bool:
    made_by = {out: node for node in graph.node for out in node.output}
    while value != data_input:
        node = made_by.get(value)
        if node is None or node.op_type not in _SHAPE_OPS or not is_default_domain(node):
            return False
        value = node.input[0]
    return True


def find_sign_layers(model: onnx.ModelProto, data_input: str) -> list[SignLayer]:
    """The sign layers of a named graph, in graph order (see the module docstring).

    Raises:
        FlipLabError: the model has none.
    """
    graph = model.graph
    readers = consumers(graph)
    layers = []
    for node in graph.node:
        if node.op_type not in LAYER_OPS or not is_default_domain(node):
            continue
        axis = 1 if node.op_type == "Conv" else -1
        bias: np.ndarray | float = 0.0
        node_bias = np.zeros(1)
        if node.op_type in ("Gemm", "Conv") and len(node.input) > 2 and node.input[2]:
            b = _const(graph, node.input[2])
            if b is None:
                continue
            bias = node_bias = b.reshape(-1)
        out = node.output[0]
        nxt = _single(readers.get(out, []))
        if nxt is not None and nxt.op_type == "Add" and is_default_domain(nxt):
            other = nxt.input[1] if nxt.input[0] == out else nxt.input[0]
            b = _const(graph, other)
            if b is not None:
                bias = bias + b.reshape(-1)
                out = nxt.output[0]
                nxt = _single(readers.get(out, []))
        if nxt is None:
            continue
        kind, c, sense = _activation(graph, readers, nxt, out)
        if kind is None:
            continue
        layers.append(SignLayer(
            name=node.name, h=node.output[0], x=node.input[0], neuron_axis=axis, kind=kind,
            c=np.asarray(c - bias, dtype=np.float64).reshape(-1), sense=sense.reshape(-1),
            reads_data=_reads_data(graph, node.input[0], data_input), node_bias=node_bias))
    if not layers:
        raise FlipLabError("the model has no sign layer (a MatMul, Gemm or Conv followed by "
                           "GreaterOrEqual -> Where, BatchNormalization -> Sign/BipolarQuant, "
                           "or Sign/BipolarQuant): T^b is defined for binarized networks")
    return layers


def _is_sign(node: onnx.NodeProto) -> bool:
    return is_bipolar_quant(node) or (node.op_type == "Sign" and is_default_domain(node))


def _activation(graph: onnx.GraphProto, readers: dict, node: onnx.NodeProto,
                value: str) -> tuple[str | None, np.ndarray, np.ndarray]:
    """(kind, c, sense) of the activation starting at ``node`` that reads ``value``."""
    one = np.ones(1)
    if _is_sign(node) and node.input[0] == value:
        return "sign", np.zeros(1), one
    if node.op_type == "GreaterOrEqual" and is_default_domain(node) and node.input[0] == value:
        tau = _const(graph, node.input[1])
        where = _single(readers.get(node.output[0], []))
        if tau is None or where is None or where.op_type != "Where":
            return None, one, one
        pos, neg = _const(graph, where.input[1]), _const(graph, where.input[2])
        if pos is None or neg is None or not (np.all(pos > 0) and np.all(neg < 0)):
            return None, one, one
        return "threshold", tau, np.ones_like(tau)
    if node.op_type == "BatchNormalization" and is_default_domain(node) and node.input[0] == value:
        params = [_const(graph, name) for name in node.input[1:5]]
        after = _single(readers.get(node.output[0], []))
        if any(p is None for p in params) or after is None or not _is_sign(after):
            return None, one, one
        gamma, beta, mean, var = (np.asarray(p).reshape(-1) for p in params)
        eps = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)
        std = np.sqrt(var + eps)
        with np.errstate(divide="ignore", invalid="ignore"):
            c = np.where(gamma != 0, mean - beta * std / np.where(gamma != 0, gamma, 1.0), np.nan)
        sense = np.where(gamma > 0, 1.0, np.where(gamma < 0, -1.0, np.where(beta >= 0, 1.0, -1.0)))
        return "batchnorm", c, sense
    return None, one, one


def local_tolerance(h: np.ndarray, c: np.ndarray, sense: np.ndarray, z: float,
                    integer: bool) -> np.ndarray:
    """T = |h - s - 1/2| / Z (eq. 2 and 6) with neurons on the last axis of ``h``.

    ``integer``: h takes integer values, so the boundary lies half-way between the last
    integer of one output and the first of the other (``s + 1/2``); otherwise it is c itself.
    A neuron with c = NaN (gamma = 0) has a constant output: T = inf.
    """
    if integer:
        beta = np.where(sense > 0, np.ceil(c) - 0.5, np.floor(c) + 0.5)
    else:
        beta = c
    # float32 holds integer h (|h| < 2**24) and half-integer boundaries exactly
    beta = np.where(np.isnan(c), np.inf, beta).astype(np.float32)
    with np.errstate(invalid="ignore"):
        t = np.abs(np.asarray(h, dtype=np.float32) - beta)
    if z != 1:
        t /= np.float32(z)
    return t


def tolerance_share(t: np.ndarray, b: float) -> np.ndarray:
    """Eq. 3: for T of shape (samples, positions..., neurons), the share of positions with
    T >= b, shape (samples, neurons)."""
    ok = (t >= b).reshape(t.shape[0], -1, t.shape[-1])
    return ok.sum(axis=1, dtype=np.int32) / ok.shape[1]


@dataclass
class LayerTolerance:
    """T^b of one sign layer: ``t_b[b]`` the layer's mean (eq. 4 over its neurons, eq. 5),
    ``per_neuron[b]`` T^b_n averaged over the data set, ``z`` its Z, ``mean_t`` the mean of
    the finite T."""

    name: str
    kind: str
    neurons: int
    positions: int
    z: float
    t_b: dict[float, float] = field(default_factory=dict)
    per_neuron: dict[float, np.ndarray] = field(default_factory=dict)
    mean_t: float = 0.0


@dataclass
class ToleranceReport:
    """T^b of a network for each level b: ``overall[b]`` (eq. 5, neurons of all sign layers
    pooled as eq. 4 says), ``per_sample[b]`` T_i^b (eq. 4), and each layer's share."""

    bs: list[float]
    samples: int
    layers: list[LayerTolerance]
    overall: dict[float, float]
    per_sample: dict[float, np.ndarray]

    def to_json(self) -> dict:
        def key(b: float) -> str:
            return f"{b:g}"

        return {
            "b": self.bs, "samples": self.samples,
            "T_b": {key(b): self.overall[b] for b in self.bs},
            "per_sample": {key(b): {"min": float(self.per_sample[b].min()),
                                    "median": float(np.median(self.per_sample[b])),
                                    "max": float(self.per_sample[b].max())} for b in self.bs},
            "layers": [{"name": la.name, "kind": la.kind, "neurons": la.neurons,
                        "positions": la.positions, "Z": la.z, "mean_T": la.mean_t,
                        "T_b": {key(b): la.t_b[b] for b in self.bs},
                        "per_neuron": {key(b): [round(float(v), 6) for v in la.per_neuron[b]]
                                       for b in self.bs}}
                       for la in self.layers],
        }

    def table(self) -> str:
        head = "layer".ljust(24) + "kind".ljust(11) + "neurons".rjust(8) + "Z".rjust(6) + \
            "".join(f"T^{b:g}".rjust(10) for b in self.bs)
        rows = [head]
        for la in self.layers:
            rows.append(la.name[:23].ljust(24) + la.kind.ljust(11) + f"{la.neurons:8d}"
                        + f"{la.z:6g}" + "".join(f"{la.t_b[b]:10.4f}" for b in self.bs))
        rows.append("network".ljust(24) + "".ljust(11)
                    + f"{sum(la.neurons for la in self.layers):8d}" + "".ljust(6)
                    + "".join(f"{self.overall[b]:10.4f}" for b in self.bs))
        rows.append(f"({self.samples} samples; T^b = share of neuron positions with T >= b)")
        return "\n".join(rows)


def _data_input_name(model: onnx.ModelProto) -> str:
    constants = {t.name for t in model.graph.initializer}
    inputs = [v.name for v in model.graph.input if v.name not in constants]
    if len(inputs) != 1:
        raise FlipLabError(f"the model must have exactly one data input, it has {len(inputs)}")
    return inputs[0]


def parse_levels(spec: str) -> list[float]:
    """``"32,64,128"`` -> [32.0, 64.0, 128.0]; each b >= 0."""
    try:
        bs = [float(part) for part in spec.split(",") if part.strip()]
    except ValueError:
        raise FlipLabError(f"--b {spec!r}: expected numbers separated by commas") from None
    if not bs or any(not math.isfinite(b) or b < 0 for b in bs):
        raise FlipLabError(f"--b {spec!r}: expected one or more levels b >= 0")
    return bs


def _prepared(model_path: str | Path) -> tuple:
    """(session, data input name, sign layers, exposed value names) of a BNN file."""
    import onnxruntime as ort

    model = name_unnamed_nodes(read_onnx(model_path))
    data_name = _data_input_name(model)
    layers = find_sign_layers(model, data_name)
    extra = [la.h for la in layers] + [la.x for la in layers if not la.reads_data]
    runnable = expose_values(lower_bipolar_quant(model), extra)
    try:
        session = ort.InferenceSession(runnable.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
        raise FlipLabError(f"onnxruntime refused the model: {str(exc).splitlines()[0]}") from None
    return session, data_name, layers, extra


def pre_activations(model_path: str | Path, x: np.ndarray) -> dict[str, np.ndarray]:
    """The pre-activation h of every sign layer (by layer name) for samples ``x``, read in
    one onnxruntime pass, without the node's own bias; neurons on the last axis (a Conv's
    (samples, H, W, channels))."""
    session, data_name, layers, extra = _prepared(model_path)
    values = dict(zip(extra, session.run(extra, {data_name: x})))
    return {la.name: la.pre_activation(values[la.h]).reshape(
        np.moveaxis(values[la.h], la.neuron_axis, -1).shape) for la in layers}


def tolerance(model_path: str | Path, x: np.ndarray, bs: Sequence[float], *,
              batch_size: int = 2048, progress: bool = False) -> ToleranceReport:
    """T^b of the BNN at ``model_path`` on samples ``x`` (shaped for the model input).

    Raises:
        FlipLabError: unreadable model, no sign layer, or a layer whose inputs are neither ±1
            nor the data.
    """
    bs = [float(b) for b in bs]
    if len(x) == 0:
        raise FlipLabError("no samples to compute T^b on")
    session, data_name, layers, extra = _prepared(model_path)
    data_z = float(np.max(np.abs(x))) or 1.0
    data_integer = bool(np.all(x == np.round(x)))
    n = len(x)
    per_sample = {b: np.zeros(n) for b in bs}
    per_neuron: list[dict[float, np.ndarray]] = [{} for _ in layers]
    t_sum = [0.0] * len(layers)
    t_count = [0] * len(layers)
    shapes: list[tuple[int, int]] = [(0, 0)] * len(layers)
    zs = [1.0] * len(layers)
    starts = range(0, n, batch_size)
    for start in tqdm(starts, desc="T^b", unit="batch", disable=not progress):
        chunk = x[start:start + batch_size]
        values = dict(zip(extra, session.run(extra, {data_name: chunk})))
        for k, la in enumerate(layers):
            if la.reads_data:
                z, integer = data_z, data_integer
            else:
                magnitude = np.abs(values[la.x])
                a = float(magnitude.flat[0]) if magnitude.size else 1.0
                if not np.all(magnitude == a) or a == 0:
                    raise FlipLabError(f"layer {la.name!r}: its inputs are neither ±a nor the "
                                       f"data, so T (eq. 2/6) is not defined for it")
                z, integer = a, a == 1.0
            h = la.pre_activation(values[la.h])
            if la.c.size not in (1, h.shape[-1]):
                raise FlipLabError(f"layer {la.name!r}: {la.c.size} thresholds for "
                                   f"{h.shape[-1]} neurons")
            t = local_tolerance(h, la.c, la.sense, z, integer)
            constant = np.isnan(la.c)
            if constant.any():
                finite = t[..., ~np.broadcast_to(constant, (t.shape[-1],))]
            else:
                finite = t
            t_sum[k] += float(finite.sum(dtype=np.float64))
            t_count[k] += finite.size
            positions = h.shape[1]
            shapes[k] = (positions, h.shape[2])
            for b in bs:
                ok = t >= b                                         # (chunk, positions, neurons)
                per_sample[b][start:start + len(chunk)] += ok.sum(axis=(1, 2)) / positions
                per_neuron[k][b] = per_neuron[k].get(b, 0) + ok.sum(axis=(0, 1)) / positions
            zs[k] = z
    total_neurons = sum(s[1] for s in shapes)
    results = []
    for k, la in enumerate(layers):
        positions, neurons = shapes[k]
        pn = {b: per_neuron[k][b] / n for b in bs}
        results.append(LayerTolerance(
            name=la.name, kind=la.kind, neurons=neurons, positions=positions,
            z=zs[k], t_b={b: float(pn[b].mean()) for b in bs},
            per_neuron=pn, mean_t=t_sum[k] / max(t_count[k], 1)))
    samples = {b: per_sample[b] / total_neurons for b in bs}
    return ToleranceReport(bs=bs, samples=n, layers=results,
                           overall={b: float(samples[b].mean()) for b in bs}, per_sample=samples)


def model_input_shape(model_path: str | Path) -> list:
    """The data input's shape (symbolic dims as str) of the model at ``model_path``."""
    from host.model.loader import data_input_spec

    return data_input_spec(read_onnx(model_path))[0]
