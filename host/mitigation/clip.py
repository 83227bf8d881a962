"""FT-ClipAct (seed 003): profile ACT_max, replace ReLUs by clipped ReLUs, store thresholds.

The clipped ReLU of seed 003 (Sec. IV-A) is ``f(x) = x if 0 <= x <= T else 0``: an activation
above the threshold T is taken for a fault and mapped to **0, not T**.

- :func:`relu_layers` names the clippable activations: each ReLU node (default domain) whose
  output is not a graph output (the logits are never clipped), keyed by the *layer* that feeds
  it (the Conv / Gemm / MatMul node, as ``host.model`` names layers), else by the ReLU's name.
- :func:`profile_act_max` is the paper's Step 1: the largest ReLU output of each layer on a
  clean data subset, in one onnxruntime pass (the ReLU outputs added as graph outputs).
- :func:`clip_activations` is Step 2, a pure graph -> graph pass: after each selected ReLU
  ``r``, the clip in one of two :data:`FORMS` (docs/clipping.md, bench/bench_clip.py):
  ``fused`` (default: ``Clip(r, 0, T+)``, which onnxruntime fuses into the convolution, then
  an exact correction ``c + Clip(DepthwiseConv(c; -2^24, 2^24 T), -T+, 0)`` that stays in
  onnxruntime's blocked NCHWc layout; NaN stays NaN) or ``where``
  (``Where(LessOrEqual(r, T), r, 0)``; NaN gives 0). Both map +inf to 0. In a QDQ model
  (ReLU -> QuantizeLinear -> DequantizeLinear) the clip, always the ``where`` form, sits
  after the DequantizeLinear, on the integer grid: the threshold
  becomes ``T_int = floor(T / s_y)`` levels above the zero point (clamped to the int range), the
  graph compares against ``float32(T_int) * s_y``, which is exactly what the accelerator's
  ``0 <= y_q - z_y <= T_int`` keeps (docs/clipping.md).
- The thresholds and the profile travel with the model in ONNX ``metadata_props`` (keys
  :data:`ACT_MAX_KEY`, :data:`THRESHOLDS_KEY`, :data:`PROFILE_KEY`, :data:`TUNING_KEY`, values
  JSON).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from host.errors import FlipLabError
from host.model.graph import (
    constant_array,
    copy_model,
    fresh_name,
    producers,
    record_fixed_constants,
    used_names,
    value_elem_type,
)
from host.model.passes import name_unnamed_nodes

ACT_MAX_KEY = "fliplab.clip.act_max"
THRESHOLDS_KEY = "fliplab.clip.thresholds"
PROFILE_KEY = "fliplab.clip.profile"
TUNING_KEY = "fliplab.clip.tuning"
_KEYS = {"act_max": ACT_MAX_KEY, "thresholds": THRESHOLDS_KEY, "profile": PROFILE_KEY,
         "tuning": TUNING_KEY}
#: the name suffix of the clip's last node (the lowering finds the QDQ clip's Where by it)
CLIP_SUFFIX = "/clipped_relu"
#: how a float activation is clipped: ``fused`` (fast; NaN stays NaN) or ``where`` (NaN -> 0)
FORMS = ("fused", "where")
DEFAULT_FORM = "fused"
#: activation types the clip compares (and profiling reads) as float32
_WIDENED = frozenset({TensorProto.FLOAT16, TensorProto.BFLOAT16})
#: the fused form's slope: 2^24 >= T+ / (T+ - T) for every float32 T, so one step above T
#: already reaches -T+ (and a power of two keeps 2^24 * c and 2^24 * T exact)
_SLOPE = 2.0 ** 24
#: the fused form needs 2^24 * T finite; above this T the Where form is used
_FUSED_T_MAX = 2.0 ** 103


#: layer ops whose output, quantised with the int type's lowest zero point, is a ReLU
_LAYER_OPS = frozenset({"Gemm", "Conv", "MatMul", "ConvTranspose", "Add"})


@dataclass(frozen=True)
class ReluLayer:
    """One clippable activation.

    Attributes:
        layer: the key: the node that feeds the ReLU (the layer), else the ReLU's own name.
        relu: the node that is the ReLU: a Relu, or the QuantizeLinear that absorbs it.
        output: the activation ACT_max is taken of (the Relu's output, or the absorbed ReLU's
            DequantizeLinear output).
        q_input: the tensor a QuantizeLinear -> DequantizeLinear pair may quantise (the Relu's
            output; for an absorbed ReLU the layer's output).
    """

    layer: str
    relu: str
    output: str
    q_input: str


def _absorbed_relu(g: onnx.GraphProto, node: onnx.NodeProto, made_by: dict,
                   readers: dict, outputs: set[str]) -> ReluLayer | None:
    """A QuantizeLinear whose zero point is its int type's minimum on a layer's output (QDQ
    exporters absorb the ReLU so: negatives saturate to the zero point, i.e. to 0.0)."""
    if node.op_type != "QuantizeLinear" or len(node.input) < 3 or not node.input[2]:
        return None
    src = made_by.get(node.input[0])
    zp = constant_array(g, node.input[2])
    if src is None or src.op_type not in _LAYER_OPS or zp is None or zp.size != 1:
        return None
    if not np.issubdtype(zp.dtype, np.integer) or int(zp.reshape(-1)[0]) != np.iinfo(zp.dtype).min:
        return None
    dqs = readers.get(node.output[0], [])
    if not dqs or any(d.op_type != "DequantizeLinear" or d.output[0] in outputs for d in dqs):
        return None
    return ReluLayer(src.name, node.name, dqs[0].output[0], node.input[0])


def relu_layers(model: onnx.ModelProto) -> list[ReluLayer]:
    """The ReLUs a clip may replace, in graph order: Relu nodes, and ReLUs absorbed by a
    QuantizeLinear (zero point at the int type's minimum, after a layer). The logits (a ReLU
    whose output, or whose DequantizeLinear's output, is a graph output) are left out. Unnamed
    nodes are named as ``host.model`` names them."""
    g = name_unnamed_nodes(model).graph
    made_by = producers(g)
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in g.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    outputs = {v.name for v in g.output}
    found, taken = [], set()
    for node in g.node:
        if node.domain not in ("", "ai.onnx"):
            continue
        if node.op_type == "Relu" and node.output[0] not in outputs:
            src = made_by.get(node.input[0])
            key = src.name if src is not None and src.name not in taken else node.name
            found.append(ReluLayer(key, node.name, node.output[0], node.output[0]))
            taken.add(key)
            continue
        absorbed = _absorbed_relu(g, node, made_by, readers, outputs)
        if absorbed is not None and absorbed.layer not in taken:
            found.append(absorbed)
            taken.add(absorbed.layer)
    return found


def select_layers(model: onnx.ModelProto, wanted: Iterable[str] | None) -> list[ReluLayer]:
    """The layers named in ``wanted`` (layer or ReLU names; None: all), refusing unknown names."""
    layers = relu_layers(model)
    if not layers:
        raise FlipLabError("the model has no ReLU to clip (the logits are never clipped)")
    if wanted is None:
        return layers
    wanted = list(wanted)
    chosen = [r for r in layers if r.layer in wanted or r.relu in wanted]
    known = {n for r in layers for n in (r.layer, r.relu)}
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise FlipLabError(f"no ReLU-activated layer named {', '.join(map(repr, unknown))}; "
                           f"the model has {', '.join(r.layer for r in layers)}")
    return chosen


# ------------------------------------------------------------------------------ metadata

def read_metadata(model: onnx.ModelProto) -> dict:
    """The clip metadata of a model: ``{"act_max": {...}, "thresholds": {...}, "profile":
    {...}, "tuning": {...}}`` (keys present only when stored)."""
    names = {key: name for name, key in _KEYS.items()}
    out = {}
    for prop in model.metadata_props:
        if prop.key in names:
            try:
                out[names[prop.key]] = json.loads(prop.value)
            except json.JSONDecodeError:
                raise FlipLabError(f"model metadata {prop.key!r} is not valid JSON") from None
    return out


def with_metadata(model: onnx.ModelProto, **entries: dict) -> onnx.ModelProto:
    """A copy of ``model`` with clip metadata set (``act_max=``, ``thresholds=``,
    ``profile=``, ``tuning=``); other metadata is kept."""
    keys = _KEYS
    result = copy_model(model)
    for name, value in entries.items():
        key = keys[name]
        kept = [p for p in result.metadata_props if p.key != key]
        del result.metadata_props[:]
        result.metadata_props.extend(kept)
        result.metadata_props.append(onnx.StringStringEntryProto(key=key, value=json.dumps(value)))
    return result


# ------------------------------------------------------------------------------ Step 1

def profile_act_max(model: onnx.ModelProto, x: np.ndarray, *, batch: int = 4096,
                    threads: int | None = None) -> dict[str, float]:
    """ACT_max of every ReLU-activated layer: the largest ReLU output over samples ``x``.

    One onnxruntime session of the model with the ReLU outputs added as graph outputs, run on
    batches of ``batch`` samples (no per-sample loop).

    Args:
        model: a complete ONNX model (weights as initializers), float or QDQ.
        x: samples shaped for the model input (float32).

    Returns:
        ``{layer: ACT_max}`` in graph order (a float >= 0; 0.0 for a ReLU that never fires).
    """
    import onnxruntime as ort

    from host.executors.ort import session_options

    layers = relu_layers(model)
    if not layers:
        raise FlipLabError("the model has no ReLU to profile (the logits are never clipped)")
    if len(x) == 0:
        raise FlipLabError("profiling needs at least one sample")
    probe = name_unnamed_nodes(model)
    g = probe.graph
    present = {v.name for v in g.output}
    taken = used_names(g)
    read: list[str] = []
    for r in layers:
        name, cast = _compared(r.output, value_elem_type(g, r.output), r.output, taken)
        g.node.extend(cast)  # read as the clip compares it
        read.append(name)
    g.output.extend(helper.make_empty_tensor_value_info(name) for name in read
                    if name not in present)
    try:
        session = ort.InferenceSession(probe.SerializeToString(), session_options(threads),
                                       providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own refusal, as one line
        raise FlipLabError(f"onnxruntime refused the model: {str(exc).splitlines()[0]}") from None
    feed = session.get_inputs()[0].name
    top = np.zeros(len(layers))
    for start in range(0, len(x), batch):
        outs = session.run(read, {feed: x[start:start + batch]})
        top = np.maximum(top, [float(np.max(o)) if o.size else 0.0 for o in outs])
    return {r.layer: float(t) for r, t in zip(layers, top)}


# ------------------------------------------------------------------------------ Step 2

def _qdq_after(g: onnx.GraphProto, relu_out: str) -> list[tuple[onnx.NodeProto, float, int,
                                                                 int]] | None:
    """The DequantizeLinear nodes of ``ReLU -> QuantizeLinear -> DequantizeLinear``, each with
    its scale, zero point and the int range's top ``q_max``; None when ``relu_out`` is not
    quantised right away (a float activation)."""
    readers = [n for n in g.node if relu_out in n.input]
    if len(readers) != 1 or readers[0].op_type != "QuantizeLinear":
        return None
    q = readers[0]
    dqs = [n for n in g.node if q.output[0] in n.input]
    if not dqs or any(n.op_type != "DequantizeLinear" or n.input[0] != q.output[0] for n in dqs):
        return None
    found = []
    for dq in dqs:
        scale = constant_array(g, dq.input[1])
        zp = constant_array(g, dq.input[2]) if len(dq.input) > 2 and dq.input[2] else \
            np.zeros((), np.uint8)
        if scale is None or zp is None or scale.size != 1 or zp.size != 1:
            raise FlipLabError(f"cannot clip {relu_out!r}: its DequantizeLinear needs a constant "
                               f"per-tensor scale and zero point")
        q_max = int(np.iinfo(zp.dtype).max)
        found.append((dq, float(scale.reshape(-1)[0]), int(zp.reshape(-1)[0]), q_max))
    return found


def integer_threshold(t: float, scale: float, zero_point: int, q_max: int) -> int:
    """T on the integer grid of a QDQ activation: ``T_int = floor(T / s_y)`` levels above the
    zero point, clamped to ``[0, q_max - z_y]`` (T = +inf: ``q_max - z_y``, no clip).

    The floor is taken on the grid DequantizeLinear produces: T_int is the largest k with
    ``float32(k) * float32(s_y) <= T``, so a level passes iff its dequantised value is <= T
    (a plain ``floor(T / s_y)`` in floating point can land one level low when T is itself a
    grid value, e.g. an ACT_max profiled on the dequantised activations).
    """
    top = q_max - zero_point
    if math.isinf(t):
        return top
    s = np.float32(scale)
    k = int(min(max(math.floor(t / scale), 0), top))
    while k < top and float(np.float32(k + 1) * s) <= t:
        k += 1
    while k > 0 and float(np.float32(k) * s) > t:
        k -= 1
    return k


def _compared(x: str, elem_type: int, base: str, taken: set[str]
              ) -> tuple[str, list[onnx.NodeProto]]:
    """The value a clip compares for activation ``x``: ``x`` itself, or for a float16 /
    bfloat16 one ``Cast(x, float32)`` (the name and the Cast node; see :func:`_clip_nodes`)."""
    if elem_type not in _WIDENED:
        return x, []
    name = fresh_name(f"{base}/as_float32", taken)
    return name, [helper.make_node("Cast", [x], [name], to=TensorProto.FLOAT, name=name)]


def _clip_nodes(g: onnx.GraphProto, base: str, x: str, out: str, t: float,
                taken: set[str], elem_type: int = TensorProto.FLOAT
                ) -> list[onnx.NodeProto]:
    """The ``where`` form: ``out = Where(LessOrEqual(x, T), x, 0)``, T a float32 initializer
    ``<base>/T`` (float64 for a float64 activation). +inf and NaN (their comparisons with T
    fail: the paper's "otherwise") give 0. Used for QDQ activations (on the grid, never
    infinite or NaN; the lowering reads it), for float activations when asked for
    (``form="where"``) and for activations of another float type than float32.

    A float16 or bfloat16 activation ``x`` is compared as ``Cast(x, float32)``: exact for
    a runtime that computes in float16, and what onnxruntime's CPU provider compares, which
    computes a float16 graph in float32 between the input and the output (it inserts casts
    and removes the ones between its nodes), so an activation it compares is a float32
    value. The 0 is of ``x``'s type."""
    t_name, zero = fresh_name(f"{base}/T", taken), fresh_name(f"{base}/zero", taken)
    keep = fresh_name(f"{base}/at_most_T", taken)
    compared, nodes = _compared(x, elem_type, base, taken)
    dtype = helper.tensor_dtype_to_np_dtype(elem_type)
    g.initializer.extend([
        numpy_helper.from_array(np.array(t, np.float64 if dtype == np.float64 else np.float32),
                                t_name),
        numpy_helper.from_array(np.zeros((), dtype), zero)])
    return nodes + [
        helper.make_node("LessOrEqual", [compared, t_name], [keep],
                         name=fresh_name(f"{base}/LessOrEqual", taken)),
        helper.make_node("Where", [keep, x, zero], [out],
                         name=fresh_name(base + CLIP_SUFFIX, taken)),
    ]


def _conv_channels(g: onnx.GraphProto, node: onnx.NodeProto | None) -> tuple[int, int] | None:
    """(output channels, spatial rank) of a Conv whose weight is an initializer, else None."""
    if node is None or node.op_type != "Conv" or node.domain not in ("", "ai.onnx") \
            or len(node.input) < 2:
        return None
    for tensor in g.initializer:
        if tensor.name == node.input[1]:
            dims = list(tensor.dims)
            return (int(dims[0]), len(dims) - 2) if len(dims) >= 3 and dims[0] > 0 else None
    return None


def _fused_nodes(g: onnx.GraphProto, base: str, r: str, out: str, t: float,
                 conv: tuple[int, int] | None, taken: set[str],
                 fixed: list[str]) -> list[onnx.NodeProto]:
    """The ``fused`` form of ``f(r) = r if r <= T else 0`` after a ReLU output ``r``.

    After a Conv (``conv`` = its channels and spatial rank):

        c = Clip(r, 0, T+)                     T+ = the float32 after T; fused into the Conv
        s = Clip(DepthwiseConv1x1(c; w = -2^24, b = 2^24 T), -T+, 0)
        out = c + s

    For c <= T, ``-2^24 c + 2^24 T >= 0`` (exact products, one monotone rounding) so s = 0 and
    out = c exactly; for c = T+ (every r > T, +inf included) ``2^24 (T+ - T) >= T+`` so
    s = -T+ and out = 0 exactly. Clip keeps c finite, so no inf - inf. onnxruntime fuses the
    first Clip into the convolution and keeps the depthwise Conv, its Clip and the Add in its
    blocked NCHWc layout (no reorder around the clip). A NaN r stays NaN (onnxruntime's Clip
    and Relu propagate it).

    Elsewhere (a Gemm or MatMul layer, a Conv whose weight is not an initializer, T > 2^103):
    ``out = Where(Greater(r, T), 0, r)``: the same values, NaN included (NaN > T is false).

    The correction Conv's weight and bias hold T, not the model's weights: their names are
    appended to ``fixed`` (recorded as fixed constants, which host.model never takes for
    weights, so no codec stores them and no fault reaches them).
    """
    tf = np.float32(t)
    t_up = np.nextafter(tf, np.float32(np.inf))
    zero = fresh_name(f"{base}/zero", taken)
    g.initializer.append(numpy_helper.from_array(np.array(0.0, np.float32), zero))
    if conv is None or t > _FUSED_T_MAX:
        t_name, above = fresh_name(f"{base}/T", taken), fresh_name(f"{base}/above_T", taken)
        g.initializer.append(numpy_helper.from_array(np.array(tf, np.float32), t_name))
        return [helper.make_node("Greater", [r, t_name], [above],
                                 name=fresh_name(f"{base}/Greater", taken)),
                helper.make_node("Where", [above, zero, r], [out],
                                 name=fresh_name(base + CLIP_SUFFIX, taken))]
    channels, rank = conv
    names = {k: fresh_name(f"{base}/{k}", taken) for k in
             ("T_up", "minus_T_up", "slope", "offset", "c", "s_lin", "s")}
    g.initializer.extend([
        numpy_helper.from_array(np.array(t_up, np.float32), names["T_up"]),
        numpy_helper.from_array(np.array(-t_up, np.float32), names["minus_T_up"]),
        numpy_helper.from_array(np.full((channels, 1) + (1,) * rank, -_SLOPE, np.float32),
                                names["slope"]),
        numpy_helper.from_array(np.full(channels, np.float32(_SLOPE) * tf, np.float32),
                                names["offset"])])
    fixed += [names["slope"], names["offset"]]
    return [
        helper.make_node("Clip", [r, zero, names["T_up"]], [names["c"]],
                         name=fresh_name(f"{base}/Clip", taken)),
        helper.make_node("Conv", [names["c"], names["slope"], names["offset"]], [names["s_lin"]],
                         group=channels, kernel_shape=[1] * rank,
                         name=fresh_name(f"{base}/above_T", taken)),
        helper.make_node("Clip", [names["s_lin"], names["minus_T_up"], zero], [names["s"]],
                         name=fresh_name(f"{base}/correction", taken)),
        helper.make_node("Add", [names["c"], names["s"]], [out],
                         name=fresh_name(base + CLIP_SUFFIX, taken)),
    ]


def clip_activations(model: onnx.ModelProto, thresholds: Mapping[str, float], *,
                     form: str = DEFAULT_FORM) -> onnx.ModelProto:
    """Graph pass: replace the ReLU of each layer in ``thresholds`` by the clipped ReLU.

    Float activation (``r = Relu(x)``): the clip takes the ReLU's output name, so the rest of
    the graph is unchanged; ``r <= T`` keeps ``r`` exactly, above T (+inf included) gives 0.
    ``form``: ``fused`` (:func:`_fused_nodes`; NaN stays NaN; T = +inf leaves the ReLU as it
    is) or ``where`` (``Where(LessOrEqual(r, T), r, 0)``; NaN gives 0). T is float32 (float32
    activations). QDQ
    activation: the same two nodes after each DequantizeLinear, with ``T = float32(T_int) * s_y``
    (:func:`integer_threshold`), exactly the product DequantizeLinear computes for
    ``y_q - z_y = T_int``. The clip metadata records ``thresholds`` (merged
    with those already stored). Returns a new model; ``model`` is not modified.

    Raises:
        FlipLabError: a named layer has no clippable ReLU, a threshold is negative or NaN, or a
            ReLU is already clipped.
    """
    if form not in FORMS:
        raise FlipLabError(f"unknown clip form {form!r}: expected one of {', '.join(FORMS)}")
    result = name_unnamed_nodes(model)
    g = result.graph
    by_layer = {r.layer: r for r in relu_layers(result)}
    by_relu = {r.relu: r for r in by_layer.values()}
    chosen: dict[str, float] = {}
    for name, t in thresholds.items():
        r = by_layer.get(name) or by_relu.get(name)
        if r is None:
            raise FlipLabError(f"no ReLU-activated layer named {name!r}; the model has "
                               f"{', '.join(by_layer) or 'none'}")
        t = float(t)
        if math.isnan(t) or t < 0:
            raise FlipLabError(f"clip threshold of {name!r} must be >= 0, got {t!r}")
        chosen[r.layer] = t
    taken = used_names(g)
    made_by = producers(g)
    fixed: list[str] = []
    nodes: list[onnx.NodeProto] = []
    stored = dict(read_metadata(result).get("thresholds", {}))
    clipped = {n.name[:-len(CLIP_SUFFIX)] for n in g.node if n.name.endswith(CLIP_SUFFIX)}
    for layer in chosen:
        if layer in stored or by_layer[layer].relu in clipped or any(
                c.startswith(by_layer[layer].relu + "/") for c in clipped):
            raise FlipLabError(f"layer {layer!r} is already clipped; clip the original model")
    relu_of: dict[str, str] = {by_layer[layer].relu: layer for layer in chosen}
    qdq = {layer: _qdq_after(g, by_layer[layer].q_input) for layer in chosen}
    dq_of = {dq.name: (layer, s, z, qmax) for layer, found in qdq.items() if found
             for dq, s, z, qmax in found}
    for node in g.node:
        relu_layer = relu_of.get(node.name)
        if relu_layer is not None and qdq[relu_layer] is None:
            t = chosen[relu_layer]
            if form == "fused" and math.isinf(t):  # f is the ReLU itself
                nodes.append(node)
                continue
            relu_out = fresh_name(f"{node.output[0]}/relu", taken)
            out = node.output[0]
            relu = onnx.NodeProto()
            relu.CopyFrom(node)
            relu.output[0] = relu_out
            nodes.append(relu)
            elem_type = value_elem_type(g, node.input[0])
            if form == "where" or elem_type not in (TensorProto.FLOAT,
                                                   TensorProto.UNDEFINED):
                nodes += _clip_nodes(g, node.name, relu_out, out, t, taken,
                                     elem_type or TensorProto.FLOAT)
            else:
                conv = _conv_channels(g, made_by.get(node.input[0]))
                nodes += _fused_nodes(g, node.name, relu_out, out, t, conv, taken, fixed)
            continue
        nodes.append(node)
        if node.name in dq_of:
            layer, s, z, qmax = dq_of[node.name]
            t_int = integer_threshold(chosen[layer], s, z, qmax)
            value = float(np.float32(t_int) * np.float32(s))
            out, base = node.output[0], by_layer[layer].relu + "/" + node.name
            dq_out = fresh_name(f"{out}/dequantized", taken)
            clip_out, requantized = (fresh_name(f"{out}/{x}", taken) for x in ("clipped",
                                                                              "requantized"))
            node.output[0] = dq_out
            nodes += _clip_nodes(g, base, dq_out, clip_out, value, taken,
                                 value_elem_type(g, node.input[1]) or TensorProto.FLOAT)
            # back onto the grid (exact: the clip's outputs are grid values), so that the
            # next layer still reads a DequantizeLinear, as QDQ runtimes and the lowering need
            nodes += [helper.make_node("QuantizeLinear", [clip_out, *node.input[1:]],
                                       [requantized], name=fresh_name(f"{base}/requantize", taken)),
                      helper.make_node("DequantizeLinear", [requantized, *node.input[1:]], [out],
                                       name=fresh_name(f"{base}/dequantize", taken))]
    del g.node[:]
    g.node.extend(nodes)
    stored.update(chosen)
    if fixed:  # the correction's Conv weight and bias hold T: not weights of the model
        record_fixed_constants(result, fixed)
    return with_metadata(result, thresholds=stored)


def clipped_layers(model: onnx.ModelProto) -> dict[str, float]:
    """The thresholds a clipped model stores (``{}`` for an unclipped one)."""
    return dict(read_metadata(model).get("thresholds", {}))


def describe_clip(model: onnx.ModelProto | str | os.PathLike) -> dict:
    """What ``host inspect`` shows of a model's activations: each ReLU-activated layer with its
    profiled ACT_max and its clip threshold T (None when absent), and the stored profile and
    tuning. ``model``: a ModelProto (e.g. an image's graph) or an .onnx path."""
    if not isinstance(model, onnx.ModelProto):
        from host.model.reading import read_onnx

        model = read_onnx(Path(model))
    meta = read_metadata(model)
    act_max, thresholds = meta.get("act_max", {}), meta.get("thresholds", {})
    layers = [{"layer": r.layer, "relu": r.relu, "act_max": act_max.get(r.layer),
               "t": thresholds.get(r.layer)} for r in relu_layers(model)]
    out = {"relu_layers": layers}
    for key in ("profile", "tuning"):
        if key in meta:
            out[key] = meta[key]
    return out
