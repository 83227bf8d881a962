"""Finding the weight tensors of a graph: which initializers a layer consumes as weights.

The rule per op (input index → role, output-channel axis of the stored tensor):

=============  ======================================================================
Conv           W (1) weight, axis 0 of [O, I/g, k…]; B (2) bias, axis 0
ConvTranspose  W (1) weight, axis 1 of [I, O/g, k…]; B (2) bias, axis 0
Gemm           A (0) weight, axis 0 (transA=1: 1); B (1) weight, axis 1 of [K, N]
               (transB=1: axis 0 of [N, K]); C (2) bias, last axis (None for a scalar)
MatMul         A (0) weight, axis ndim-2; B (1) weight, last axis (None when 1-D)
LSTM/GRU/RNN   W (1) weight, R (2) recurrence, B (3) bias, LSTM P (7) peephole; axis 1
Gather         data (0) embedding, along Gather's ``axis``
Add            a per-channel constant added to the output of one of the layers above
               (MatMul + Add exports): bias of that layer, along its one long axis
=============  ======================================================================

An initializer reaches its layer directly or through Identity nodes, at most one
DequantizeLinear (QDQ: the stored integers are the weight) or at most one binarizer (QONNX
BipolarQuant or ONNX Sign: the layer consumes sign(weight)), and through *view* ops that move
values without computing new ones (Slice, Split, Concat, Transpose, Reshape, Squeeze,
Unsqueeze: torch's default exporter slices and re-concatenates the stacked LSTM/GRU gates this
way). The weight is the initializer; the view chain stays in the graph, and the layer's
output-channel axis is mapped back through it to an axis of the stored tensor (None when a
Reshape or a non-constant axis list hides it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from host.errors import FlipLabError
from host.model.graph import (
    constant_array,
    consumers,
    fixed_constants,
    is_bipolar_quant,
    is_default_domain,
    producers,
)

AxisRule = Callable[[onnx.NodeProto, int], "int | None"]


def _attribute(node: onnx.NodeProto, name: str, default: int) -> int:
    for attribute in node.attribute:
        if attribute.name == name:
            return int(helper.get_attribute_value(attribute))
    return default


def _fixed(axis: int) -> AxisRule:
    return lambda node, ndim: axis if ndim > axis else None


def _last(node: onnx.NodeProto, ndim: int) -> int | None:
    return ndim - 1 if ndim >= 1 else None


def _matmul_a(node: onnx.NodeProto, ndim: int) -> int | None:
    return ndim - 2 if ndim >= 2 else None


def _matmul_b(node: onnx.NodeProto, ndim: int) -> int | None:
    return ndim - 1 if ndim >= 2 else None


def _gemm_a(node: onnx.NodeProto, ndim: int) -> int | None:
    return 1 if _attribute(node, "transA", 0) else 0


def _gemm_b(node: onnx.NodeProto, ndim: int) -> int | None:
    return 0 if _attribute(node, "transB", 0) else 1


def _gather(node: onnx.NodeProto, ndim: int) -> int | None:
    axis = _attribute(node, "axis", 0)
    return axis + ndim if axis < 0 else axis


_RECURRENT = {1: ("weight", _fixed(1)), 2: ("recurrence", _fixed(1)), 3: ("bias", _fixed(1))}

#: op_type → {input index: (role, channel-axis rule)}.
WEIGHT_SLOTS: dict[str, dict[int, tuple[str, AxisRule]]] = {
    "Conv": {1: ("weight", _fixed(0)), 2: ("bias", _fixed(0))},
    "ConvTranspose": {1: ("weight", _fixed(1)), 2: ("bias", _fixed(0))},
    "Gemm": {0: ("weight", _gemm_a), 1: ("weight", _gemm_b), 2: ("bias", _last)},
    "MatMul": {0: ("weight", _matmul_a), 1: ("weight", _matmul_b)},
    "LSTM": {**_RECURRENT, 7: ("peephole", _fixed(1))},
    "GRU": dict(_RECURRENT),
    "RNN": dict(_RECURRENT),
    "Gather": {0: ("embedding", _gather)},
}

#: Layers whose output may receive a bias through a following Add.
_BIASED_BY_ADD = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})

#: Slot number given to a bias found on an Add (after the layer's own inputs).
_ADD_SLOT = 1000

_QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})

#: Ops that only rearrange their data input(s) (every input of Concat, input 0 of the others).
VIEW_OPS = frozenset({"Slice", "Split", "Concat", "Transpose", "Reshape", "Squeeze", "Unsqueeze"})

#: Ops that read only a tensor's shape, never its values.
_SHAPE_READERS = frozenset({"Shape", "Size"})

#: ONNX / onnxruntime ops of the QOperator format (integer kernels with quantized weights).
QOPERATOR_OPS = frozenset({
    "ConvInteger", "MatMulInteger", "QGemm", "QAttention", "DynamicQuantizeMatMul",
    "DynamicQuantizeLSTM", "MatMulIntegerToFloat", "QEmbedLayerNormalization",
    "QOrderedMatMul", "QOrderedAttention", "QOrderedGelu",
    "QOrderedLayerNormalization", "QOrderedLongformerAttention",
})


def is_qoperator(node: onnx.NodeProto) -> bool:
    """True for an op of the QOperator quantization format (QLinear*, *Integer, …)."""
    return node.op_type.startswith("QLinear") or node.op_type in QOPERATOR_OPS


def is_binarizer(node: onnx.NodeProto) -> bool:
    """True for a node that turns a float tensor into ±1 (times a scale)."""
    return is_bipolar_quant(node) or (node.op_type == "Sign" and is_default_domain(node))


def is_float_dtype(dtype: np.dtype) -> bool:
    """True for floating-point dtypes, ml_dtypes' bfloat16 and float8 included."""
    return np.issubdtype(dtype, np.floating) or "float" in np.dtype(dtype).name


def looks_like_weight(shape: tuple[int, ...]) -> bool:
    """The refusal rule: a tensor with at least two axes longer than 1 is a weight matrix."""
    return sum(1 for size in shape if size > 1) >= 2


def _axes(graph: onnx.GraphProto, node: onnx.NodeProto) -> list[int] | None:
    """The ``axes`` of a Squeeze/Unsqueeze (attribute before opset 13, input after), or None."""
    for attribute in node.attribute:
        if attribute.name == "axes":
            return [int(a) for a in helper.get_attribute_value(attribute)]
    if len(node.input) > 1 and node.input[1]:
        axes = constant_array(graph, node.input[1])
        return None if axes is None else [int(a) for a in np.ravel(axes)]
    return None


def _view_ndim(graph: onnx.GraphProto, node: onnx.NodeProto, ndim: int | None) -> int | None:
    """Rank of a view op's output given its data input's rank (None: unknown)."""
    if ndim is None:
        return None
    if node.op_type in ("Unsqueeze", "Squeeze"):
        axes = _axes(graph, node)
        if axes is None:
            return None
        return ndim + len(axes) if node.op_type == "Unsqueeze" else ndim - len(axes)
    if node.op_type == "Reshape":
        shape = constant_array(graph, node.input[1])
        return None if shape is None else int(np.size(shape))
    return ndim


def _axis_back(graph: onnx.GraphProto, node: onnx.NodeProto, axis: int | None,
               ndim_in: int | None) -> int | None:
    """The input axis of a view op that becomes output ``axis`` (None: no single one)."""
    if axis is None or ndim_in is None:
        return None
    if node.op_type in ("Slice", "Split", "Concat"):
        return axis
    if node.op_type == "Transpose":
        perm = None
        for attribute in node.attribute:
            if attribute.name == "perm":
                perm = [int(p) for p in helper.get_attribute_value(attribute)]
        perm = perm or list(reversed(range(ndim_in)))
        return perm[axis] if axis < len(perm) else None
    if node.op_type in ("Unsqueeze", "Squeeze"):
        axes = _axes(graph, node)
        if axes is None:
            return None
        if node.op_type == "Unsqueeze":
            ndim_out = ndim_in + len(axes)
            inserted = {a + ndim_out if a < 0 else a for a in axes}
            return None if axis in inserted else axis - sum(1 for a in inserted if a < axis)
        removed = sorted(a + ndim_in if a < 0 else a for a in axes)
        for a in removed:
            if a <= axis:
                axis += 1
        return axis
    return None  # Reshape: the axes do not carry over


def _channel_axis(graph: onnx.GraphProto, views: tuple[onnx.NodeProto, ...], ndim: int,
                  layer: onnx.NodeProto, rule: AxisRule) -> int | None:
    """The stored tensor's channel axis: the layer's, mapped back through the view chain."""
    ranks: list[int | None] = [ndim]
    for view in views:
        ranks.append(_view_ndim(graph, view, ranks[-1]))
    if ranks[-1] is None:
        return None
    axis = rule(layer, ranks[-1])
    for view, rank in zip(reversed(views), reversed(ranks[:-1])):
        axis = _axis_back(graph, view, axis, rank)
    return axis


@dataclass(frozen=True)
class WeightUse:
    """One path from a stored tensor to a layer input."""

    layer: onnx.NodeProto
    slot: int
    role: str
    channel_axis: int | None
    dequantize: onnx.NodeProto | None
    binarizer: onnx.NodeProto | None
    views: tuple[onnx.NodeProto, ...] = ()  # Slice/Concat/Transpose… between tensor and layer


@dataclass(frozen=True)
class FoundWeight:
    """A weight tensor found in the graph, before it is turned into a WeightTensor."""

    name: str
    values: np.ndarray
    uses: tuple[WeightUse, ...]
    quant: dict | None

    @property
    def first(self) -> WeightUse:
        return self.uses[0]

    @property
    def binarizers(self) -> list[onnx.NodeProto]:
        seen: dict[str, onnx.NodeProto] = {}
        for use in self.uses:
            if use.binarizer is not None:
                seen[use.binarizer.output[0]] = use.binarizer
        return list(seen.values())


def _quant_params(graph: onnx.GraphProto, dq: onnx.NodeProto, values: np.ndarray) -> dict:
    """The quant record of ``values`` as ``dq`` decodes them (per tensor or per axis)."""
    if _attribute(dq, "block_size", 0):
        raise FlipLabError(
            f"DequantizeLinear node {dq.name!r} uses blocked quantization, which is not "
            f"supported; quantize the weight per tensor or per channel"
        )
    scale = constant_array(graph, dq.input[1])
    if scale is None:
        raise FlipLabError(f"DequantizeLinear node {dq.name!r}: scale {dq.input[1]!r} is not a "
                           f"constant; store the scale as an initializer (fold the graph that "
                           f"computes it)")
    if len(dq.input) > 2 and dq.input[2]:
        zero_point = constant_array(graph, dq.input[2])
        if zero_point is None:
            raise FlipLabError(
                f"DequantizeLinear node {dq.name!r}: zero point {dq.input[2]!r} is not a "
                f"constant; store the zero point as an initializer (fold the graph that computes it)"
            )
    else:
        zero_point = np.zeros(scale.shape, dtype=values.dtype)
    axis = None
    if scale.ndim == 1 and scale.size > 1:
        axis = _attribute(dq, "axis", 1)
        axis = axis + values.ndim if axis < 0 else axis
    return {
        "scale": [float(s) for s in np.ravel(scale)],
        "zero_point": [int(z) for z in np.ravel(zero_point)],
        "axis": axis,
    }


class _Tracer:
    """Follows each constant from its readers toward the layers that consume it."""

    def __init__(self, graph: onnx.GraphProto) -> None:
        self.graph = graph
        self.nodes = list(graph.node)  # keeps the node wrappers alive, so id() is stable
        self.readers = consumers(graph)
        self.writers = producers(graph)
        self.order = {id(node): index for index, node in enumerate(self.nodes)}
        self.initializers = {tensor.name for tensor in graph.initializer}

    def walk(
        self,
        name: str,
        values: np.ndarray,
        dq: onnx.NodeProto | None = None,
        binarizer: onnx.NodeProto | None = None,
        views: tuple[onnx.NodeProto, ...] = (),
    ) -> Iterator[tuple[str, object]]:
        """Yield ("weight", WeightUse) and ("other", (node, index, dq)) for the readers of
        ``name``, following DequantizeLinear, binarizers, Identity and view ops toward the
        layers."""
        for node, index in self.readers.get(name, []):
            slots = WEIGHT_SLOTS.get(node.op_type) if is_default_domain(node) else None
            if slots and index in slots and not (node.op_type == "MatMul" and self._both_constant(node)):
                role, axis_rule = slots[index]
                axis = _channel_axis(self.graph, views, values.ndim, node, axis_rule)
                yield "weight", WeightUse(node, index, role, axis, dq, binarizer, views)
            elif node.op_type == "DequantizeLinear" and index == 0 and dq is None and binarizer is None:
                yield from self.walk(node.output[0], values, node, binarizer, views)
            elif is_binarizer(node) and index == 0 and binarizer is None:
                yield from self.walk(node.output[0], values, dq, node, views)
            elif node.op_type == "Identity" and is_default_domain(node):
                yield from self.walk(node.output[0], values, dq, binarizer, views)
            elif self._is_view(node, index) and node not in views:
                for output in node.output:
                    yield from self.walk(output, values, dq, binarizer, views + (node,))
            else:
                yield "other", (node, index, dq)

    def _is_view(self, node: onnx.NodeProto, index: int) -> bool:
        """A view op reading the walked tensor as data (not as its shape, axes or bounds)."""
        if node.op_type not in VIEW_OPS or not is_default_domain(node):
            return False
        return node.op_type == "Concat" or index == 0

    def _both_constant(self, node: onnx.NodeProto) -> bool:
        return all(name in self.initializers for name in node.input)

    def add_bias_use(
        self,
        node: onnx.NodeProto,
        index: int,
        dq: onnx.NodeProto | None,
        shape: tuple[int, ...],
        weighted: set[int],
    ) -> WeightUse | None:
        """The bias use when ``node`` is an Add of this per-channel constant to the output
        of a weighted layer (ids in ``weighted``), possibly re-quantized; else None."""
        if node.op_type != "Add" or not is_default_domain(node) or looks_like_weight(shape):
            return None
        layer = self.writers.get(node.input[1 - index])
        while layer is not None and layer.op_type in _QDQ_OPS and is_default_domain(layer):
            layer = self.writers.get(layer.input[0])  # the layer's output may be re-quantized
        if layer is None or id(layer) not in weighted or layer.op_type not in _BIASED_BY_ADD:
            return None
        long_axes = [axis for axis, size in enumerate(shape) if size > 1]
        axis = long_axes[0] if long_axes else (0 if len(shape) == 1 else None)
        return WeightUse(layer, _ADD_SLOT, "bias", axis, dq, None)


def _weight_fix(graph: onnx.GraphProto, node: onnx.NodeProto) -> str:
    """What to do about a weight read by an unsupported op (the end of the refusal)."""
    constants = {t.name for t in graph.initializer}
    constants.update(o for n in graph.node if n.op_type == "Constant" for o in n.output)
    where = (f"FlipLab reads weights at {', '.join(WEIGHT_SLOTS)} layers, directly or through "
             f"{', '.join(sorted(VIEW_OPS))} and DequantizeLinear")
    if all(not i or i in constants for i in node.input):  # a computation on constants only
        return (f"{node.op_type} computes on constants only: fold it into the initializer "
                f"before loading (e.g. onnxruntime with GraphOptimizationLevel.ORT_ENABLE_BASIC "
                f"and SessionOptions.optimized_model_filepath writes the folded model) ({where})")
    return (f"export the model so that {node.op_type} is one of those layers (e.g. "
            f"torch.nn.Linear / nn.Conv2d instead of a functional op on the parameter) ({where})")


def find_weights(model: onnx.ModelProto) -> list[FoundWeight]:
    """Every initializer of the main graph that a layer consumes as a weight, in graph order.

    Raises:
        FlipLabError: an integer initializer feeds a layer without DequantizeLinear; an
            initializer that looks like a weight (two or more axes longer than 1) is read by
            an op that is not a layer; a tensor is consumed both binarized and not.
    """
    graph = model.graph
    tracer = _Tracer(graph)
    walked = []
    fixed = fixed_constants(model)  # a pass's own constants (the clip's correction), never weights
    for tensor in graph.initializer:
        if tensor.name in fixed:
            continue
        values = numpy_helper.to_array(tensor)
        uses: list[Any] = []
        others: list[Any] = []
        for kind, item in tracer.walk(tensor.name, values):
            (uses if kind == "weight" else others).append(item)
        walked.append((tensor.name, values, uses, others))

    weighted = {id(use.layer) for _, _, uses, _ in walked for use in uses}
    found: list[FoundWeight] = []
    for name, values, uses, others in walked:
        is_float = is_float_dtype(values.dtype)
        quantized_uses = [use for use in uses if use.dequantize is not None]
        plain_uses = [use for use in uses if use.dequantize is None]
        if not is_float and plain_uses:
            layer_uses = [use for use in plain_uses if use.layer.op_type != "Gather"]
            if layer_uses:
                use = layer_uses[0]
                raise FlipLabError(
                    f"{use.layer.op_type} node {use.layer.name!r} reads integer initializer "
                    f"{name!r} without DequantizeLinear; integer weights are read only in QDQ "
                    f"form: export with QuantizeLinear/DequantizeLinear (e.g. onnxruntime's "
                    f"quantize_static with quant_format=QuantFormat.QDQ)"
                )
            uses = quantized_uses
        for node, index, dq in list(others):
            bias = tracer.add_bias_use(node, index, dq, values.shape, weighted)
            if bias is not None:
                uses.append(bias)
                others.remove((node, index, dq))
        if not uses:
            for node, _index, dq in others:
                if node.op_type in _SHAPE_READERS or node.op_type in WEIGHT_SLOTS:
                    continue  # shape only, or a layer's state / index input
                if not looks_like_weight(values.shape):
                    continue
                if not is_float and dq is None:
                    continue
                raise FlipLabError(
                    f"initializer {name!r} {list(values.shape)} looks like a weight but is read by "
                    f"{node.op_type} node {node.name!r}, which is not a supported layer; "
                    + _weight_fix(graph, node))
            continue
        binarized = {use.binarizer is not None for use in uses}
        if len(binarized) > 1:
            raise FlipLabError(f"initializer {name!r} is consumed both binarized and as plain "
                               f"values; give the binarized layer its own copy of the tensor")
        dequantizers = {use.dequantize.name if use.dequantize else None for use in uses}
        if len(dequantizers) > 1 and None in dequantizers:
            raise FlipLabError(f"initializer {name!r} is consumed both dequantized and as plain "
                               f"values; give each use its own copy of the tensor")
        if True in binarized and None not in dequantizers:
            raise FlipLabError(
                f"initializer {name!r} is both quantized (DequantizeLinear) and binarized; "
                f"a binarized weight must be a float initializer"
            )
        uses.sort(key=lambda use: (tracer.order[id(use.layer)], use.slot))
        first = uses[0]
        quant = _quant_params(graph, first.dequantize, values) if first.dequantize else None
        found.append(FoundWeight(name, values, tuple(uses), quant))
    found.sort(key=lambda weight: (tracer.order[id(weight.first.layer)], weight.first.slot))
    return found
