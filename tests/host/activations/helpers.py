"""Small hand-built models for the activation tests (weights chosen so that float32 is exact)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper


def matmul_model(weight: np.ndarray, relu: bool = False) -> onnx.ModelProto:
    """``y = [Relu](x @ weight)``: x [N, in], one layer named ``fc``."""
    w = numpy_helper.from_array(np.asarray(weight, np.float32), "w")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["fc_out" if relu else "y"], name="fc")]
    if relu:
        nodes.append(helper.make_node("Relu", ["fc_out"], ["y"], name="relu"))
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", w.dims[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", w.dims[1]])], [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def small_cnn(seed: int = 0) -> onnx.ModelProto:
    """Conv 3x3 (1->3) Relu MaxPool 2x2 -> Conv 3x3 (3->4) Relu -> GlobalAveragePool ->
    Conv 1x1 (4->3) -> Flatten: the shape of the paper's MNIST network, on 8x8 inputs
    (weights are multiples of 1/4)."""
    rng = np.random.default_rng(seed)

    def w(*shape):
        return (rng.integers(-4, 5, size=shape) / 4).astype(np.float32)

    inits = [numpy_helper.from_array(w(3, 1, 3, 3), "w0"), numpy_helper.from_array(w(3), "b0"),
             numpy_helper.from_array(w(4, 3, 3, 3), "w1"), numpy_helper.from_array(w(4), "b1"),
             numpy_helper.from_array(w(3, 4, 1, 1), "w2"), numpy_helper.from_array(w(3), "b2")]
    nodes = [
        helper.make_node("Conv", ["x", "w0", "b0"], ["a0"], name="conv0", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a0"], ["r0"], name="relu0"),
        helper.make_node("MaxPool", ["r0"], ["p0"], name="pool0", kernel_shape=[2, 2],
                         strides=[2, 2]),
        helper.make_node("Conv", ["p0", "w1", "b1"], ["a1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a1"], ["r1"], name="relu1"),
        helper.make_node("GlobalAveragePool", ["r1"], ["gap"], name="gap"),
        helper.make_node("Conv", ["gap", "w2", "b2"], ["a2"], name="conv2"),
        helper.make_node("Flatten", ["a2"], ["y"], name="flatten"),
    ]
    graph = helper.make_graph(
        nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def run(model: onnx.ModelProto, feeds: dict) -> np.ndarray:
    """The model's first output on ``feeds``."""
    from host.executors.ort import DISABLED_OPTIMIZERS

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"],
                                   disabled_optimizers=DISABLED_OPTIMIZERS)
    return session.run(None, feeds)[0]


def table1_like(seed: int = 0) -> onnx.ModelProto:
    """The paper's Table I MNIST shape in small: Conv 3x3 (1->2) Relu -> Conv 3x3 (2->3) Relu
    MaxPool 2x2 -> Conv 3x3 (3->3) Relu -> GlobalAveragePool -> Conv 1x1 (3->3) -> Flatten,
    8x8 inputs, weights multiples of 1/4 (every layer but the first feeds a local chain)."""
    rng = np.random.default_rng(seed)

    def w(*shape):
        return (rng.integers(-4, 5, size=shape) / 4).astype(np.float32)

    inits = [numpy_helper.from_array(w(2, 1, 3, 3), "w0"), numpy_helper.from_array(w(2), "b0"),
             numpy_helper.from_array(w(3, 2, 3, 3), "w1"), numpy_helper.from_array(w(3), "b1"),
             numpy_helper.from_array(w(3, 3, 3, 3), "w2"), numpy_helper.from_array(w(3), "b2"),
             numpy_helper.from_array(w(3, 3, 1, 1), "w3"), numpy_helper.from_array(w(3), "b3")]
    pads = [1, 1, 1, 1]
    nodes = [
        helper.make_node("Conv", ["x", "w0", "b0"], ["a0"], name="conv0", pads=pads),
        helper.make_node("Relu", ["a0"], ["r0"], name="relu0"),
        helper.make_node("Conv", ["r0", "w1", "b1"], ["a1"], name="conv1", pads=pads),
        helper.make_node("Relu", ["a1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2],
                         strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["a2"], name="conv2", pads=pads),
        helper.make_node("Relu", ["a2"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["gap"], name="gap"),
        helper.make_node("Conv", ["gap", "w3", "b3"], ["a3"], name="conv3"),
        helper.make_node("Flatten", ["a3"], ["y"], name="flatten"),
    ]
    graph = helper.make_graph(
        nodes, "table1", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def as_float16(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model in float16 (weights, input, output), as torch's ``.half()`` exports it."""
    half = onnx.ModelProto()
    half.CopyFrom(model)
    for tensor in half.graph.initializer:
        if tensor.data_type == TensorProto.FLOAT:
            tensor.CopyFrom(numpy_helper.from_array(
                numpy_helper.to_array(tensor).astype(np.float16), tensor.name))
    for value in (*half.graph.input, *half.graph.output):
        value.type.tensor_type.elem_type = TensorProto.FLOAT16
    del half.graph.value_info[:]
    return half
