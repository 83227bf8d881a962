"""Graph passes of ``host.model``: each a pure function ModelProto → ModelProto.

Applied by :func:`host.model.load_model` in this order:

1. :func:`name_unnamed_nodes` gives every node a stable name (the layer names).
2. :func:`promote_weight_constants` turns Constant nodes on weight paths into initializers.
3. :func:`fold_constant_quantize` folds QuantizeLinear [→ Clip] of a constant (QCDQ) into an
   integer initializer, so the stored integers are the codes.
4. :func:`bypass_weight_binarizers` removes Sign / BipolarQuant between a weight and its layer.
5. :func:`lower_bipolar_quant` rewrites BipolarQuant on activations in standard ONNX ops.
6. :func:`remove_weights` takes the weight initializers out, leaving a value_info for each.

:func:`expose_values` (not part of loading) makes inner values graph outputs, so that one
onnxruntime pass also returns them (host.mitigation.tolerance reads pre-activations this way).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from host.model.finder import WEIGHT_SLOTS, is_binarizer, is_float_dtype, looks_like_weight
from host.model.graph import (
    QONNX_DOMAINS,
    consumers,
    constant_array,
    constant_node_array,
    copy_model,
    default_opset,
    drop_stale_value_info,
    drop_unused_initializers,
    drop_unused_opsets,
    fresh_name,
    is_bipolar_quant,
    is_default_domain,
    used_names,
)


def name_unnamed_nodes(model: onnx.ModelProto) -> onnx.ModelProto:
    """Name each unnamed node ``<op_type>_<position in the graph>`` (suffixed if taken)."""
    result = copy_model(model)
    taken = {node.name for node in result.graph.node if node.name}
    for index, node in enumerate(result.graph.node):
        if not node.name:
            node.name = fresh_name(f"{node.op_type}_{index}", taken)
    return result


_WEIGHT_PATH_OPS = frozenset({"DequantizeLinear", "QuantizeLinear", "Identity"})


def _reads_as_weight_source(node: onnx.NodeProto, index: int) -> bool:
    path_op = (node.op_type in _WEIGHT_PATH_OPS and is_default_domain(node)) or is_binarizer(node)
    if index == 0 and path_op:
        return True
    slots = WEIGHT_SLOTS.get(node.op_type) if is_default_domain(node) else None
    return slots is not None and index in slots


def promote_weight_constants(model: onnx.ModelProto) -> onnx.ModelProto:
    """Turn into initializers of the same name the Constant nodes that feed a layer's weight
    input or the data input of a DequantizeLinear, QuantizeLinear, Identity, Sign or
    BipolarQuant, and float Constant nodes that look like weights (two or more axes longer
    than 1), so that the weight finder sees them."""
    result = copy_model(model)
    graph = result.graph
    readers = consumers(graph)
    outputs = {value.name for value in graph.output}
    kept = []
    for node in graph.node:
        value = None
        if node.op_type == "Constant" and is_default_domain(node) and node.output[0] not in outputs:
            array = constant_node_array(node)
            feeds_weight_path = any(
                _reads_as_weight_source(reader, index)
                for reader, index in readers.get(node.output[0], [])
            )
            weight_like = (
                array is not None and is_float_dtype(array.dtype) and looks_like_weight(array.shape)
            )
            if array is not None and (feeds_weight_path or weight_like):
                value = array
        if value is None:
            kept.append(node)
        else:
            graph.initializer.append(numpy_helper.from_array(value, node.output[0]))
    del graph.node[:]
    graph.node.extend(kept)
    return result


def _evaluate(
    model: onnx.ModelProto, nodes: list[onnx.NodeProto], inputs: dict[str, np.ndarray]
) -> np.ndarray:
    """Run ``nodes`` on constant ``inputs`` with the ONNX reference implementation."""
    initializers = [numpy_helper.from_array(array, name) for name, array in inputs.items()]
    output = nodes[-1].output[0]
    graph = helper.make_graph(
        nodes, "fold", [], [helper.make_empty_tensor_value_info(output)], initializers
    )
    mini = helper.make_model(graph, opset_imports=[helper.make_opsetid("", default_opset(model))])
    outputs: Any = ReferenceEvaluator(mini).run(None, {})
    return np.asarray(outputs[0])


def fold_constant_quantize(model: onnx.ModelProto) -> onnx.ModelProto:
    """QCDQ → QDQ: fold each QuantizeLinear of a float initializer, and a Clip with constant
    bounds right after it, into one integer initializer (the codes) read by what read them.

    The folded initializer keeps the float initializer's name when nothing else read that,
    else it is named after the folded chain's output.
    """
    result = copy_model(model)
    graph = result.graph
    readers = consumers(graph)
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    outputs = {value.name for value in graph.output}
    removed_nodes: set[int] = set()
    maybe_unused: set[str] = set()
    renames: dict[str, str] = {}
    new_initializers = []
    all_nodes = list(graph.node)  # keeps the node wrappers alive, so id() is stable
    for node in all_nodes:
        if node.op_type != "QuantizeLinear" or not is_default_domain(node):
            continue
        source = initializers.get(node.input[0])
        if source is None or not is_float_dtype(numpy_helper.to_array(source).dtype):
            continue
        params = {name: constant_array(graph, name) for name in node.input[1:] if name}
        if any(value is None for value in params.values()):
            continue
        chain = [node]
        next_readers = readers.get(node.output[0], [])
        if len(next_readers) == 1 and next_readers[0][0].op_type == "Clip":
            clip = next_readers[0][0]
            bounds = {name: constant_array(graph, name) for name in clip.input[1:] if name}
            if clip.input[0] == node.output[0] and all(v is not None for v in bounds.values()):
                chain.append(clip)
                params.update(bounds)
        if chain[-1].output[0] in outputs:
            continue  # a graph output must stay a node output
        params[source.name] = numpy_helper.to_array(source)
        codes = _evaluate(result, chain, cast(dict[str, np.ndarray], params))  # no None left
        sole_reader = len(readers.get(source.name, [])) == 1
        name = source.name if sole_reader else chain[-1].output[0]
        renames[chain[-1].output[0]] = name
        new_initializers.append(numpy_helper.from_array(np.asarray(codes), name))
        removed_nodes.update(id(n) for n in chain)
        maybe_unused.update(n for link in chain for n in link.input[1:] if n)
        if sole_reader:
            maybe_unused.add(source.name)
    if not removed_nodes:
        return result
    kept = [node for node in all_nodes if id(node) not in removed_nodes]
    for node in kept:
        for index, name in enumerate(node.input):
            if name in renames:
                node.input[index] = renames[name]
    del graph.node[:]
    graph.node.extend(kept)
    replaced = {tensor.name for tensor in new_initializers}
    survivors = [tensor for tensor in graph.initializer if tensor.name not in replaced]
    del graph.initializer[:]
    graph.initializer.extend(survivors + new_initializers)
    drop_unused_initializers(graph, maybe_unused - replaced)
    stale = [value for value in graph.value_info if value.name in replaced]
    for value in stale:
        graph.value_info.remove(value)
    drop_stale_value_info(graph)
    return result


def _rewire(graph: onnx.GraphProto, old: str, new: str) -> None:
    for node in graph.node:
        for index, name in enumerate(node.input):
            if name == old:
                node.input[index] = new


def bypass_weight_binarizers(model: onnx.ModelProto, binarizers: Iterable[str]) -> onnx.ModelProto:
    """Remove the named Sign / BipolarQuant nodes from weight paths: their layer then reads the
    (decoded, ±1) weight directly. A BipolarQuant whose scale is not all ones becomes
    ``Mul(weight, scale)``, which equals it for ±1 weights."""
    result = copy_model(model)
    graph = result.graph
    wanted = set(binarizers)
    outputs = {value.name for value in graph.output}
    kept = []
    for node in graph.node:
        if node.name not in wanted:
            kept.append(node)
            continue
        scale = constant_array(graph, node.input[1]) if is_bipolar_quant(node) else None
        if is_bipolar_quant(node) and (scale is None or not np.all(scale == 1)):
            mul = helper.make_node("Mul", node.input[:2], node.output[:1], name=node.name)
            kept.append(mul)
        elif node.output[0] in outputs:
            kept.append(helper.make_node("Identity", [node.input[0]], [node.output[0]], name=node.name))
        else:
            _rewire(graph, node.output[0], node.input[0])
    del graph.node[:]
    graph.node.extend(kept)
    drop_stale_value_info(graph)
    drop_unused_opsets(result, QONNX_DOMAINS)
    return result


def lower_bipolar_quant(model: onnx.ModelProto) -> onnx.ModelProto:
    """Rewrite each BipolarQuant(x, scale) as ``Where(Less(x, 0), -scale, scale)``.

    This is QONNX's definition (+scale for x >= 0, -scale otherwise) in standard ops
    (opset >= 9), so that onnxruntime runs the graph. Only a NaN input differs (+scale here).
    """
    result = copy_model(model)
    graph = result.graph
    if not any(is_bipolar_quant(node) for node in graph.node):
        return result
    taken = used_names(graph)
    nodes = []
    for node in graph.node:
        if not is_bipolar_quant(node):
            nodes.append(node)
            continue
        zero = fresh_name(f"{node.name}/zero", taken)
        negative = fresh_name(f"{node.name}/is_negative", taken)
        minus_scale = fresh_name(f"{node.name}/minus_scale", taken)
        graph.initializer.append(numpy_helper.from_array(np.array(0, dtype=np.float32), zero))
        less_name = fresh_name(f"{node.name}/Less", taken)
        neg_name = fresh_name(f"{node.name}/Neg", taken)
        nodes += [
            helper.make_node("Less", [node.input[0], zero], [negative], name=less_name),
            helper.make_node("Neg", [node.input[1]], [minus_scale], name=neg_name),
            helper.make_node(
                "Where", [negative, minus_scale, node.input[1]], [node.output[0]], name=node.name
            ),
        ]
    del graph.node[:]
    graph.node.extend(nodes)
    drop_unused_opsets(result, QONNX_DOMAINS)
    return result


def remove_weights(model: onnx.ModelProto, names: Iterable[str]) -> onnx.ModelProto:
    """Take the named initializers out of the graph (and out of its inputs, for old IR
    versions); a ``value_info`` entry records each one's element type and shape."""
    result = copy_model(model)
    graph = result.graph
    wanted = set(names)
    records = [
        helper.make_tensor_value_info(tensor.name, tensor.data_type, list(tensor.dims))
        for tensor in graph.initializer
        if tensor.name in wanted
    ]
    kept = [tensor for tensor in graph.initializer if tensor.name not in wanted]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    for collection in (graph.input, graph.value_info):
        survivors = [value for value in collection if value.name not in wanted]
        del collection[:]
        collection.extend(survivors)
    graph.value_info.extend(records)
    return result


def expose_values(model: onnx.ModelProto, names: Iterable[str]) -> onnx.ModelProto:
    """Add the named inner values as graph outputs (after the existing ones, in the order
    given; names already outputs are skipped). Their type comes from shape inference when it
    knows it, else it is left for the runtime to infer."""
    result = copy_model(model)
    graph = result.graph
    present = {value.name for value in graph.output}
    try:
        inferred = onnx.shape_inference.infer_shapes(result).graph.value_info
    except (onnx.shape_inference.InferenceError, ValueError):
        inferred = []
    typed = {value.name: value for value in inferred}
    for name in names:
        if name in present:
            continue
        present.add(name)
        if name in typed:
            graph.output.append(typed[name])
        else:
            graph.output.append(helper.make_empty_tensor_value_info(name))
    return result
