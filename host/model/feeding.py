"""Putting weights back into a :attr:`WeightSet.graph`: as initializers (constant-weight
kernels, one session per variant) or as graph inputs (one session, weights fed per run)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import onnx
from onnx import helper, numpy_helper

from host.errors import FlipLabError
from host.model.graph import copy_model
from host.model.weights import WeightTensor


def weight_slots(graph: onnx.ModelProto) -> dict[str, onnx.ValueInfoProto]:
    """The weights ``graph`` still lacks: value_info entries no node, input or initializer defines."""
    g = graph.graph
    defined = {t.name for t in g.initializer} | {v.name for v in g.input}
    defined.update(name for node in g.node for name in node.output)
    return {value.name: value for value in g.value_info if value.name not in defined}


def _checked(
    graph: onnx.ModelProto, weights: Mapping[str, np.ndarray]
) -> dict[str, onnx.ValueInfoProto]:
    """The weight slots of ``graph``, after checking each name, dtype and shape against them."""
    slots = weight_slots(graph)
    for name, array in weights.items():
        if name not in slots:
            raise FlipLabError(f"the graph has no missing weight called {name!r}")
        tensor_type = slots[name].type.tensor_type
        expected_dtype = helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)
        expected_shape = tuple(dim.dim_value for dim in tensor_type.shape.dim)
        if np.asarray(array).dtype != expected_dtype or np.shape(array) != expected_shape:
            raise FlipLabError(
                f"weight {name!r}: got {np.asarray(array).dtype}{list(np.shape(array))}, "
                f"the graph expects {np.dtype(expected_dtype)}{list(expected_shape)}"
            )
    return slots


def _without_slot_records(model: onnx.ModelProto, names: set[str]) -> None:
    kept = [value for value in model.graph.value_info if value.name not in names]
    del model.graph.value_info[:]
    model.graph.value_info.extend(kept)


def with_weights_as_initializers(
    graph: onnx.ModelProto, weights: Mapping[str, np.ndarray]
) -> onnx.ModelProto:
    """A copy of ``graph`` with ``weights`` ({name: array}) as constant initializers.

    Raises:
        FlipLabError: a name is not a weight the graph lacks, or its dtype/shape differ.
    """
    _checked(graph, weights)
    result = copy_model(graph)
    _without_slot_records(result, set(weights))
    result.graph.initializer.extend(
        numpy_helper.from_array(np.asarray(array), name) for name, array in weights.items()
    )
    return result


def with_weights_as_inputs(
    graph: onnx.ModelProto, tensors: Iterable[WeightTensor]
) -> onnx.ModelProto:
    """A copy of ``graph`` in which each of ``tensors`` is a graph input of its stored
    dtype and shape, to be fed at every run.

    Raises:
        FlipLabError: a name is not a weight the graph lacks, or its dtype/shape differ.
    """
    tensors = list(tensors)
    slots = _checked(graph, {tensor.name: tensor.values for tensor in tensors})
    result = copy_model(graph)
    _without_slot_records(result, {tensor.name for tensor in tensors})
    for tensor in tensors:
        result.graph.input.append(slots[tensor.name])
    return result
