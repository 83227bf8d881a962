"""Activations as stored in the accelerator's buffers: per-layer dynamic fixed point, and the
graph pass that puts fault points at the layer outputs.

**Where.** A *layer output* is what a layer writes to the activation buffer (seed 002, Table I):
the output of a Conv / ConvTranspose / Gemm / MatMul node after the element-wise ops and local
pooling that follow it (bias Add / Mul by a constant, BatchNormalization, Relu, LeakyRelu, Clip,
Sigmoid, Tanh, MaxPool, AveragePool, an existing QuantizeLinear / DequantizeLinear), as long
as each tensor on the way has exactly one reader and is not a graph output; a global pooling
node (GlobalAveragePool, GlobalMaxPool) is a layer of its own. The model output (the logits)
is a layer output too. Layers are named as ``host.model`` names them (the weight node's name).

**Format.** :class:`FixedPoint`: ``bits`` stored bits (2..8), ``frac`` fraction bits f, signed
(two's complement) or unsigned; a code ``q`` stands for ``q * 2**-f``. The *range rule*
(:func:`range_rule`): the integer bits ``I`` are the smallest integer with
``max|a| < 2**I`` over the calibration data (``I = frexp(max|a|)[1]``, 0 when the layer is
all zero); the fraction bits are the rest, ``f = bits - I - 1`` (signed) or ``bits - I``
(unsigned). ``I`` may be negative (f > bits) or exceed the width (f < 0). The largest code
is then ``2**I - 2**-f``: the profiled maximum is at most one LSB above it.

**Pass.** :func:`insert_fault_points` puts, at each chosen layer output ``t``,
``[Clip ->] QuantizeLinear -> BitwiseXor(mask) -> DequantizeLinear`` and gives the result the
name ``t`` (the producer's output is renamed), so every reader, and a graph output, sees the
stored value. The mask is a new graph input of the code type (int8 / uint8) shaped
``[mask_batch, *layer shape]``: batch 1 broadcasts one mask over all samples. A narrower
width than 8 is clipped to its range in float first and stored sign-extended in the int8 code,
so flipping its MSB flips bits ``bits-1 .. 7`` of the int8 (host.activations.faults builds the
masks so). A zero mask gives exactly the graph with only Quantize/Dequantize.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from host.errors import FlipLabError
from host.model.feeding import weight_slots
from host.model.graph import copy_model, default_opset, fresh_name, used_names, value_elem_type
from host.model.passes import name_unnamed_nodes

#: stored bits of one activation: the int8 / uint8 code holds 2..8 of them
MIN_BITS, MAX_BITS = 2, 8
#: model metadata key of the formats :func:`insert_fault_points` used (JSON list)
FORMATS_KEY = "fliplab.activations.formats"
#: BitwiseXor is in the standard opset from 18 on
XOR_OPSET = 18

LAYER_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})
GLOBAL_POOL_OPS = frozenset({"GlobalAveragePool", "GlobalMaxPool"})
#: ops that stay part of a layer (element-wise with constants, activations, local pooling)
CHAIN_OPS = frozenset({"Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh", "HardSigmoid", "Elu",
                       "BatchNormalization", "MaxPool", "AveragePool", "QuantizeLinear",
                       "DequantizeLinear"})
#: binary ops that stay part of a layer when their other operand is a constant (a bias)
CONSTANT_OPERAND_OPS = frozenset({"Add", "Mul", "Sub", "Div"})


@dataclass(frozen=True)
class FixedPoint:
    """A dynamic fixed-point format: ``bits`` stored bits, ``frac`` fraction bits.

    A code ``q`` (an integer in ``[qmin, qmax]``) stands for ``q * 2**-frac``. Signed codes are
    two's complement: ``[-2**(bits-1), 2**(bits-1) - 1]``; unsigned ``[0, 2**bits - 1]``.
    """

    bits: int
    frac: int
    signed: bool = True

    def __post_init__(self) -> None:
        check_bits(self.bits)

    @property
    def scale(self) -> float:
        """Value of one LSB, ``2**-frac``."""
        return math.ldexp(1.0, -self.frac)

    @property
    def integer_bits(self) -> int:
        """I = bits - frac - sign bit."""
        return self.bits - self.frac - (1 if self.signed else 0)

    @property
    def qmin(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def qmax(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def dtype(self) -> np.dtype:
        """The container of a code: int8 (signed) or uint8 (unsigned)."""
        return np.dtype(np.int8 if self.signed else np.uint8)

    def quantize(self, values: np.ndarray) -> np.ndarray:
        """Codes of ``values`` (round half to even, saturating), as QuantizeLinear computes."""
        q = np.rint(np.asarray(values, np.float64) / self.scale)
        return np.clip(q, self.qmin, self.qmax).astype(self.dtype)

    def dequantize(self, codes: np.ndarray) -> np.ndarray:
        """Values of ``codes`` (float32)."""
        return (np.asarray(codes).astype(np.float32) * np.float32(self.scale)).astype(np.float32)

    def flip_mask(self, bit: int | str) -> int:
        """The XOR mask (on the int8 / uint8 container) that flips stored bit ``bit``
        (0 = LSB, ``bits-1`` or ``"msb"`` = MSB). For a signed code narrower than 8 bits the
        MSB is sign-extended, so its mask covers bits ``bits-1 .. 7``."""
        b = self.bits - 1 if bit == "msb" else bit
        if isinstance(b, bool) or not isinstance(b, int) or not 0 <= b < self.bits:
            raise FlipLabError(f"bit {bit!r} is outside the {self.bits}-bit code "
                               f"(0 .. {self.bits - 1} or msb)")
        if self.signed and b == self.bits - 1:
            return (0xFF << b) & 0xFF
        return 1 << b


def check_bits(bits: object) -> int:
    """``bits`` as an int in [MIN_BITS, MAX_BITS], else a one-line FlipLabError."""
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) \
            or not MIN_BITS <= bits <= MAX_BITS:
        raise FlipLabError(f"activation bits must be an integer from {MIN_BITS} to {MAX_BITS} "
                           f"(an int8 / uint8 code), got {bits!r}")
    return int(bits)


def range_rule(max_abs: float, bits: int = 8, signed: bool = True) -> FixedPoint:
    """The format of a layer whose largest magnitude is ``max_abs``: integer bits
    ``I = frexp(max_abs)[1]`` (the smallest I with ``max_abs < 2**I``; 0 for 0), fraction
    bits the rest."""
    bits = check_bits(bits)
    if not math.isfinite(max_abs) or max_abs < 0:
        raise FlipLabError(f"the profiled activation magnitude {max_abs!r} is not a finite "
                           f"number >= 0")
    integer = math.frexp(max_abs)[1] if max_abs > 0 else 0
    return FixedPoint(bits, bits - integer - (1 if signed else 0), signed)


@dataclass(frozen=True)
class ActivationLayer:
    """A layer output: ``name`` (the layer) and ``tensor`` (the value it writes)."""

    name: str
    tensor: str


@dataclass(frozen=True)
class ActivationFormat:
    """One fault point: the layer, its tensor, the shape of one sample's output, the profiled
    ``max_abs`` and the format the range rule gives."""

    layer: str
    tensor: str
    shape: tuple[int, ...]
    max_abs: float
    format: FixedPoint

    @property
    def neurons(self) -> int:
        """Activations of one sample at this layer."""
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def mask_name(self) -> str:
        """The graph input of this fault point's XOR mask."""
        return f"{self.layer}/act_mask"

    def to_json(self) -> dict:
        d = asdict(self)
        d["shape"] = list(self.shape)
        return d

    @classmethod
    def from_json(cls, d: dict) -> ActivationFormat:
        return cls(d["layer"], d["tensor"], tuple(d["shape"]), float(d["max_abs"]),
                   FixedPoint(**d["format"]))


def _constant_names(model: onnx.ModelProto) -> set[str]:
    g = model.graph
    names = {t.name for t in g.initializer} | set(weight_slots(model))  # slots: a WeightSet graph
    names.update(o for n in g.node if n.op_type == "Constant" for o in n.output)
    return names


def activation_layers(model: onnx.ModelProto) -> list[ActivationLayer]:
    """Every layer output of ``model``, in graph order (see the module docstring)."""
    named = name_unnamed_nodes(model)
    g = named.graph
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in g.node:
        for name in node.input:
            if name:
                readers.setdefault(name, []).append(node)
    outputs = {v.name for v in g.output}
    constants = _constant_names(named)
    found: list[ActivationLayer] = []
    for node in g.node:
        if node.domain not in ("", "ai.onnx") or not node.output:
            continue
        if node.op_type not in LAYER_OPS | GLOBAL_POOL_OPS:
            continue
        tensor = node.output[0]
        while tensor not in outputs and len(readers.get(tensor, [])) == 1:
            nxt = readers[tensor][0]
            if nxt.op_type in CONSTANT_OPERAND_OPS:
                others = [i for i in nxt.input if i != tensor]
                if len(others) != 1 or others[0] not in constants:
                    break
            elif nxt.op_type not in CHAIN_OPS or nxt.input[0] != tensor:
                break
            tensor = nxt.output[0]
        found.append(ActivationLayer(node.name, tensor))
    return found


def select_layers(model: onnx.ModelProto, wanted: str | Iterable[str] | None = "all"
                  ) -> list[ActivationLayer]:
    """The layer outputs named in ``wanted`` (``"all"`` / None: every one; else layer names,
    a comma list or an iterable), in graph order.

    Raises:
        FlipLabError: the model has no layer output, or a name is unknown.
    """
    layers = activation_layers(model)
    if not layers:
        raise FlipLabError("the model has no layer outputs to put activation faults in (no "
                           "Conv, Gemm, MatMul or global pooling node)")
    if wanted is None or wanted == "all":
        return layers
    names = [w.strip() for w in (wanted.split(",") if isinstance(wanted, str) else wanted)
             if w.strip()]
    known = {layer.name for layer in layers}
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise FlipLabError(f"no layer output named {', '.join(map(repr, unknown)) or '(none)'}; "
                           f"the model has {', '.join(layer.name for layer in layers)}")
    return [layer for layer in layers if layer.name in names]


def profile_formats(model: onnx.ModelProto, x: np.ndarray, layers: Sequence[ActivationLayer],
                    *, bits: int = 8, signed: bool = True, batch: int = 1024,
                    threads: int | None = None) -> list[ActivationFormat]:
    """The range rule applied to ``layers`` of the complete ``model`` (weights as
    initializers) over calibration samples ``x``: one onnxruntime pass, the layer outputs
    exposed as graph outputs."""
    import onnxruntime as ort

    from host.executors.ort import DISABLED_OPTIMIZERS, ort_reason, session_options
    from host.model.passes import expose_values

    bits = check_bits(bits)
    if len(x) == 0:
        raise FlipLabError("profiling the activation ranges needs at least one sample")
    probe = expose_values(name_unnamed_nodes(model), [layer.tensor for layer in layers])
    try:
        session = ort.InferenceSession(probe.SerializeToString(), session_options(threads),
                                       providers=["CPUExecutionProvider"],
                                       disabled_optimizers=DISABLED_OPTIMIZERS)
    except Exception as exc:  # onnxruntime's own refusal, as one line
        raise FlipLabError(f"onnxruntime refused the model: {ort_reason(exc)}") from None
    feed = session.get_inputs()[0].name
    top = np.zeros(len(layers))
    shapes: list[tuple[int, ...]] = [()] * len(layers)
    for start in range(0, len(x), batch):
        outs = session.run([layer.tensor for layer in layers], {feed: x[start:start + batch]})
        for k, out in enumerate(outs):
            top[k] = max(top[k], float(np.max(np.abs(out))) if out.size else 0.0)
            shapes[k] = tuple(int(d) for d in out.shape[1:])
    return [ActivationFormat(layer.name, layer.tensor, shape, float(m),
                             range_rule(float(m), bits, signed))
            for layer, shape, m in zip(layers, shapes, top)]


def _to_xor_opset(model: onnx.ModelProto) -> onnx.ModelProto:
    if default_opset(model) >= XOR_OPSET:
        return model
    from onnx import version_converter

    # a WeightSet graph lacks its weights (value_info slots): the converter needs them
    # defined, so zeros stand in for them and the slots are restored afterwards
    slots = weight_slots(model)
    placeholder = copy_model(model)
    for name, value in slots.items():
        t = value.type.tensor_type
        placeholder.graph.initializer.append(numpy_helper.from_array(np.zeros(
            [d.dim_value for d in t.shape.dim], helper.tensor_dtype_to_np_dtype(t.elem_type)),
            name))
    try:
        converted = version_converter.convert_version(placeholder, XOR_OPSET)
    except Exception as exc:  # the converter's refusal, as one line
        raise FlipLabError(f"activation faults need ONNX opset >= {XOR_OPSET} (BitwiseXor); "
                           f"converting the model from opset {default_opset(model)} failed: "
                           f"{' '.join(str(exc).split())[:200]}") from None
    if slots:
        g = converted.graph
        kept = [t for t in g.initializer if t.name not in slots]
        del g.initializer[:]
        g.initializer.extend(kept)
        g.value_info.extend(v for v in slots.values())
    return converted


def insert_fault_points(model: onnx.ModelProto, formats: Sequence[ActivationFormat], *,
                        masks: bool = True) -> onnx.ModelProto:
    """A copy of ``model`` whose layer outputs ``formats`` are stored in their fixed-point
    format, each with an XOR mask input (``masks=False``: quantised only, no mask input).

    Pure: ``model`` is not modified. The model is converted to opset 18 when older.

    Raises:
        FlipLabError: a format's tensor is not produced by a node of the model.
    """
    result = copy_model(name_unnamed_nodes(model))
    if masks:
        result = _to_xor_opset(result)
    g = result.graph
    taken = used_names(g)
    producer_at = {o: i for i, n in enumerate(g.node) for o in n.output if o}
    inserts: dict[int, list[onnx.NodeProto]] = {}
    types = {f.tensor: value_elem_type(g, f.tensor) for f in formats}  # before any renaming
    for f in formats:
        if f.tensor not in producer_at:
            raise FlipLabError(f"layer {f.layer!r}: no node of the model writes {f.tensor!r}")
        at = producer_at[f.tensor]
        node = g.node[at]
        elem_type = types[f.tensor]
        raw = fresh_name(f"{f.tensor}/float", taken)
        node.output[list(node.output).index(f.tensor)] = raw
        fmt = f.format
        base = fresh_name(f"{f.layer}/act", taken)
        scale, zp = fresh_name(f"{base}/scale", taken), fresh_name(f"{base}/zero_point", taken)
        g.initializer.extend([numpy_helper.from_array(np.array(fmt.scale, np.float32), scale),
                              numpy_helper.from_array(np.zeros((), fmt.dtype), zp)])
        nodes = []
        x = raw
        other_type = elem_type not in (TensorProto.FLOAT, TensorProto.UNDEFINED)
        if other_type:  # float16, bfloat16, float64: stored from float32 (exact grid values)
            x = fresh_name(f"{base}/as_float32", taken)
            nodes.append(helper.make_node("Cast", [raw], [x], to=TensorProto.FLOAT, name=x))
        if fmt.bits < 8:  # saturate to the narrower range before the int8 / uint8 container
            lo, hi = fresh_name(f"{base}/lo", taken), fresh_name(f"{base}/hi", taken)
            g.initializer.extend([
                numpy_helper.from_array(np.array(fmt.qmin * fmt.scale, np.float32), lo),
                numpy_helper.from_array(np.array(fmt.qmax * fmt.scale, np.float32), hi)])
            clipped = fresh_name(f"{base}/clipped", taken)
            nodes.append(helper.make_node("Clip", [x, lo, hi], [clipped],
                                          name=fresh_name(f"{base}/Clip", taken)))
            x = clipped
        code = fresh_name(f"{base}/code", taken)
        nodes.append(helper.make_node("QuantizeLinear", [x, scale, zp], [code],
                                      name=fresh_name(f"{base}/Quantize", taken)))
        if masks:
            faulty = fresh_name(f"{base}/faulty", taken)
            nodes.append(helper.make_node("BitwiseXor", [code, f.mask_name], [faulty],
                                          name=fresh_name(f"{base}/Xor", taken)))
            g.input.append(helper.make_tensor_value_info(
                f.mask_name, helper.np_dtype_to_tensor_dtype(fmt.dtype),
                [f"{f.mask_name}_batch", *f.shape]))
            code = faulty
        stored = fresh_name(f"{base}/stored", taken) if other_type else f.tensor
        nodes.append(helper.make_node("DequantizeLinear", [code, scale, zp], [stored],
                                      name=fresh_name(f"{base}/Dequantize", taken)))
        if other_type:
            nodes.append(helper.make_node("Cast", [stored], [f.tensor], to=elem_type,
                                          name=fresh_name(f"{base}/as_model_type", taken)))
        inserts[at] = inserts.get(at, []) + nodes
    ordered = []
    for i, node in enumerate(g.node):
        ordered.append(node)
        ordered.extend(inserts.get(i, []))
    del g.node[:]
    g.node.extend(ordered)
    kept = [p for p in result.metadata_props if p.key != FORMATS_KEY]
    del result.metadata_props[:]
    result.metadata_props.extend(kept)
    result.metadata_props.append(onnx.StringStringEntryProto(
        key=FORMATS_KEY, value=json.dumps([f.to_json() for f in formats])))
    return result


def stored_formats(model: onnx.ModelProto) -> list[ActivationFormat]:
    """The formats :func:`insert_fault_points` recorded in ``model`` ([] when none)."""
    for prop in model.metadata_props:
        if prop.key == FORMATS_KEY:
            return [ActivationFormat.from_json(d) for d in json.loads(prop.value)]
    return []


__all__ = ["ActivationFormat", "ActivationLayer", "FixedPoint", "activation_layers",
           "check_bits", "insert_fault_points", "profile_formats",
           "range_rule", "select_layers", "stored_formats"]
