"""The architecture change of seed 002 (Sec. IV-A, V-E1) as a graph -> graph pass.

A global average pooling read by a 1×1 convolution (stride 1, no padding) leaves a bottleneck:
the pooled layer holds only C neurons, and a bit flip there reaches the logits undamped.
:func:`pool_after_pointwise` swaps the two: the 1×1 convolution runs on the C × M × N feature
maps and the pooling follows it. The convolution is linear (bias included: the mean of
``W·f + b`` is ``W·mean(f) + b``), so the network computes the same function with the same
weights, and the stored layer before the pooling grows from C to K × M × N neurons.
"""

from __future__ import annotations

import onnx
from onnx import helper

from host.errors import FlipLabError
from host.model.graph import consumers, copy_model, producers


def _attr(node: onnx.NodeProto, name: str, default):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _pointwise(graph: onnx.GraphProto, node: onnx.NodeProto) -> bool:
    if node.op_type != "Conv" or _attr(node, "group", 1) != 1:
        return False
    shape = next((list(t.dims) for t in graph.initializer if t.name == node.input[1]), None)
    return (shape is not None and shape[2:] == [1, 1]
            and all(s == 1 for s in _attr(node, "strides", [1, 1]))
            and not any(_attr(node, "pads", [0, 0, 0, 0])))


def pool_after_pointwise(model: onnx.ModelProto) -> onnx.ModelProto:
    """Every GlobalAveragePool read only by a 1×1 Conv moved after that Conv (same function);
    FlipLabError when the model has no such pair."""
    result = copy_model(model)
    g = result.graph
    readers = consumers(g)
    outputs = {v.name for v in g.output}
    swapped = 0
    for gap in list(g.node):
        if gap.op_type != "GlobalAveragePool" or gap.output[0] in outputs:
            continue
        after = readers.get(gap.output[0], [])
        if len(after) != 1 or after[0][1] != 0 or not _pointwise(g, after[0][0]):
            continue
        conv = after[0][0]
        a, b, c = gap.input[0], gap.output[0], conv.output[0]
        conv.input[0], conv.output[0] = a, b
        gap.input[0], gap.output[0] = b, c
        nodes = list(g.node)
        i, j = nodes.index(gap), nodes.index(conv)
        nodes[i], nodes[j] = nodes[j], nodes[i]
        del g.node[:]
        g.node.extend(nodes)
        swapped += 1
    if not swapped:
        raise FlipLabError("the model has no global average pooling read by a 1x1 convolution")
    del g.value_info[:]  # the swapped values changed shape
    assert producers(g)  # still a graph with producers
    return result
