"""Split a model's graph where a layer's corrupted weights enter it (per-layer campaigns).

When only the weights of one layer are corrupted, every node that does not depend on them
computes the same activations for every variant. :func:`split_at_weights` cuts the graph into

- a **prefix** graph: the model input -> the *boundary* tensors (the activations, computed
  from clean weights only, that the affected nodes read), and
- a **suffix** graph: the boundary tensors -> the model output, holding every node downstream
  of the corrupted weights (the nodes that differ between variants).

The prefix runs once per sample batch and codec; each variant runs only the suffix
(docs/decisions.md#11). Both are
pure graph -> graph passes in the style of host/model/passes.py: the input graph is not
modified. Weight slots (the initializers ``load_model`` removed) stay as ``value_info`` entries
in whichever part reads them, so an :class:`~host.executors.ort.OnnxExecutor` can supply them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import onnx
from onnx import TensorProto, helper

from host.model import weight_slots


@dataclass(frozen=True)
class GraphSplit:
    """A graph cut at a set of corrupted weights.

    Attributes:
        prefix: model input -> ``boundary`` outputs that come from nodes (None when every
            boundary tensor is the model input itself: nothing to precompute).
        suffix: ``boundary`` inputs -> the model output.
        boundary: names of the tensors the suffix reads from outside itself, in order.
        prefix_weights: weight slots the prefix reads (clean weights).
        suffix_weights: weight slots the suffix reads (corrupted and clean).
        prefix_outputs: ``boundary`` minus the model input (what the prefix computes).
    """

    prefix: onnx.ModelProto | None
    suffix: onnx.ModelProto
    boundary: tuple[str, ...]
    prefix_weights: tuple[str, ...]
    suffix_weights: tuple[str, ...]
    prefix_outputs: tuple[str, ...]


def _has_subgraph(node: onnx.NodeProto) -> bool:
    return any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
               for a in node.attribute)


def _types(model: onnx.ModelProto) -> dict[str, onnx.TypeProto]:
    """Type of every value the shape inference can name (weights included via value_info)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # inference is a convenience here; unknown types fall back to float
        inferred = model
    g = inferred.graph
    out = {}
    for v in list(g.value_info) + list(g.input) + list(g.output):
        out[v.name] = v.type
    return out


def _value_info(name: str, types: dict[str, onnx.TypeProto]) -> onnx.ValueInfoProto:
    vi = onnx.ValueInfoProto(name=name)
    if name in types and types[name].HasField("tensor_type"):
        t = onnx.TypeProto()
        t.CopyFrom(types[name])
        # the batch dimension varies between runs: make the first dimension symbolic
        if t.tensor_type.HasField("shape") and len(t.tensor_type.shape.dim) > 0:
            d0 = t.tensor_type.shape.dim[0]
            d0.Clear()
            d0.dim_param = "batch"
        vi.type.CopyFrom(t)
    else:
        vi.type.CopyFrom(helper.make_tensor_type_proto(TensorProto.FLOAT, None))
    return vi


def _producers(g: onnx.GraphProto, outputs: list[str]) -> list[onnx.NodeProto]:
    """The nodes of ``g`` that ``outputs`` depend on, in graph order."""
    needed, nodes = set(outputs), []
    for node in reversed(list(g.node)):
        if any(o in needed for o in node.output):
            nodes.append(node)
            needed.update(i for i in node.input if i)
    nodes.reverse()
    return nodes


def _sub_model(model: onnx.ModelProto, nodes: list[onnx.NodeProto],
               inputs: list[onnx.ValueInfoProto], outputs: list[onnx.ValueInfoProto],
               slots: dict[str, onnx.ValueInfoProto], name: str) -> onnx.ModelProto:
    g = model.graph
    used = {i for n in nodes for i in n.input}
    graph = helper.make_graph(
        nodes, name, inputs, outputs,
        initializer=[t for t in g.initializer if t.name in used],
        value_info=[v for n, v in slots.items() if n in used])
    out = helper.make_model(graph, opset_imports=list(model.opset_import))
    out.ir_version = model.ir_version
    return out


def quantises_activations(model: onnx.ModelProto) -> bool:
    """Whether the graph has a QuantizeLinear -> DequantizeLinear pair on an activation (a QDQ
    model). onnxruntime fuses such a pair with the node between its DequantizeLinear inputs
    and the next QuantizeLinear into one integer kernel (QGemm, QLinearConv, ...) whose
    rounding differs from the float ops it replaces, and whether it fuses a group depends on
    where the graph begins and ends: a prefix and suffix cut from a QDQ graph do not compute
    exactly what the whole graph does (a logit one quantisation step off at rounding ties).
    Such graphs are not cut. A QuantizeLinear on an activation whose output goes elsewhere
    first (FlipLab's activation fault points: QuantizeLinear -> BitwiseXor -> DequantizeLinear)
    is no such pair; a Clip between them (brevitas QCDQ) is."""
    g = model.graph
    constants = {t.name for t in g.initializer} | set(weight_slots(model))
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in g.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def reaches_dequantize(value: str) -> bool:  # directly or through Clip (brevitas QCDQ)
        return any(c.op_type == "DequantizeLinear"
                   or (c.op_type == "Clip" and c.input[0] == value
                       and reaches_dequantize(c.output[0]))
                   for c in consumers.get(value, []))

    return any(node.op_type == "QuantizeLinear" and node.input[0] not in constants
               and reaches_dequantize(node.output[0]) for node in g.node)


def split_at_weights(model: onnx.ModelProto, corrupted: Iterable[str], *,
                     input_name: str, output_name: str) -> GraphSplit | None:
    """Cut ``model`` (a ``WeightSet.graph``) at the weights named in ``corrupted``.

    Args:
        model: the graph without its weight initializers (``load_model(...).graph``).
        corrupted: names of the weight tensors that vary between variants.
        input_name: the model's data input; output_name: the model's output.

    Returns:
        A :class:`GraphSplit`, or None when the graph cannot be cut (a node with a subgraph
        attribute, a QDQ graph (:func:`quantises_activations`), or the output does not depend
        on the corrupted weights): run the whole graph then.
    """
    g = model.graph
    if any(_has_subgraph(n) for n in g.node) or quantises_activations(model):
        return None
    slots = weight_slots(model)
    tainted = set(corrupted)
    if not tainted <= set(slots):
        return None
    initializers = {t.name for t in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    affected: list[onnx.NodeProto] = []
    for node in g.node:  # ONNX graphs are topologically sorted
        if any(i in tainted for i in node.input if i):
            affected.append(node)
            tainted.update(o for o in node.output if o)
    if output_name not in tainted:
        return None
    # constant sources (no inputs, e.g. Constant) feeding the suffix are copied into it
    copied: list[onnx.NodeProto] = []
    boundary: list[str] = []
    for node in affected:
        for name in node.input:
            if not name or name in tainted or name in initializers or name in slots:
                continue
            src = producer.get(name)
            if src is not None and not any(src.input):
                if src not in copied:
                    copied.append(src)
                continue
            if name not in boundary:
                boundary.append(name)
    types = _types(model)
    suffix = _sub_model(model, copied + affected, [_value_info(b, types) for b in boundary],
                        [_value_info(output_name, types)], slots, f"{g.name}_suffix")
    prefix_outputs = [b for b in boundary if b != input_name]
    prefix = None
    if prefix_outputs:
        nodes = _producers(g, prefix_outputs)
        data_input = [v for v in g.input if v.name == input_name]
        prefix = _sub_model(model, nodes, data_input,
                            [_value_info(b, types) for b in prefix_outputs], slots,
                            f"{g.name}_prefix")
    prefix_used = {i for n in (prefix.graph.node if prefix else []) for i in n.input}
    suffix_used = {i for n in suffix.graph.node for i in n.input}
    return GraphSplit(
        prefix=prefix, suffix=suffix, boundary=tuple(boundary),
        prefix_weights=tuple(n for n in slots if n in prefix_used),
        suffix_weights=tuple(n for n in slots if n in suffix_used),
        prefix_outputs=tuple(prefix_outputs))


def split_at_value(model: onnx.ModelProto, value: str, *, input_name: str,
                   output_name: str) -> GraphSplit:
    """Cut a complete ``model`` (weights as initializers) at the activation ``value``: the
    prefix computes ``value`` (and whatever else the suffix reads), the suffix takes
    ``value`` as its first boundary input (host.activations.criticality: a flipped
    activation goes in there).

    Raises:
        FlipLabError: ``value`` is the model input, not written by a node, or the output does
            not depend on it.
    """
    from host.errors import FlipLabError

    g = model.graph
    if value == input_name or not any(value in n.output for n in g.node):
        raise FlipLabError(f"{value!r} is not an activation of the model")
    tainted = {value}
    affected: list[onnx.NodeProto] = []
    for node in g.node:
        if any(i in tainted for i in node.input if i):
            affected.append(node)
            tainted.update(o for o in node.output if o)
    if output_name not in tainted:
        raise FlipLabError(f"the model output does not depend on {value!r}")
    initializers = {t.name for t in g.initializer}
    boundary = [value]
    for node in affected:
        for name in node.input:
            if name and name not in tainted and name not in initializers \
                    and name not in boundary:
                boundary.append(name)
    types = _types(model)
    suffix = _sub_model(model, affected, [_value_info(b, types) for b in boundary],
                        [_value_info(output_name, types)], {}, f"{g.name}_suffix")
    prefix_outputs = [b for b in boundary if b != input_name]
    prefix = _sub_model(model, _producers(g, prefix_outputs), [v for v in g.input if v.name == input_name],
                        [_value_info(b, types) for b in prefix_outputs], {}, f"{g.name}_prefix")
    return GraphSplit(prefix=prefix, suffix=suffix, boundary=tuple(boundary),
                      prefix_weights=(), suffix_weights=(), prefix_outputs=tuple(prefix_outputs))
