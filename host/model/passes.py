"""Graph passes of ``host.model``: each a pure function ModelProto → ModelProto.

Applied by :func:`host.model.load_model` in this order:

1. :func:`drop_initializer_inputs` takes initializers out of ``graph.input`` (their defaults
   are the constants FlipLab stores or keeps).
2. :func:`name_unnamed_nodes` gives every node a stable name (the layer names).
3. :func:`promote_weight_constants` turns Constant nodes on weight paths into initializers.
4. :func:`fold_constant_quantize` folds QuantizeLinear [→ Clip] of a constant (QCDQ) into an
   integer initializer, so the stored integers are the codes; Clip bounds narrower than the
   dtype declare the width (brevitas's 4-bit weights: int8 codes clipped to [-7, 7]).
5. :func:`fold_weight_quant` turns QONNX ``Quant`` of a constant into integer codes of the
   declared bit width and a DequantizeLinear (QDQ).
6. :func:`bypass_weight_binarizers` removes Sign / BipolarQuant between a weight and its layer.
7. :func:`lower_bipolar_quant` rewrites BipolarQuant on activations in standard ONNX ops.
8. :func:`remove_weights` takes the weight initializers out, leaving a value_info for each.

The width a model declares for integer codes narrower than their ONNX dtype is recorded in the
model's metadata (``host.model.graph.DECLARED_BITS_KEY``) and read by the weight finder.

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

from host.errors import FlipLabError
from host.model.finder import WEIGHT_SLOTS, is_binarizer, is_float_dtype, looks_like_weight
from host.model.graph import (
    QONNX_DOMAINS,
    constant_array,
    constant_node_array,
    consumers,
    copy_model,
    default_opset,
    drop_stale_value_info,
    drop_unused_initializers,
    drop_unused_opsets,
    fresh_name,
    is_bipolar_quant,
    is_default_domain,
    is_qonnx_quant,
    record_declared_bits,
    used_names,
)


def drop_initializer_inputs(model: onnx.ModelProto) -> onnx.ModelProto:
    """Remove from ``graph.input`` the entries that are also initializers.

    ONNX allows an initializer to be listed as a graph input (its value is then a default the
    caller may override; brevitas's QCDQ export lists the Clip bounds and biases this way).
    FlipLab never overrides them: they are constants, and only the data input stays an input.
    Models of IR version < 4 must list every initializer as an input and are left as they are.
    """
    result = copy_model(model)
    if result.ir_version < 4:
        return result
    graph = result.graph
    constants = {tensor.name for tensor in graph.initializer}
    kept = [value for value in graph.input if value.name not in constants]
    del graph.input[:]
    graph.input.extend(kept)
    return result


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
    declared: dict[str, int] = {}
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
        chain, bounds = [node], {}
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
        width = (_clip_bits(cast(dict[str, np.ndarray], bounds), np.asarray(codes).dtype)
                 if len(chain) == 2 else None)
        if width is not None:
            declared[name] = width
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
    if declared:
        record_declared_bits(result, declared)
    return result


def _clip_bits(bounds: dict[str, np.ndarray], dtype: np.dtype) -> int | None:
    """The narrowest two's-complement (or unsigned) width holding the Clip range, when it is
    narrower than ``dtype``; else None."""
    values = [np.ravel(v) for v in bounds.values()]
    if len(values) != 2 or any(v.size != 1 for v in values) or dtype.kind not in "iu":
        return None
    lo, hi = sorted(float(v[0]) for v in values)
    for bits in range(2, dtype.itemsize * 8):
        if dtype.kind == "i" and -(2 ** (bits - 1)) <= lo and hi <= 2 ** (bits - 1) - 1:
            return bits
        if dtype.kind == "u" and 0 <= lo and hi <= 2 ** bits - 1:
            return bits
    return None


#: QONNX Quant rounding modes (attribute ``rounding_mode``) as numpy functions.
_ROUNDING: dict[str, Any] = {"ROUND": np.round, "ROUND_TO_ZERO": np.trunc, "CEIL": np.ceil, "FLOOR": np.floor}


def _qonnx_attribute(node: onnx.NodeProto, name: str, default):
    for attribute in node.attribute:
        if attribute.name == name:
            value = helper.get_attribute_value(attribute)
            return value.decode() if isinstance(value, bytes) else value
    return default


def _quant_codes(node: onnx.NodeProto, x: np.ndarray, scale: np.ndarray, zero_point: np.ndarray,
                 bits: int) -> np.ndarray:
    """QONNX Quant's integer levels: clip(round(x / scale + zero_point), min, max), with
    min/max from the bit width, ``signed`` and ``narrow`` (QONNX's definition)."""
    signed, narrow = int(_qonnx_attribute(node, "signed", 1)), int(_qonnx_attribute(node, "narrow", 0))
    mode = str(_qonnx_attribute(node, "rounding_mode", "ROUND")).upper()
    if mode not in _ROUNDING:
        raise FlipLabError(f"QONNX Quant node {node.name!r}: rounding_mode {mode!r} is not "
                           f"supported; export with one of {', '.join(sorted(_ROUNDING))}")
    lo = -(2 ** (bits - 1)) + narrow if signed else 0
    hi = 2 ** (bits - 1) - 1 if signed else 2 ** bits - 1 - narrow
    levels = _ROUNDING[mode](x.astype(np.float64) / scale + zero_point)
    return np.clip(levels, lo, hi).astype(np.int8 if signed else np.uint8)


def _aligned(array: np.ndarray, x: np.ndarray, node: onnx.NodeProto) -> np.ndarray:
    """A Quant parameter with x's rank (numpy broadcasting: leading axes of size 1)."""
    if array.ndim > x.ndim or np.broadcast_shapes(array.shape, x.shape) != x.shape:
        raise FlipLabError(f"QONNX Quant node {node.name!r}: parameter shape {list(array.shape)} "
                           f"does not broadcast to the weight's {list(x.shape)}")
    return array.reshape((1,) * (x.ndim - array.ndim) + array.shape)


def _per_axis(array: np.ndarray, node: onnx.NodeProto, what: str) -> tuple[np.ndarray, int | None]:
    """A Quant parameter broadcast against the weight as DequantizeLinear's 1-D form and axis."""
    long = [axis for axis, size in enumerate(array.shape) if size > 1]
    if not long:
        return np.ravel(array)[:1].reshape(()), None
    if len(long) > 1:
        raise FlipLabError(f"QONNX Quant node {node.name!r}: {what} varies along several axes; "
                           f"only per-tensor and per-channel quantization are read")
    return np.ravel(array), long[0]


def fold_weight_quant(model: onnx.ModelProto) -> onnx.ModelProto:
    """QONNX ``Quant(x, scale, zero_point, bit_width)`` of a float initializer → integer codes
    (int8, or uint8 when unsigned; the declared width recorded) → DequantizeLinear.

    The codes follow QONNX's definition (``_quant_codes``); DequantizeLinear computes
    ``(codes - zero_point) * scale``, Quant's output, exactly. The codes take the initializer's
    name when nothing else read it, else the Quant's output name.

    Raises:
        FlipLabError: a Quant of a constant whose parameters are not constants, whose bit width
            exceeds 8 or is not an integer, whose zero point is not an integer, or whose scale
            varies along several axes; a Quant on an activation (not a stored weight).
    """
    result = copy_model(model)
    graph = result.graph
    if not any(is_qonnx_quant(node) for node in graph.node):
        return result
    readers = consumers(graph)
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    taken = used_names(graph)
    nodes, declared, new_initializers = [], {}, []
    maybe_unused: set[str] = set()
    for node in graph.node:
        if not is_qonnx_quant(node):
            nodes.append(node)
            continue
        source = initializers.get(node.input[0])
        if source is None:
            raise FlipLabError(
                f"QONNX Quant node {node.name!r} quantizes an activation, which is not supported; "
                f"export the model with brevitas's export_onnx_qcdq (QuantizeLinear/DequantizeLinear)")
        params = [constant_array(graph, name) for name in node.input[1:4]]
        if len(params) != 3 or any(p is None for p in params):
            raise FlipLabError(f"QONNX Quant node {node.name!r}: scale, zero point and bit width "
                               f"must be constants; store them as initializers")
        scale, zero_point, bit_width = (np.asarray(p, dtype=np.float64) for p in params)
        bits = float(np.ravel(bit_width)[0])
        if bit_width.size != 1 or bits != int(bits) or not 2 <= bits <= 8:
            raise FlipLabError(f"QONNX Quant node {node.name!r}: bit width {bits:g} is not an "
                               f"integer from 2 to 8; FlipLab reads weights of at most 8 bits")
        if np.any(zero_point != np.round(zero_point)):
            raise FlipLabError(f"QONNX Quant node {node.name!r}: the zero point is not an integer")
        x = numpy_helper.to_array(source)
        codes = _quant_codes(node, x, scale, zero_point, int(bits))
        scale_1d, axis = _per_axis(_aligned(scale, x, node), node, "scale")
        zp_1d, zp_axis = _per_axis(_aligned(zero_point, x, node), node, "zero point")
        if zp_axis is not None and axis is not None and zp_axis != axis:
            raise FlipLabError(f"QONNX Quant node {node.name!r}: scale and zero point vary along "
                               f"different axes; quantize per tensor or per channel on one axis")
        axis = axis if axis is not None else zp_axis
        shape = () if axis is None else (x.shape[axis],)
        scale_1d = np.broadcast_to(scale_1d, shape).astype(x.dtype)
        zp_1d = np.broadcast_to(zp_1d, shape).astype(codes.dtype)
        sole_reader = len(readers.get(source.name, [])) == 1
        name = source.name if sole_reader else fresh_name(node.output[0] + "_codes", taken)
        scale_name = fresh_name(f"{node.name}/scale", taken)
        zp_name = fresh_name(f"{node.name}/zero_point", taken)
        new_initializers += [numpy_helper.from_array(codes, name),
                             numpy_helper.from_array(np.ascontiguousarray(scale_1d), scale_name),
                             numpy_helper.from_array(np.ascontiguousarray(zp_1d), zp_name)]
        extra: dict[str, Any] = {} if axis is None else {"axis": axis}
        nodes.append(helper.make_node("DequantizeLinear", [name, scale_name, zp_name],
                                      [node.output[0]], name=node.name, **extra))
        declared[name] = int(bits)
        maybe_unused.update(n for n in node.input[1:] if n)
        if sole_reader:
            maybe_unused.add(source.name)
    if default_opset(result) < 13 and any("axis" in [a.name for a in n.attribute] for n in nodes
                                           if n.op_type == "DequantizeLinear"):
        raise FlipLabError("QONNX Quant per channel needs ONNX opset 13 or newer for "
                           "DequantizeLinear's axis; re-export with opset >= 13")
    replaced = {tensor.name for tensor in new_initializers}
    survivors = [t for t in graph.initializer if t.name not in replaced]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    graph.initializer.extend(survivors + new_initializers)
    drop_unused_initializers(graph, maybe_unused - replaced)
    drop_stale_value_info(graph)
    drop_unused_opsets(result, QONNX_DOMAINS)
    record_declared_bits(result, declared)
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
    wanted = frozenset(names)
    records = [
        helper.make_tensor_value_info(tensor.name, tensor.data_type, list(tensor.dims))
        for tensor in model.graph.initializer
        if tensor.name in wanted
    ]
    result = copy_model(model, without=wanted)
    graph = result.graph
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
