"""host.model.passes.expose_values: inner values become outputs; the input model is untouched."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

from host.model.passes import expose_values


def _model() -> onnx.ModelProto:
    nodes = [helper.make_node("Add", ["x", "one"], ["a"]),
             helper.make_node("Mul", ["a", "two"], ["y"])]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 3])],
        [numpy_helper.from_array(np.float32(1), "one"), numpy_helper.from_array(np.float32(2), "two")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_exposed_value_is_returned_beside_the_output():
    model = _model()
    exposed = expose_values(model, ["a", "y", "a"])
    assert [v.name for v in model.graph.output] == ["y"]          # pure: input unchanged
    assert [v.name for v in exposed.graph.output] == ["y", "a"]   # no duplicates
    onnx.checker.check_model(exposed)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    y, a = ort.InferenceSession(exposed.SerializeToString()).run(None, {"x": x})
    np.testing.assert_array_equal(a, x + 1)
    np.testing.assert_array_equal(y, (x + 1) * 2)
