"""Lowering: an ONNX model (as a :class:`host.model.WeightSet`) -> the accelerator's layer program.

Two model families are lowered (docs/datapath.md, "Layer program"):

- **int8 QDQ MLPs** (``digits_mlp_int8``): Gemm layers whose weight is a per-channel symmetric
  int8 DequantizeLinear, whose bias is an int32 DequantizeLinear with scale = input scale x
  weight scale, whose input is a QuantizeLinear/DequantizeLinear pair and whose output goes
  (optionally through a Relu) into a QuantizeLinear. Activation zero points are handled exactly:
  the accelerator holds activations relative to their zero point (``a = x_q - z``, 9 bits) and
  saturates each layer to ``[-128 - z_y, 127 - z_y]``.
- **binarized MLPs** (``digits_bnn``): MatMul layers on Sign(weight) and +-1 activations,
  ``GreaterOrEqual(z, tau) -> Where(+1, -1)`` between layers, ``Mul(scale) + Add(offset)`` after
  the last one. The weights are stored neuron-major ([out, in]): a graph pass transposes the
  weight slot and inserts a Transpose node so that onnxruntime reads the same image.

What is *metadata* and what is *payload* (docs/decisions.md#2): only the weights go into the
noisy payload. Biases, requantisation multipliers/shifts, saturation bounds, clip thresholds,
the BNN's integer thresholds and the last layer's float affine live in the program (the image's
CRC-protected table); the int8 model's bias tensors are moved out of the payload into the graph
as constant initializers, so onnxruntime and the RTL read the same (uncorrupted) biases.

The program is finalised against the packed image (:func:`attach_program`): each layer then
names its weight tensor's ``bit_offset``, field width ``q`` and parity mode, and codecs the
hardware cannot read are refused with a :class:`FlipLabError` naming the codec.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import onnx
from onnx import helper

from host.errors import FlipLabError
from host.hw.requant import quantize_multiplier
from host.model import WeightSet, with_weights_as_initializers
from host.model.graph import constant_array, copy_model, fresh_name, producers, used_names

PROGRAM_FORMAT = "fliplab-accel-program"
PROGRAM_VERSION = 1
#: codecs the weight loader reads, per layer type: spec -> (field bits q, parity mode)
INT8_CODECS = {"int8": (8, False), "parity(int8)": (9, True)}
BINARY_CODECS = {"sign": (1, False), "parity(sign)": (2, True)}


def _consumers(graph: onnx.GraphProto) -> dict[str, list[onnx.NodeProto]]:
    out: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            out.setdefault(name, []).append(node)
    return out


def _scalar(graph: onnx.GraphProto, name: str, what: str) -> float:
    value = constant_array(graph, name)
    if value is None or value.size != 1:
        raise FlipLabError(f"cannot lower: {what} ({name!r}) is not a constant scalar")
    return float(value.reshape(-1)[0])


def _only(nodes: list[onnx.NodeProto], op_type: str, what: str) -> onnx.NodeProto:
    if len(nodes) != 1 or nodes[0].op_type != op_type:
        found = ", ".join(n.op_type for n in nodes) or "nothing"
        raise FlipLabError(f"cannot lower: expected {what} to feed one {op_type}, found {found}")
    return nodes[0]


def _attr(node: onnx.NodeProto, name: str, default: float) -> float:
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


# ------------------------------------------------------------------------------- int8 QDQ

def _clipped_relu_between(g: onnx.GraphProto, made_by: dict, dq_x: onnx.NodeProto | None,
                          expected_input: str) -> int | None:
    """The integer threshold T_int of a clipped ReLU that host.mitigation.clip put between a
    layer's QuantizeLinear output ``expected_input`` and the next layer's DequantizeLinear
    ``dq_x``: ``DQ -> Where(LessOrEqual(x, T), x, 0) -> QuantizeLinear -> DQ``, all with the
    same scale s and zero point, T = float32(T_int) * s. None when there is no clip."""
    from host.mitigation.clip import CLIP_SUFFIX

    if dq_x is None or dq_x.op_type != "DequantizeLinear":
        return None
    q2 = made_by.get(dq_x.input[0])
    sub = made_by.get(q2.input[0]) if q2 is not None and q2.op_type == "QuantizeLinear" else None
    if sub is None or sub.op_type != "Where" or not sub.name.endswith(CLIP_SUFFIX):
        return None
    cmp, dq = made_by.get(sub.input[0]), made_by.get(sub.input[1])
    zero = constant_array(g, sub.input[2])
    if cmp is None or cmp.op_type != "LessOrEqual" or cmp.input[0] != sub.input[1] \
            or zero is None or np.any(zero != 0) \
            or dq is None or dq.op_type != "DequantizeLinear" or dq.input[0] != expected_input:
        raise FlipLabError(f"cannot lower the clipped ReLU {sub.name!r}: not the form "
                           f"host clip writes")
    assert q2 is not None  # sub was found through it
    params = [(_scalar(g, n.input[1], "a clip scale"), _scalar(g, n.input[2], "a clip zero "
                                                               "point")) for n in (dq, q2, dq_x)]
    if len(set(params)) != 1:
        raise FlipLabError(f"cannot lower the clipped ReLU {sub.name!r}: its QuantizeLinear / "
                           f"DequantizeLinear pairs differ in scale or zero point")
    scale = np.float32(params[0][0])
    alpha = np.float32(_scalar(g, cmp.input[1], "a clip threshold"))
    t_int = int(round(float(alpha / scale)))
    if np.float32(t_int) * scale != alpha:
        raise FlipLabError(f"cannot lower the clipped ReLU {sub.name!r}: its threshold {alpha} "
                           f"is not on the activation grid (step {scale})")
    return t_int


def _lower_int8(ws: WeightSet) -> tuple[WeightSet, dict]:
    g = ws.graph.graph
    made_by, used_by = producers(g), _consumers(g)
    by_name = {t.name: t for t in ws.tensors}
    gemms = [n for n in g.node if n.op_type in ("Gemm", "MatMul")]
    q_in = _only(used_by.get(ws.input_name, []), "QuantizeLinear", "the model input")
    in_scale = _scalar(g, q_in.input[1], "the input scale")
    in_zp = int(_scalar(g, q_in.input[2], "the input zero point"))
    layers: list[dict] = []
    biases: dict = {}
    expected_input = q_in.output[0]
    for k, node in enumerate(gemms):
        if node.op_type != "Gemm" or _attr(node, "transB", 0) != 1 or _attr(node, "transA", 0) \
                or _attr(node, "alpha", 1.0) != 1.0 or _attr(node, "beta", 1.0) != 1.0:
            raise FlipLabError(f"cannot lower layer {node.name!r}: the int8 path takes Gemm "
                               f"with transB=1, alpha=beta=1")
        dq_x = made_by.get(node.input[0])
        clip = _clipped_relu_between(g, made_by, dq_x, expected_input) if k > 0 else None
        if clip is not None:  # the previous layer's clipped ReLU (seed 003), host.mitigation.clip
            if not 0 <= clip <= layers[-1]["hi"]:
                raise FlipLabError(f"cannot lower layer {layers[-1]['name']!r}: clip threshold "
                                   f"{clip} is outside 0..{layers[-1]['hi']}")
            layers[-1].update(act=True, t=clip)
        elif dq_x is None or dq_x.op_type != "DequantizeLinear" or dq_x.input[0] != expected_input:
            raise FlipLabError(f"cannot lower layer {node.name!r}: its input is not the "
                               f"dequantised output of the previous layer")
        assert dq_x is not None  # both branches above make sure of it
        x_scale = _scalar(g, dq_x.input[1], "an activation scale")
        x_zp = int(_scalar(g, dq_x.input[2], "an activation zero point"))
        q_x = made_by[expected_input]
        if (_scalar(g, q_x.input[1], "an activation scale"), _scalar(
                g, q_x.input[2], "an activation zero point")) != (x_scale, x_zp):
            raise FlipLabError(f"cannot lower layer {node.name!r}: its input is dequantised "
                               f"with other parameters than it was quantised with")
        dq_w = made_by.get(node.input[1])
        if dq_w is None or dq_w.op_type != "DequantizeLinear" or dq_w.input[0] not in by_name:
            raise FlipLabError(f"cannot lower layer {node.name!r}: weight is not a QDQ int8 tensor")
        w = by_name[dq_w.input[0]]
        if w.values.dtype != np.int8 or w.values.ndim != 2:
            raise FlipLabError(f"cannot lower layer {node.name!r}: weight {w.name!r} is "
                               f"{w.values.dtype}{list(w.values.shape)}, not a 2-D int8 tensor")
        if w.quant is None:
            raise FlipLabError(f"cannot lower layer {node.name!r}: weight {w.name!r} has no "
                               f"quantisation parameters")
        w_scale = np.asarray(w.quant["scale"], dtype=np.float64).reshape(-1)
        if np.any(np.asarray(w.quant["zero_point"]) != 0):
            raise FlipLabError(f"cannot lower layer {node.name!r}: weight zero points must be 0 "
                               f"(symmetric weights; a nulled weight must contribute nothing)")
        n_out, n_in = (int(d) for d in w.values.shape)
        w_scale = np.broadcast_to(w_scale, (n_out,))
        bias = np.zeros(n_out, dtype=np.int64)
        if len(node.input) > 2 and node.input[2]:
            dq_b = made_by.get(node.input[2])
            if dq_b is None or dq_b.op_type != "DequantizeLinear" or dq_b.input[0] not in by_name:
                raise FlipLabError(f"cannot lower layer {node.name!r}: bias is not a QDQ int32 "
                                   f"tensor")
            b = by_name[dq_b.input[0]]
            if b.quant is None:
                raise FlipLabError(f"cannot lower layer {node.name!r}: bias {b.name!r} has no "
                                   f"quantisation parameters")
            b_scale = np.broadcast_to(np.asarray(b.quant["scale"], np.float64).reshape(-1), (n_out,))
            if not np.allclose(b_scale, x_scale * w_scale, rtol=1e-5, atol=0.0) \
                    or np.any(np.asarray(b.quant["zero_point"]) != 0):
                raise FlipLabError(f"cannot lower layer {node.name!r}: bias scale is not input "
                                   f"scale x weight scale with zero point 0")
            bias = b.values.astype(np.int64).reshape(n_out)
            biases[b.name] = b.values
        nxt = used_by.get(node.output[0], [])
        act = False
        if len(nxt) == 1 and nxt[0].op_type == "Relu":
            act = True
            nxt = used_by.get(nxt[0].output[0], [])
        q_out = _only(nxt, "QuantizeLinear", f"layer {node.name!r}")
        y_scale = _scalar(g, q_out.input[1], "an output scale")
        y_zp = int(_scalar(g, q_out.input[2], "an output zero point"))
        lo, hi = -128 - y_zp, 127 - y_zp
        if act:  # a Relu before the QuantizeLinear: y_q - z_y >= 0 is the ReLU
            lo = max(lo, 0)
        if not -256 <= lo <= 0 <= hi <= 255:
            raise FlipLabError(f"cannot lower layer {node.name!r}: output zero point {y_zp} "
                               f"puts the int8 range outside [-256, 255] relative to it")
        mult, shift = zip(*(quantize_multiplier(float(x_scale * ws_ / y_scale)) for ws_ in w_scale))
        layers.append({
            "name": node.name, "type": "int8", "n_in": n_in, "n_out": n_out, "weight": w.name,
            "bias": bias.tolist(), "m": list(mult), "s": list(shift), "lo": lo, "hi": hi,
            "act": False, "t": hi, "out_zero_point": y_zp, "out_scale": y_scale,
            "in_zero_point": x_zp,
        })
        dq_next = used_by.get(q_out.output[0], [])
        expected_input = q_out.output[0]
        if k == len(gemms) - 1:
            dq_last = _only(dq_next, "DequantizeLinear", "the last layer's output")
            if dq_last.output[0] != ws.output_name:
                raise FlipLabError("cannot lower: operations after the last layer's "
                                   "DequantizeLinear are not supported")
    if not layers:
        raise FlipLabError("cannot lower: the model has no Gemm layer")
    program = {
        "format": PROGRAM_FORMAT, "version": PROGRAM_VERSION,
        "input": {"kind": "int8", "scale": in_scale, "zero_point": in_zp},
        "output": {"kind": "int8", "zero_point": layers[-1]["out_zero_point"],
                   "scale": layers[-1]["out_scale"]},
        "layers": layers,
    }
    graph = with_weights_as_initializers(ws.graph, biases)
    kept = [t for t in ws.tensors if t.name not in biases]
    return replace(ws, tensors=kept, graph=graph), program


# ------------------------------------------------------------------------------- binarized

def transpose_weight_slot(model: onnx.ModelProto, name: str, consumer: str) -> onnx.ModelProto:
    """Graph pass: the weight slot ``name`` [in, out] becomes [out, in] and a Transpose node
    (perm 1, 0) restores [in, out] for its consumer node ``consumer``. Returns a new model."""
    m = copy_model(model)
    g = m.graph
    taken = used_names(g)
    t_out = fresh_name(f"{name}.neuron_major_T", taken)
    for vi in g.value_info:
        if vi.name == name:
            dims = vi.type.tensor_type.shape.dim
            if len(dims) != 2:
                raise FlipLabError(f"cannot lower: weight {name!r} is not 2-D")
            a, b = dims[0].dim_value, dims[1].dim_value
            dims[0].dim_value, dims[1].dim_value = b, a
            break
    else:
        raise FlipLabError(f"cannot lower: the graph has no weight slot {name!r}")
    index = None
    for i, node in enumerate(g.node):
        if node.name == consumer:
            node.input[:] = [t_out if x == name else x for x in node.input]
            index = i
    if index is None:
        raise FlipLabError(f"cannot lower: no node named {consumer!r}")
    g.node.insert(index, helper.make_node("Transpose", [name], [t_out], perm=[1, 0],
                                          name=fresh_name(f"{consumer}.weight_transpose", taken)))
    return m


def _check_bipolar(g: onnx.GraphProto, where: onnx.NodeProto) -> None:
    """A ``Where(c, +1, -1)``: the +-1 activation the binarized datapath's bits stand for."""
    plus, minus = constant_array(g, where.input[1]), constant_array(g, where.input[2])
    if plus is None or minus is None or np.any(plus != 1) or np.any(minus != -1):
        raise FlipLabError(f"cannot lower: {where.name!r} must be Where(condition, +1, -1)")


def _lower_binary(ws: WeightSet) -> tuple[WeightSet, dict]:
    g = ws.graph.graph
    used_by = _consumers(g)
    by_name = {t.name: t for t in ws.tensors}
    ge_in = _only(used_by.get(ws.input_name, []), "GreaterOrEqual", "the model input")
    at = _scalar(g, ge_in.input[1], "the input binarisation threshold")
    where_in = _only(used_by.get(ge_in.output[0], []), "Where", "the input comparison")
    _check_bipolar(g, where_in)
    expected_input = where_in.output[0]
    matmuls = [n for n in g.node if n.op_type == "MatMul"]
    layers, graph, tensors = [], ws.graph, list(ws.tensors)
    output: dict = {}
    for k, node in enumerate(matmuls):
        if node.input[0] != expected_input or node.input[1] not in by_name:
            raise FlipLabError(f"cannot lower layer {node.name!r}: not a binarized MatMul on the "
                               f"previous layer's +-1 output")
        w = by_name[node.input[1]]
        if not w.binarized or w.values.ndim != 2:
            raise FlipLabError(f"cannot lower layer {node.name!r}: weight {w.name!r} is not a "
                               f"binarized 2-D tensor")
        n_in, n_out = (int(d) for d in w.values.shape)
        nxt = used_by.get(node.output[0], [])
        layer = {"name": node.name, "type": "binary", "n_in": n_in, "n_out": n_out,
                 "weight": w.name}
        if k < len(matmuls) - 1:
            ge = _only(nxt, "GreaterOrEqual", f"layer {node.name!r}")
            tau = constant_array(g, ge.input[1])
            if tau is None or np.any(tau != np.round(tau)):
                raise FlipLabError(f"cannot lower layer {node.name!r}: thresholds are not "
                                   f"integer constants")
            tau = np.broadcast_to(np.asarray(tau, np.float64).reshape(-1), (n_out,))
            tau = np.clip(tau, -n_in - 1, n_in + 1).astype(np.int64)
            where = _only(used_by.get(ge.output[0], []), "Where", f"layer {node.name!r}")
            _check_bipolar(g, where)
            layer.update({"out": "bits", "tau": tau.tolist()})
            expected_input = where.output[0]
        else:
            mul = _only(nxt, "Mul", f"the last layer {node.name!r}")
            add = _only(used_by.get(mul.output[0], []), "Add", "the last layer's Mul")
            scale = constant_array(g, mul.input[1])
            offset = constant_array(g, add.input[1])
            if scale is None or offset is None or add.output[0] != ws.output_name:
                raise FlipLabError("cannot lower: the last layer must end in Mul(constant) + "
                                   "Add(constant) -> the model output")
            layer.update({"out": "z"})
            output = {"kind": "affine",
                      "scale": np.broadcast_to(scale.astype(np.float32).reshape(-1),
                                               (n_out,)).tolist(),
                      "offset": np.broadcast_to(offset.astype(np.float32).reshape(-1),
                                                (n_out,)).tolist()}
        layers.append(layer)
        graph = transpose_weight_slot(graph, w.name, node.name)
        tensors = [replace(t, values=np.ascontiguousarray(t.values.T), channel_axis=0)
                   if t.name == w.name else t for t in tensors]
    if not layers:
        raise FlipLabError("cannot lower: the model has no MatMul layer")
    program = {"format": PROGRAM_FORMAT, "version": PROGRAM_VERSION,
               "input": {"kind": "binary", "threshold": at}, "output": output, "layers": layers}
    return replace(ws, tensors=tensors, graph=graph), program


def lower_model(ws: WeightSet) -> tuple[WeightSet, dict]:
    """Lower a loaded model to the accelerator: ``(weight set to pack, unfinished program)``.

    The returned weight set holds only the tensors that go into the payload (the weights),
    in the layout the hardware reads (neuron-major), with a graph onnxruntime can run on them.
    Finish the program with :func:`attach_program` once the image is packed.

    Raises:
        FlipLabError: the model is neither an int8 QDQ MLP nor a binarized MLP of the forms
            above (the message names what does not fit).
    """
    if any(t.binarized for t in ws.tensors):
        return _lower_binary(ws)
    if any(np.issubdtype(t.values.dtype, np.integer) for t in ws.tensors):
        return _lower_int8(ws)
    raise FlipLabError("cannot lower a float model: the accelerator runs int8 QDQ models "
                       "(quantise it first) and binarized models")


def attach_program(program: dict, tensors: list) -> dict:
    """The finished program: each layer gains its weight tensor's ``bit_offset``, ``codec``,
    field width ``q`` and ``parity`` mode, read from the packed image's tensor table.

    Raises:
        FlipLabError: a layer's weight is missing from the table, or stored in a codec the
            weight loader cannot read (int8 layers: int8, parity(int8); binarized layers:
            sign, parity(sign)).
    """
    entries = {t.name: t for t in tensors}
    out = dict(program)
    out["layers"] = []
    for layer in program["layers"]:
        entry = entries.get(layer["weight"])
        if entry is None:
            raise FlipLabError(f"layer {layer['name']!r}: weight {layer['weight']!r} is not in "
                               f"the image")
        table = INT8_CODECS if layer["type"] == "int8" else BINARY_CODECS
        if entry.codec not in table:
            raise FlipLabError(
                f"layer {layer['name']!r}: codec {entry.codec!r} is not supported by the "
                f"accelerator ({layer['type']} layers take {', '.join(table)})")
        q, parity = table[entry.codec]
        out["layers"].append({**layer, "bit_offset": int(entry.bit_offset), "codec": entry.codec,
                              "q": q, "parity": parity})
    return out

