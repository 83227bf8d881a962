"""Layer-wise relevance propagation and feature criticality (seed 002, Schorn et al.).

A model is read from its ONNX graph into a :class:`Chain`, a straight line of numpy steps
(Conv, Gemm, MatMul + Add, MaxPool, AveragePool, GlobalAveragePool, Relu, Flatten / Reshape,
Identity, and activation QuantizeLinear -> DequantizeLinear pairs). Anything else is refused with
a one-line :class:`FlipLabError` naming the op.

- :func:`relevance` is eq. 2, the z+ rule, per sample, and eq. 3, its mean over a data set.
  The rule's choices, where the paper leaves them open:

  * no biases: the rule's denominators hold only ``f · max(0, w)`` (the forward pass keeps the
    biases: ``f`` are the network's real activations);
  * the relevance starts one-hot at the true class on the logits (the output of the last
    weight layer; a final Softmax is skipped);
  * max-pooling: winner takes all (the first maximum of a window in row-major order);
  * average and global-average pooling: proportional to the inputs, ``r_i = f_i / Σ f · r``;
  * ReLU, Flatten, Reshape, Identity and a QuantizeLinear -> DequantizeLinear pair pass the
    relevance through unchanged;
  * a zero denominator gives relevance 0 (that relevance is lost, not conserved).

- :func:`criticality` is eq. 4 (ρ per feature map: eq. 3 summed over the spatial axes) and
  eq. 5 (η per feature map: the next weight layer's ``|w|`` over its output features k,
  weighted by their ρ_k, divided by C·U·V). The *feature layers* are the outputs of the weight
  layers that another weight layer reads (the neuron outputs a fault hits); the logits have ρ
  but no η, the network input has neither.

A Gemm or MatMul read after a Flatten of ``C × M × N`` feature maps sees its input channel c as
the block of M·N inputs of feature map c (its weight viewed as ``[K, C, M·N]``), so η stays per
feature map.

QDQ models (weights through DequantizeLinear of int8 constants, activations through
QuantizeLinear -> DequantizeLinear, as ``onnxruntime.quantization`` and models/train.py write
them) are read with their weights dequantised and the activation quantisation applied in the
forward pass. QOperator models (QLinearConv, QLinearMatMul ...) are refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import helper

from host.errors import FlipLabError
from host.model.graph import constant_array, is_default_domain, producers
from host.model.passes import name_unnamed_nodes
from host.model.reading import read_onnx

#: the ops a chain holds (others are refused)
SUPPORTED_OPS = ("Conv", "Gemm", "MatMul", "Add", "MaxPool", "AveragePool",
                 "GlobalAveragePool", "Relu", "Flatten", "Reshape", "Identity",
                 "QuantizeLinear", "DequantizeLinear", "Softmax")

WEIGHT_KINDS = ("conv", "dense")


@dataclass
class Step:
    """One op of a chain.

    kind: ``conv`` (weight [K, C, U, V]), ``dense`` (weight [K, C_in]), ``maxpool``,
    ``avgpool``, ``gap``, ``relu``, ``reshape``, ``qdq`` (activation fake quantisation).
    node: the ONNX node's name (of the Conv / Gemm / MatMul for a weight layer).
    weight_name / bias_name: the initializers holding the float weight and bias (None when the
    weight comes through a DequantizeLinear); layout: how the initializer is laid out
    (``conv``, ``gemm_t`` [K, C], ``gemm`` / ``matmul`` [C, K]).
    """

    kind: str
    node: str
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    weight_name: str | None = None
    bias_name: str | None = None
    layout: str = ""
    attrs: dict = field(default_factory=dict)
    output: str = ""

    @property
    def is_weight_layer(self) -> bool:
        return self.kind in WEIGHT_KINDS


@dataclass
class Chain:
    """A model as a straight line of steps, from the data input to the logits."""

    steps: list[Step]
    input_name: str
    input_shape: list


# --------------------------------------------------------------------------------- reading


def _attr(node: onnx.NodeProto, name: str, default):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _dequantised(graph: onnx.GraphProto, made_by: dict, name: str) -> np.ndarray | None:
    """A constant's value, through a DequantizeLinear of constants (per tensor or per axis)."""
    value = constant_array(graph, name)
    if value is not None:
        return value
    node = made_by.get(name)
    if node is None or node.op_type != "DequantizeLinear":
        return None
    q = constant_array(graph, node.input[0])
    scale = constant_array(graph, node.input[1])
    zp = constant_array(graph, node.input[2]) if len(node.input) > 2 and node.input[2] else None
    if q is None or scale is None:
        return None
    zp = np.zeros_like(scale, dtype=np.int64) if zp is None else zp.astype(np.int64)
    axis = _attr(node, "axis", 1)
    shape = [1] * q.ndim
    if scale.size > 1:
        shape[axis % q.ndim] = scale.size
    return ((q.astype(np.int64) - zp.reshape(shape)) * scale.reshape(shape)).astype(np.float32)


def _pool_attrs(node: onnx.NodeProto) -> dict:
    kernel = list(_attr(node, "kernel_shape", []))
    if len(kernel) != 2:
        raise FlipLabError(f"{node.op_type} {node.name}: only 2-D pooling is supported")
    strides = list(_attr(node, "strides", kernel))
    pads = list(_attr(node, "pads", [0, 0, 0, 0]))
    if _attr(node, "ceil_mode", 0) or any(d != 1 for d in _attr(node, "dilations", [1, 1])):
        raise FlipLabError(f"{node.op_type} {node.name}: ceil_mode and dilations are not supported")
    if node.op_type == "AveragePool" and any(pads):
        raise FlipLabError(f"AveragePool {node.name}: padded average pooling is not supported")
    return {"kernel": kernel, "strides": strides, "pads": pads}


def _conv_step(graph: onnx.GraphProto, made_by: dict, node: onnx.NodeProto,
               init_names: set[str]) -> Step:
    weight = _dequantised(graph, made_by, node.input[1])
    if weight is None or weight.ndim != 4:
        raise FlipLabError(f"Conv {node.name}: needs a constant 2-D kernel [K, C, U, V]")
    if _attr(node, "group", 1) != 1 or any(d != 1 for d in _attr(node, "dilations", [1, 1])):
        raise FlipLabError(f"Conv {node.name}: grouped or dilated convolutions are not supported")
    if _attr(node, "auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise FlipLabError(f"Conv {node.name}: auto_pad is not supported (give explicit pads)")
    bias = _dequantised(graph, made_by, node.input[2]) if len(node.input) > 2 and node.input[2] \
        else None
    return Step("conv", node.name, weight.astype(np.float32),
                None if bias is None else bias.astype(np.float32),
                node.input[1] if node.input[1] in init_names else None,
                node.input[2] if len(node.input) > 2 and node.input[2] in init_names else None,
                "conv", {"strides": list(_attr(node, "strides", [1, 1])),
                         "pads": list(_attr(node, "pads", [0, 0, 0, 0]))})


def _gemm_step(graph: onnx.GraphProto, made_by: dict, node: onnx.NodeProto,
               init_names: set[str]) -> Step:
    weight = _dequantised(graph, made_by, node.input[1])
    if weight is None or weight.ndim != 2:
        raise FlipLabError(f"Gemm {node.name}: needs a constant 2-D weight as input B")
    if _attr(node, "transA", 0) or _attr(node, "alpha", 1.0) != 1.0 \
            or _attr(node, "beta", 1.0) != 1.0:
        raise FlipLabError(f"Gemm {node.name}: transA, alpha and beta other than 1 are not "
                           f"supported")
    trans = bool(_attr(node, "transB", 0))
    bias = _dequantised(graph, made_by, node.input[2]) if len(node.input) > 2 and node.input[2] \
        else None
    return Step("dense", node.name, (weight if trans else weight.T).astype(np.float32),
                None if bias is None else bias.reshape(-1).astype(np.float32),
                node.input[1] if node.input[1] in init_names else None,
                node.input[2] if len(node.input) > 2 and node.input[2] in init_names else None,
                "gemm_t" if trans else "gemm")


def _data_input(model: onnx.ModelProto) -> onnx.ValueInfoProto:
    inits = {t.name for t in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in inits]
    if len(inputs) != 1:
        raise FlipLabError(f"relevance needs a model with one data input, this one has "
                           f"{len(inputs)}")
    return inputs[0]


def read_chain(model: onnx.ModelProto | str | Path) -> Chain:
    """The model as a :class:`Chain`; FlipLabError for a graph that is not a supported chain."""
    if not isinstance(model, onnx.ModelProto):
        model = read_onnx(model)
    model = name_unnamed_nodes(model)
    g = model.graph
    made_by = producers(g)
    init_names = {t.name for t in g.initializer}
    data = _data_input(model)
    dims = [d.dim_param or (d.dim_value if d.dim_value > 0 else "N")
            for d in data.type.tensor_type.shape.dim]
    if len(g.output) != 1:
        raise FlipLabError(f"relevance needs a model with one output, this one has "
                           f"{len(g.output)}")
    for node in g.node:
        if not is_default_domain(node) or node.op_type not in SUPPORTED_OPS + ("Constant",):
            raise FlipLabError(f"relevance does not support op {node.op_type} (node "
                               f"{node.name}); supported: {', '.join(SUPPORTED_OPS)}")
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in g.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)

    steps: list[Step] = []
    current = data.name
    while current != g.output[0].name:
        nexts = [n for n in readers.get(current, [])]
        if len(nexts) != 1:
            raise FlipLabError(f"relevance needs a straight chain of ops; value {current} is "
                               f"read by {len(nexts)} nodes")
        node = nexts[0]
        op = node.op_type
        if node.input[0] != current:
            raise FlipLabError(f"{op} {node.name}: the data must be its first input")
        if op == "Conv":
            steps.append(_conv_step(g, made_by, node, init_names))
        elif op == "Gemm":
            steps.append(_gemm_step(g, made_by, node, init_names))
        elif op == "MatMul":
            weight = _dequantised(g, made_by, node.input[1])
            if weight is None or weight.ndim != 2:
                raise FlipLabError(f"MatMul {node.name}: needs a constant 2-D weight")
            steps.append(Step("dense", node.name, weight.T.astype(np.float32), None,
                              node.input[1] if node.input[1] in init_names else None, None,
                              "matmul"))
        elif op == "Add":
            bias = _dequantised(g, made_by, node.input[1])
            if bias is None or not steps or steps[-1].kind != "dense" or steps[-1].bias is not None:
                raise FlipLabError(f"Add {node.name}: only a constant bias after a MatMul is "
                                   f"supported")
            steps[-1].bias = bias.reshape(-1).astype(np.float32)
            steps[-1].bias_name = node.input[1] if node.input[1] in init_names else None
            steps[-1].output = node.output[0]
            current = node.output[0]
            continue
        elif op == "MaxPool":
            steps.append(Step("maxpool", node.name, attrs=_pool_attrs(node)))
        elif op == "AveragePool":
            steps.append(Step("avgpool", node.name, attrs=_pool_attrs(node)))
        elif op == "GlobalAveragePool":
            steps.append(Step("gap", node.name))
        elif op == "Relu":
            steps.append(Step("relu", node.name))
        elif op == "Flatten":
            axis = _attr(node, "axis", 1)
            if axis != 1:
                raise FlipLabError(f"Flatten {node.name}: only axis 1 is supported")
            steps.append(Step("reshape", node.name, attrs={"shape": [0, -1]}))
        elif op == "Reshape":
            shape = constant_array(g, node.input[1])
            if shape is None:
                raise FlipLabError(f"Reshape {node.name}: needs a constant shape")
            steps.append(Step("reshape", node.name, attrs={"shape": [int(s) for s in shape]}))
        elif op in ("Identity", "Softmax"):
            if op == "Softmax" and node.output[0] != g.output[0].name:
                raise FlipLabError(f"Softmax {node.name}: only a final Softmax is supported")
            current = node.output[0]
            continue  # a final Softmax is skipped: relevance starts on the logits
        elif op == "QuantizeLinear":
            dq = readers.get(node.output[0], [])
            if len(dq) != 1 or dq[0].op_type != "DequantizeLinear":
                raise FlipLabError(f"QuantizeLinear {node.name}: an activation QuantizeLinear "
                                   f"must feed one DequantizeLinear")
            scale = constant_array(g, node.input[1])
            zp = constant_array(g, node.input[2]) if len(node.input) > 2 and node.input[2] \
                else np.zeros((), np.uint8)
            if scale is None or zp is None or scale.size != 1 or zp.size != 1:
                raise FlipLabError(f"QuantizeLinear {node.name}: needs a constant per-tensor "
                                   f"scale and zero point")
            info = np.iinfo(zp.dtype)
            steps.append(Step("qdq", node.name, attrs={
                "scale": float(scale.reshape(-1)[0]), "zero_point": int(zp.reshape(-1)[0]),
                "lo": int(info.min), "hi": int(info.max)}))
            steps[-1].output = dq[0].output[0]
            current = dq[0].output[0]
            continue
        else:
            raise FlipLabError(f"relevance does not support op {op} here (node {node.name})")
        steps[-1].output = node.output[0]
        current = node.output[0]
    if not any(s.is_weight_layer for s in steps):
        raise FlipLabError("relevance needs a model with at least one Conv, Gemm or MatMul")
    return Chain(steps, data.name, dims)


# ------------------------------------------------------------------------ forward, backward


def _windows(x: np.ndarray, kernel, strides, pads, fill: float) -> tuple[np.ndarray, int, int]:
    """x padded with ``fill``, and the output height and width of the windows over it."""
    t, l, b, r = pads[0], pads[1], pads[2], pads[3]
    xp = np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=fill)
    h = (xp.shape[2] - kernel[0]) // strides[0] + 1
    w = (xp.shape[3] - kernel[1]) // strides[1] + 1
    return xp, h, w


def _offsets(kernel, strides, h: int, w: int) -> Iterator[tuple[int, int, slice, slice]]:
    for u in range(kernel[0]):
        for v in range(kernel[1]):
            yield u, v, slice(u, u + strides[0] * h, strides[0]), \
                slice(v, v + strides[1] * w, strides[1])


def _conv(x: np.ndarray, weight: np.ndarray, strides, pads) -> np.ndarray:
    """Eq. 1 (without bias): x [N, C, H, W], weight [K, C, U, V] -> [N, K, H', W'] (one BLAS
    product over the sliding windows)."""
    xp, h, w = _windows(x, weight.shape[2:], strides, pads, 0.0)
    cols = np.lib.stride_tricks.sliding_window_view(xp, weight.shape[2:], axis=(2, 3))
    cols = cols[:, :, ::strides[0], ::strides[1]][:, :, :h, :w]     # [N, C, H', W', U, V]
    out = np.tensordot(cols, weight, axes=([1, 4, 5], [1, 2, 3]))   # [N, H', W', K]
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def _conv_back(s: np.ndarray, weight: np.ndarray, x_shape, strides, pads) -> np.ndarray:
    """The transpose of :func:`_conv`: Σ_k w[k, c, u, v] · s[k, x, y] scattered to the input."""
    t, l = pads[0], pads[1]
    h, w = s.shape[2:]
    out = np.zeros((x_shape[0], x_shape[1], x_shape[2] + pads[0] + pads[2],
                    x_shape[3] + pads[1] + pads[3]), dtype=np.float64)
    spread = np.tensordot(s, weight, axes=([1], [0]))  # [N, H', W', C, U, V]
    for u, v, su, sv in _offsets(weight.shape[2:], strides, h, w):
        out[:, :, su, sv] += spread[:, :, :, :, u, v].transpose(0, 3, 1, 2)
    return out[:, :, t:t + x_shape[2], l:l + x_shape[3]]


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a / b, 0 where b is 0 (the zero-denominator choice)."""
    out = np.zeros(np.broadcast(a, b).shape, dtype=np.float64)
    np.divide(a, b, out=out, where=b != 0)
    return out


def forward_step(step: Step, x: np.ndarray) -> np.ndarray:
    """One step of the forward pass in float64 (biases included)."""
    if step.kind == "conv":
        assert step.weight is not None
        y = _conv(x, step.weight.astype(np.float64), step.attrs["strides"], step.attrs["pads"])
        return y if step.bias is None else y + step.bias.reshape(1, -1, 1, 1)
    if step.kind == "dense":
        assert step.weight is not None
        y = x @ step.weight.T.astype(np.float64)
        return y if step.bias is None else y + step.bias
    if step.kind == "relu":
        return np.maximum(x, 0.0)
    if step.kind == "gap":
        return x.mean(axis=(2, 3), keepdims=True)
    if step.kind in ("maxpool", "avgpool"):
        a = step.attrs
        xp, h, w = _windows(x, a["kernel"], a["strides"], a["pads"],
                            -np.inf if step.kind == "maxpool" else 0.0)
        patches = [xp[:, :, su, sv] for _, _, su, sv in _offsets(a["kernel"], a["strides"], h, w)]
        return np.max(patches, axis=0) if step.kind == "maxpool" else np.mean(patches, axis=0)
    if step.kind == "reshape":
        return x.reshape(_target_shape(step.attrs["shape"], x.shape))
    if step.kind == "qdq":
        a = step.attrs
        q = np.clip(np.rint(x / a["scale"]) + a["zero_point"], a["lo"], a["hi"])
        return (q - a["zero_point"]) * a["scale"]
    raise AssertionError(step.kind)


def _target_shape(shape: list[int], have: tuple[int, ...]) -> list[int]:
    return [have[i] if s == 0 else s for i, s in enumerate(shape)]


def backward_step(step: Step, x: np.ndarray, y: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Eq. 2 through one step: the relevance of its input ``x`` from that of its output ``y``."""
    if step.kind == "conv":
        assert step.weight is not None
        wp = np.maximum(step.weight.astype(np.float64), 0.0)
        z = _conv(x, wp, step.attrs["strides"], step.attrs["pads"])
        return x * _conv_back(_safe_div(r, z), wp, x.shape, step.attrs["strides"],
                              step.attrs["pads"])
    if step.kind == "dense":
        assert step.weight is not None
        wp = np.maximum(step.weight.astype(np.float64), 0.0)
        return x * (_safe_div(r, x @ wp.T) @ wp)
    if step.kind in ("relu", "qdq"):
        return r
    if step.kind == "reshape":
        return r.reshape(x.shape)
    if step.kind == "gap":
        return x * _safe_div(r, x.sum(axis=(2, 3), keepdims=True))
    a = step.attrs
    if step.kind == "avgpool":
        xp, h, w = _windows(x, a["kernel"], a["strides"], a["pads"], 0.0)
        z = np.sum([xp[:, :, su, sv] for _, _, su, sv in
                    _offsets(a["kernel"], a["strides"], h, w)], axis=0)
        s = _safe_div(r, z)
        back = np.zeros_like(xp, dtype=np.float64)
        for _, _, su, sv in _offsets(a["kernel"], a["strides"], h, w):
            back[:, :, su, sv] += s
        return x * back
    if step.kind == "maxpool":  # winner takes all: the first maximum of each window
        xp, h, w = _windows(x, a["kernel"], a["strides"], a["pads"], -np.inf)
        back = np.zeros_like(xp, dtype=np.float64)
        taken = np.zeros(y.shape, dtype=bool)
        for _, _, su, sv in _offsets(a["kernel"], a["strides"], h, w):
            win = (xp[:, :, su, sv] == y) & ~taken
            back[:, :, su, sv] += np.where(win, r, 0.0)
            taken |= win
        t, l = a["pads"][0], a["pads"][1]
        return back[:, :, t:t + x.shape[2], l:l + x.shape[3]]
    raise AssertionError(step.kind)


def forward(chain: Chain, x: np.ndarray) -> list[np.ndarray]:
    """The input and every step's output, in float64."""
    values = [np.asarray(x, dtype=np.float64)]
    for step in chain.steps:
        values.append(forward_step(step, values[-1]))
    return values


def relevance_per_sample(chain: Chain, x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    """Eq. 2 for each sample: the relevance of every value of :func:`forward` (same shapes),
    one-hot at the true class ``y`` on the logits."""
    values = forward(chain, x)
    logits = values[-1].reshape(len(x), -1)
    labels = np.asarray(y, dtype=np.int64)
    if labels.shape != (len(x),) or labels.min(initial=0) < 0 \
            or labels.max(initial=0) >= logits.shape[1]:
        raise FlipLabError(f"labels must be {len(x)} class indices below {logits.shape[1]}")
    r = np.zeros_like(logits)
    r[np.arange(len(x)), labels] = 1.0
    relevances = [r.reshape(values[-1].shape)]
    for step, xi, yi in zip(reversed(chain.steps), reversed(values[:-1]), reversed(values[1:])):
        relevances.append(backward_step(step, xi, yi, relevances[-1]))
    return relevances[::-1]


# --------------------------------------------------------------------------------- eq. 3-5


@dataclass
class FeatureLayer:
    """The output feature maps of one weight layer (eq. 4 ρ, eq. 5 η per feature map).

    name: the weight layer's node; position: the index of the chain value whose relevance
    gives ρ (the tensor the next weight layer reads, after activation and pooling, or the
    logits); shape: that tensor's shape per sample; eta is None for the logits.
    """

    name: str
    position: int
    shape: tuple[int, ...]
    rho: np.ndarray
    eta: np.ndarray | None = None
    next_layer: str | None = None

    @property
    def neurons(self) -> int:
        return int(np.prod(self.shape))

    def to_json(self) -> dict:
        return {"layer": self.name, "shape": list(self.shape), "neurons": self.neurons,
                "next_layer": self.next_layer, "rho": self.rho.tolist(),
                "eta": None if self.eta is None else self.eta.tolist()}


def weight_positions(chain: Chain) -> list[int]:
    return [i for i, s in enumerate(chain.steps) if s.is_weight_layer]


def _feature_position(chain: Chain, layer_index: int) -> int:
    """The chain value the next weight layer reads (or the logits): the value index right
    before the next weight step (the last value for the last layer), skipping reshapes so that
    ρ is taken on the feature maps, not a flattened vector."""
    later = [i for i in weight_positions(chain) if i > layer_index]
    end = later[0] if later else len(chain.steps)
    position = end
    while position > layer_index + 1 and chain.steps[position - 1].kind == "reshape":
        position -= 1
    return position


def channel_view(weight: np.ndarray, channels: int) -> np.ndarray:
    """A weight as [K, C, rest]: a conv kernel [K, C, U, V], or a dense weight [K, C·M·N] read
    after a Flatten of C feature maps."""
    k = weight.shape[0]
    fits = weight.shape[1] % channels == 0 if weight.ndim == 2 else weight.shape[1] == channels
    if not fits:
        raise FlipLabError(f"a weight of shape {list(weight.shape)} does not read {channels} "
                           f"feature maps")
    return weight.reshape(k, channels, -1)


def eta_of(weight: np.ndarray, rho_next: np.ndarray, channels: int) -> np.ndarray:
    """Eq. 5: η_c = Σ_{k,u,v} |w_kcuv| / (K·U·V) · ρ_k for the ``channels`` input feature maps."""
    w = np.abs(channel_view(weight, channels).astype(np.float64))
    return np.einsum("kcr,k->c", w, rho_next) / (w.shape[0] * w.shape[2])


def mean_relevance(chain: Chain, x: np.ndarray, y: np.ndarray, *, batch: int = 256,
                   progress: Callable[[int], None] | None = None) -> list[np.ndarray]:
    """Eq. 3: the mean over the samples of every value's relevance (per-sample shapes)."""
    if len(x) == 0:
        raise FlipLabError("relevance needs at least one sample")
    total: list[np.ndarray] | None = None
    for start in range(0, len(x), batch):
        rs = relevance_per_sample(chain, x[start:start + batch], y[start:start + batch])
        sums = [r.sum(axis=0) for r in rs]
        total = sums if total is None else [a + b for a, b in zip(total, sums)]
        if progress is not None:
            progress(min(batch, len(x) - start))
    assert total is not None
    return [t / len(x) for t in total]


def criticality(chain: Chain, x: np.ndarray, y: np.ndarray, *, batch: int = 256,
                progress: Callable[[int], None] | None = None) -> list[FeatureLayer]:
    """Eq. 4 and eq. 5 for every weight layer's output feature maps (see :class:`FeatureLayer`)."""
    mean_r = mean_relevance(chain, x, y, batch=batch, progress=progress)
    positions = weight_positions(chain)
    layers = []
    for index in positions:
        pos = _feature_position(chain, index)
        r = mean_r[pos]
        rho = r.reshape(r.shape[0], -1).sum(axis=1) if r.ndim >= 2 else r  # eq. 4
        layers.append(FeatureLayer(chain.steps[index].node, pos, tuple(r.shape), rho))
    for this, following, index in zip(layers, layers[1:], positions[1:]):
        weight = chain.steps[index].weight
        assert weight is not None
        this.eta = eta_of(weight, following.rho, this.shape[0])
        this.next_layer = following.name
    return layers


def convergence_measure(layers: list[FeatureLayer]) -> float:
    """The paper's Fig. 5b measure (1/L)·Σ_l SD(η^(l) / mean η^(l)) over the L feature layers
    that have η (population SD; a layer whose η are all 0 counts as 0)."""
    values = []
    for layer in layers:
        if layer.eta is None:
            continue
        mean = layer.eta.mean()
        values.append(float(np.std(layer.eta / mean)) if mean > 0 else 0.0)
    if not values:
        raise FlipLabError("the model has no feature layer followed by a weight layer")
    return float(np.mean(values))


def bottleneck_advice(chain: Chain, layers: list[FeatureLayer], *, ratio: float = 0.05
                      ) -> list[str]:
    """The paper's architecture advice (Sec. IV-A, V-E1): a hidden feature layer with fewer
    than ``ratio`` times the neurons of the largest one is a bottleneck; a global average
    pooling followed by a 1×1 conv or dense layer can move after that layer instead."""
    hidden = [layer for layer in layers if layer.eta is not None]
    if not hidden:
        return []
    largest = max(layer.neurons for layer in hidden)
    notes = []
    for layer in hidden:
        if layer.neurons >= ratio * largest:
            continue
        gap_here = layer.position > 0 and chain.steps[layer.position - 1].kind == "gap"
        note = (f"layer {layer.name}: its output holds only {layer.neurons} neurons "
                f"(largest hidden layer: {largest}); a bit flip there is not averaged out and "
                f"drives the worst-case failure rate")
        if gap_here:
            note += (f". The global average pooling before {layer.next_layer} can move after "
                     f"it (the paper's architecture change): same weights, same function (the "
                     f"1x1 layer is linear), and the stored layer grows to C x M x N neurons")
        notes.append(note)
    return notes


def load_samples(model_path: str | Path, data: str, normalize: str, samples: int | None,
                 split: str) -> tuple[np.ndarray, np.ndarray]:
    """The data set D of eq. 3 shaped for the model's input (``split``: train or test)."""
    from host.data.dataset import load_dataset
    from host.mitigation.tolerance import model_input_shape

    return load_dataset(data, input_shape=model_input_shape(model_path), split=split,
                        normalize=normalize, samples=samples)


def relevance_report(model_path: str | Path, x: np.ndarray, y: np.ndarray, *,
                     progress: bool = False) -> dict:
    """``host relevance``: ρ and η per feature map per layer, the Fig. 5b measure and the
    bottleneck advice, as a JSON-ready dict."""
    from tqdm import tqdm

    chain = read_chain(model_path)
    with tqdm(total=len(x), desc="LRP", unit="sample", disable=not progress) as bar:
        layers = criticality(chain, x, y, progress=bar.update)
    return {"model": str(model_path), "samples": int(len(x)),
            "mean_sd_normalised_eta": convergence_measure(layers),
            "layers": [layer.to_json() for layer in layers],
            "advice": bottleneck_advice(chain, layers)}
