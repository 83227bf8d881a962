"""``load_model``: from an ONNX file to a :class:`WeightSet`."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable

import numpy as np
import onnx
from onnx import helper

from host.errors import FlipLabError
from host.model.finder import FoundWeight, find_weights, is_qoperator
from host.model.graph import QONNX_DOMAINS, declared_bits, is_bipolar_quant, is_qonnx_quant, scores_output
from host.model.passes import (
    bypass_weight_binarizers,
    drop_initializer_inputs,
    fold_constant_quantize,
    fold_weight_quant,
    lower_bipolar_quant,
    name_unnamed_nodes,
    promote_weight_constants,
    remove_weights,
)
from host.model.reading import read_onnx
from host.model.weights import WeightSet, WeightTensor


def _refuse_unsupported_ops(model: onnx.ModelProto) -> None:
    if model.graph.sparse_initializer:
        name = model.graph.sparse_initializer[0].values.name
        raise FlipLabError(f"sparse initializer {name!r} is not supported; store it dense")
    for node in model.graph.node:
        if is_qoperator(node):
            raise FlipLabError(
                f"QOperator-format model (node {node.name!r} is {node.op_type}); "
                f"export it in QDQ format (QuantizeLinear/DequantizeLinear) instead"
            )
        if node.domain in QONNX_DOMAINS and not (is_bipolar_quant(node) or is_qonnx_quant(node)):
            raise FlipLabError(
                f"QONNX op {node.op_type} (node {node.name!r}) is not supported; "
                f"of the QONNX ops only Quant (on weights) and BipolarQuant are read"
            )


def _dim(dim: onnx.TensorShapeProto.Dimension) -> int | str:
    if dim.HasField("dim_value"):
        return int(dim.dim_value)
    return dim.dim_param or "?"


def _input_dtype(value: onnx.ValueInfoProto) -> str:
    """numpy name of a graph input's element type (float32 when the model leaves it out)."""
    elem_type = value.type.tensor_type.elem_type
    if not elem_type:
        return "float32"
    try:
        return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type)).name
    except (KeyError, TypeError):
        raise FlipLabError(f"the model's data input {value.name!r} has element type "
                           f"{onnx.TensorProto.DataType.Name(elem_type)}, which FlipLab cannot feed; "
                           f"export it with a float or integer input") from None


def _data_input(model: onnx.ModelProto, weight_names: set[str]) -> onnx.ValueInfoProto:
    graph = model.graph
    constants = {tensor.name for tensor in graph.initializer} | weight_names
    inputs = [value for value in graph.input if value.name not in constants]
    if len(inputs) != 1:
        names = ", ".join(value.name for value in inputs) or "none"
        raise FlipLabError(
            f"the model must have exactly one data input, it has {len(inputs)} ({names}); "
            f"export a model whose other inputs are initializers (constants), or wrap it so "
            f"that one tensor feeds it"
        )
    return inputs[0]


def data_input_spec(model: onnx.ModelProto) -> tuple[list[int | str], str]:
    """Shape (symbolic dimensions as strings) and numpy dtype name of the one data input of a
    model whose weights are initializers: what its samples are loaded as."""
    value = _data_input(model, set())
    return [_dim(dim) for dim in value.type.tensor_type.shape.dim], _input_dtype(value)


def _binarize_matches(tensors: list[WeightTensor], patterns: Iterable[str]) -> None:
    for pattern in patterns:
        hits = [
            t for t in tensors
            if fnmatch.fnmatchcase(t.name, pattern) or fnmatch.fnmatchcase(t.layer, pattern)
        ]
        if not hits:
            raise FlipLabError(f"--binarize pattern {pattern!r} matches no weight tensor or layer")
        for tensor in hits:
            if tensor.quant is not None:
                raise FlipLabError(
                    f"--binarize pattern {pattern!r} matches quantized tensor {tensor.name!r}; "
                    f"only float weights can be binarized"
                )
            tensor.binarized = True


def _weight_tensor(weight: FoundWeight, bits: int | None) -> WeightTensor:
    """``bits``: the width the model declares for integer codes narrower than their dtype."""
    use = weight.first
    quant = weight.quant
    if quant is not None:
        quant = {**quant, "bits": bits or weight.values.dtype.itemsize * 8}
    return WeightTensor(
        name=weight.name,
        layer=use.layer.name,
        op_type=use.layer.op_type,
        role=use.role,
        values=weight.values,
        channel_axis=use.channel_axis,
        quant=quant,
        binarized=use.binarizer is not None,
    )


def load_model(path: str | os.PathLike, *, binarize: Iterable[str] = ()) -> WeightSet:
    """Read an ONNX model and find its weight tensors.

    Args:
        path: the .onnx file; external data must lie in its folder.
        binarize: fnmatch patterns on tensor or layer names; every weight tensor whose name
            or layer matches one is marked ``binarized`` (its layer will read sign(values)).

    Returns:
        The weights in graph order and the graph without them (see :class:`WeightSet`).

    Raises:
        FlipLabError: the file is missing or not ONNX, its external data leaves its folder,
            it is a QOperator model, uses an unsupported QONNX op, has a weight-like tensor
            read by an unsupported op, has not exactly one data input, or a ``binarize``
            pattern matches nothing.
    """
    patterns = [binarize] if isinstance(binarize, str) else list(binarize)
    model = read_onnx(path)
    _refuse_unsupported_ops(model)
    model = drop_initializer_inputs(model)
    model = name_unnamed_nodes(model)
    model = promote_weight_constants(model)
    model = fold_constant_quantize(model)
    model = fold_weight_quant(model)
    found = find_weights(model)
    names = [weight.name for weight in found]
    model = remove_weights(model, names)  # first: the passes below copy the graph alone
    binarizers = [node.name for weight in found for node in weight.binarizers]
    model = bypass_weight_binarizers(model, binarizers)
    model = lower_bipolar_quant(model)
    data_input = _data_input(model, set(names))
    if not model.graph.output:
        raise FlipLabError("the model has no output")
    output_name = scores_output(model.graph)
    widths = declared_bits(model)
    tensors = [_weight_tensor(weight, widths.get(weight.name)) for weight in found]
    _binarize_matches(tensors, patterns)
    return WeightSet(
        tensors=tensors,
        graph=model,
        input_name=data_input.name,
        input_shape=[_dim(dim) for dim in data_input.type.tensor_type.shape.dim],
        output_name=output_name,
        input_dtype=_input_dtype(data_input),
    )
