"""Small read-only views of an ONNX graph shared by the passes and the weight finder."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable

import numpy as np
import onnx
from onnx import helper, numpy_helper

#: Domains of the QONNX / FINN custom ops (both spellings are in use).
QONNX_DOMAINS = frozenset({"qonnx.custom_op.general", "finn.custom_op.general", "finn"})


#: Model metadata key under which the passes record the bit width a model declares for an
#: integer weight narrower than its ONNX dtype (a JSON object {tensor name: bits}).
DECLARED_BITS_KEY = "fliplab.declared_bits"


def declared_bits(model: onnx.ModelProto) -> dict[str, int]:
    """{tensor name: bits} the model declares for integer weights narrower than their dtype."""
    for entry in model.metadata_props:
        if entry.key == DECLARED_BITS_KEY:
            return {name: int(bits) for name, bits in json.loads(entry.value).items()}
    return {}


#: Model metadata key listing initializers that are part of a graph pass's mechanism, never
#: weights even where a layer reads them (a JSON list of names): the clipped ReLU's depthwise
#: correction (host.mitigation.clip) holds its threshold in a Conv's weight and bias.
FIXED_CONSTANTS_KEY = "fliplab.fixed_constants"


def fixed_constants(model: onnx.ModelProto) -> set[str]:
    """The initializers a pass marked as never being weights (:data:`FIXED_CONSTANTS_KEY`)."""
    for entry in model.metadata_props:
        if entry.key == FIXED_CONSTANTS_KEY:
            names = json.loads(entry.value)
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                from host.errors import FlipLabError

                raise FlipLabError(f"model metadata {FIXED_CONSTANTS_KEY} is not a list of names")
            return set(names)
    return set()


def record_fixed_constants(model: onnx.ModelProto, names: Iterable[str]) -> None:
    """Add ``names`` to the model's fixed constants (in place)."""
    merged = sorted(fixed_constants(model) | set(names))
    kept = [entry for entry in model.metadata_props if entry.key != FIXED_CONSTANTS_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    entry = model.metadata_props.add()
    entry.key, entry.value = FIXED_CONSTANTS_KEY, json.dumps(merged)


def record_declared_bits(model: onnx.ModelProto, bits: dict[str, int]) -> None:
    """Add ``bits`` ({tensor name: bits}) to the model's declared widths (in place)."""
    merged = {**declared_bits(model), **bits}
    kept = [entry for entry in model.metadata_props if entry.key != DECLARED_BITS_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    entry = model.metadata_props.add()
    entry.key, entry.value = DECLARED_BITS_KEY, json.dumps(merged, sort_keys=True)


def is_qonnx_quant(node: onnx.NodeProto) -> bool:
    """True for a QONNX Quant node (any of its domains)."""
    return node.op_type == "Quant" and node.domain in QONNX_DOMAINS


def is_default_domain(node: onnx.NodeProto) -> bool:
    """True for ops of the standard ONNX domain."""
    return node.domain in ("", "ai.onnx")


def is_bipolar_quant(node: onnx.NodeProto) -> bool:
    """True for a QONNX BipolarQuant node (any of its domains)."""
    return node.op_type == "BipolarQuant" and node.domain in QONNX_DOMAINS


def consumers(graph: onnx.GraphProto) -> dict[str, list[tuple[onnx.NodeProto, int]]]:
    """For each value name, the (node, input index) pairs of the main graph that read it."""
    readers: dict[str, list[tuple[onnx.NodeProto, int]]] = defaultdict(list)
    for node in graph.node:
        for index, name in enumerate(node.input):
            if name:
                readers[name].append((node, index))
    return readers


def producers(graph: onnx.GraphProto) -> dict[str, onnx.NodeProto]:
    """For each value name, the node of the main graph that writes it."""
    return {name: node for node in graph.node for name in node.output if name}


def constant_node_array(node: onnx.NodeProto) -> np.ndarray | None:
    """The value of a Constant node, or None when it is not a plain tensor constant."""
    for attribute in node.attribute:
        if attribute.name == "value":
            return numpy_helper.to_array(attribute.t)
        if attribute.name in ("value_float", "value_floats"):
            return np.array(helper.get_attribute_value(attribute), dtype=np.float32)
        if attribute.name in ("value_int", "value_ints"):
            return np.array(helper.get_attribute_value(attribute), dtype=np.int64)
    return None


def constant_array(graph: onnx.GraphProto, name: str) -> np.ndarray | None:
    """The value of ``name`` when it is an initializer or a Constant node's output, else None."""
    for tensor in graph.initializer:
        if tensor.name == name:
            return numpy_helper.to_array(tensor)
    for node in graph.node:
        if node.op_type == "Constant" and is_default_domain(node) and name in node.output:
            return constant_node_array(node)
    return None


def default_opset(model: onnx.ModelProto) -> int:
    """Version of the standard ONNX opset the model imports."""
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx"):
            return opset.version
    return 0


#: ONNX element types of a float tensor
_FLOAT_TYPES = frozenset({onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16,
                          onnx.TensorProto.BFLOAT16, onnx.TensorProto.DOUBLE})


#: ONNX element types of an integer tensor
_INTEGER_TYPES = frozenset({onnx.TensorProto.INT8, onnx.TensorProto.UINT8, onnx.TensorProto.INT16,
                            onnx.TensorProto.UINT16, onnx.TensorProto.INT32, onnx.TensorProto.UINT32,
                            onnx.TensorProto.INT64, onnx.TensorProto.UINT64})


#: output kinds of a classifier whose scores are not a tensor (predicted labels, ZipMap)
CLASSIFIER_KINDS = frozenset({"labels", "sequence_type", "map_type"})


def _output_kind(value: onnx.ValueInfoProto) -> str:
    """"float", "integer", "labels" (an integer tensor of rank <= 1 or [N, 1]), another
    element type's name ("string", "bool") or the type's kind ("sequence_type", "map_type");
    "float" when no type is recorded."""
    kind = value.type.WhichOneof("value")
    if kind is None:
        return "float"
    if kind != "tensor_type":
        return kind
    tensor = value.type.tensor_type
    if tensor.elem_type in _FLOAT_TYPES | {onnx.TensorProto.UNDEFINED}:
        return "float"
    if tensor.elem_type not in _INTEGER_TYPES:
        return onnx.TensorProto.DataType.Name(tensor.elem_type).lower()  # string, bool...
    dims = tensor.shape.dim if tensor.HasField("shape") else None
    if dims is not None and (len(dims) <= 1 or dims[-1].dim_value == 1):
        return "labels"
    return "integer"


def scores_output(graph: onnx.GraphProto) -> str:
    """The graph output holding the class scores that accuracy is taken from.

    The first float tensor output: a classifier exported with its predicted label first
    (sklearn-onnx: ``output_label`` int64 [N], then ``output_probability`` [N, classes]) is
    scored on its probabilities. Without a float one, the first integer tensor output that is
    not a label vector (a quantised score vector). Sequences and maps (a ZipMap) and label
    vectors are never scores. An output with no type recorded counts as a float tensor.
    Outputs of neither kind (bool, string) are no classifier's: the first one is returned.

    Raises:
        FlipLabError: a classifier's labels, sequences or maps but no score tensor.
    """
    kinds = {value.name: _output_kind(value) for value in graph.output}
    for wanted in ("float", "integer"):
        for name, kind in kinds.items():
            if kind == wanted:
                return name
    if graph.output and not CLASSIFIER_KINDS & set(kinds.values()):
        return graph.output[0].name  # not a classifier's outputs: nothing better to take
    from host.errors import FlipLabError

    listed = ", ".join(f"{name!r} ({kind.removesuffix('_type')})" for name, kind in kinds.items())
    raise FlipLabError(f"no output of the model holds class scores [N, classes] to take accuracy "
                       f"from (outputs: {listed or 'none'}); export the scores as a tensor "
                       f"(sklearn-onnx: options={{'zipmap': False}})")


#: ops whose output's element type is not their first input's
_TYPE_FROM = {"Where": 1, "DequantizeLinear": 1}


def value_elem_type(graph: onnx.GraphProto, name: str) -> int:
    """ONNX element type of the value ``name`` (``TensorProto.UNDEFINED`` when unknown).

    Read from the graph's inputs, outputs, value_info and initializers; otherwise followed
    back through its producers (an op's output has its data input's type; Cast's is its
    ``to``, DequantizeLinear's its scale's, Where's its branches')."""
    known = {value.name: value.type.tensor_type.elem_type
             for value in (*graph.input, *graph.output, *graph.value_info)
             if value.type.HasField("tensor_type") and value.type.tensor_type.elem_type}
    known.update((tensor.name, tensor.data_type) for tensor in graph.initializer)
    made_by = producers(graph)
    seen: set[str] = set()
    while name and name not in seen:
        if name in known:
            return known[name]
        seen.add(name)
        node = made_by.get(name)
        if node is None or not node.input:
            break
        if node.op_type == "Cast":
            return next(a.i for a in node.attribute if a.name == "to")
        index = _TYPE_FROM.get(node.op_type, 0)
        name = node.input[index] if len(node.input) > index else ""
    return onnx.TensorProto.UNDEFINED


def used_names(graph: onnx.GraphProto) -> set[str]:
    """Every value and node name in the main graph (to make fresh names from)."""
    names = {tensor.name for tensor in graph.initializer}
    names.update(value.name for value in graph.input)
    names.update(value.name for value in graph.output)
    for node in graph.node:
        names.add(node.name)
        names.update(node.input)
        names.update(node.output)
    names.discard("")
    return names


def fresh_name(base: str, taken: set[str]) -> str:
    """``base`` if free, else ``base_1``, ``base_2``…; the result is added to ``taken``."""
    name, counter = base, 0
    while name in taken:
        counter += 1
        name = f"{base}_{counter}"
    taken.add(name)
    return name


def drop_stale_value_info(graph: onnx.GraphProto) -> None:
    """Remove value_info entries (in place) for values no node, input or initializer has."""
    live = used_names(graph)
    kept = [value for value in graph.value_info if value.name in live]
    del graph.value_info[:]
    graph.value_info.extend(kept)


def drop_unused_initializers(graph: onnx.GraphProto, candidates: set[str]) -> None:
    """Remove (in place) the initializers in ``candidates`` that nothing reads any more."""
    read = {name for node in graph.node for name in node.input}
    read.update(value.name for value in graph.output)
    kept = [t for t in graph.initializer if t.name not in candidates or t.name in read]
    del graph.initializer[:]
    graph.initializer.extend(kept)


def drop_unused_opsets(model: onnx.ModelProto, domains: frozenset[str]) -> None:
    """Remove (in place) opset imports of ``domains`` that no node uses any more."""
    in_use = {node.domain for node in model.graph.node}
    kept = [o for o in model.opset_import if o.domain not in domains or o.domain in in_use]
    del model.opset_import[:]
    model.opset_import.extend(kept)


def copy_model(model: onnx.ModelProto, *, without: frozenset[str] = frozenset()
               ) -> onnx.ModelProto:
    """A deep copy, so that passes stay pure functions; the initializers named ``without``
    are left out of it.

    They are never copied at all, rather than copied and deleted: protobuf keeps a deleted
    field's memory until the whole message goes, so a graph stripped of its weights that way
    would hold them as long as it lives.
    """
    result = onnx.ModelProto()
    if not without:
        result.CopyFrom(model)
        return result
    try:
        for field, value in model.ListFields():
            if field.name != "graph":
                _copy_field(result, field, value)
        for field, value in model.graph.ListFields():
            if field.name == "initializer":
                result.graph.initializer.extend(t for t in value if t.name not in without)
            else:
                _copy_field(result.graph, field, value)
    except UnicodeDecodeError:  # a name or doc string that is not UTF-8 cannot be read
        result = onnx.ModelProto()  # field by field: copy it all, then take them out
        result.CopyFrom(model)
        kept = [t for t in result.graph.initializer if t.name not in without]
        del result.graph.initializer[:]
        result.graph.initializer.extend(kept)
    return result


def _copy_field(target, field, value) -> None:
    repeated = getattr(field, "is_repeated", None)  # protobuf >= 6.31; earlier: label
    if repeated if repeated is not None else field.label == field.LABEL_REPEATED:
        getattr(target, field.name).extend(value)
    elif field.message_type is not None:
        getattr(target, field.name).CopyFrom(value)
    else:
        setattr(target, field.name, value)
