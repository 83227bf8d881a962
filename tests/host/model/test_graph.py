"""Tests of host.model.graph's read-only views: value_elem_type on hand-built graphs."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from host.model.graph import value_elem_type


def _graph():
    """x (float16) -> Conv(W float16) -> Relu -> Cast(float) -> Where(c, ., zero double)
    -> DequantizeLinear-like chain; every value but the input untyped."""
    nodes = [
        helper.make_node("Conv", ["x", "W"], ["c"]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Reshape", ["r", "shape"], ["flat"]),
        helper.make_node("Cast", ["flat"], ["f32"], to=TensorProto.FLOAT),
        helper.make_node("Greater", ["f32", "t"], ["above"]),
        helper.make_node("Where", ["above", "zero64", "y64"], ["picked"]),
        helper.make_node("DequantizeLinear", ["q", "scale16"], ["dq"]),
        helper.make_node("Relu", ["missing"], ["orphan"]),
    ]
    inits = [numpy_helper.from_array(np.ones((2, 1, 1, 1), np.float16), "W"),
             numpy_helper.from_array(np.array([-1], np.int64), "shape"),
             numpy_helper.from_array(np.float32(1), "t"),
             numpy_helper.from_array(np.float64(0), "zero64"),
             numpy_helper.from_array(np.zeros(3, np.float64), "y64"),
             numpy_helper.from_array(np.zeros(3, np.int8), "q"),
             numpy_helper.from_array(np.float16(0.5), "scale16")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT16, ["N", 1, 2, 2])
    return helper.make_graph(nodes, "g", [x], [helper.make_empty_tensor_value_info("picked")],
                             inits)


@pytest.mark.parametrize("name, elem_type", [
    ("x", TensorProto.FLOAT16),        # a typed graph input
    ("c", TensorProto.FLOAT16),        # from the data input, through Conv
    ("flat", TensorProto.FLOAT16),     # Reshape keeps its data input's type, not the shape's
    ("f32", TensorProto.FLOAT),        # Cast's "to"
    ("picked", TensorProto.DOUBLE),    # Where: its branches, not the condition
    ("dq", TensorProto.FLOAT16),       # DequantizeLinear: its scale's type
    ("shape", TensorProto.INT64),      # an initializer
    ("orphan", TensorProto.UNDEFINED),  # nothing says
    ("nowhere", TensorProto.UNDEFINED),
])
def test_value_elem_type_follows_each_value_back_to_what_fixes_its_type(name, elem_type):
    assert value_elem_type(_graph(), name) == elem_type


def test_a_recorded_value_info_wins():
    g = _graph()
    g.value_info.append(helper.make_tensor_value_info("c", TensorProto.BFLOAT16, None))
    assert value_elem_type(g, "c") == TensorProto.BFLOAT16
