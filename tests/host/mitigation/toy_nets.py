"""Small ONNX chains built from numpy arrays, for the relevance and rescale tests."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def chain_model(input_shape: list, layers: list[tuple], *, opset: int = 17) -> onnx.ModelProto:
    """A model ``input`` -> layers -> ``logits``. Layers: ("conv", W, b | None, pads),
    ("gemm", W [K, C], b | None), ("matmul", W [C, K], b | None), ("relu",), ("maxpool", k),
    ("avgpool", k), ("gap",), ("flatten",), ("op", op_type) for any other single-input op."""
    nodes, inits = [], []
    current = "input"
    for i, layer in enumerate(layers):
        kind, out = layer[0], f"v{i}"
        if kind == "conv":
            w, b, pads = layer[1], layer[2], layer[3]
            inits.append(numpy_helper.from_array(np.asarray(w, np.float32), f"w{i}"))
            ins = [current, f"w{i}"]
            if b is not None:
                inits.append(numpy_helper.from_array(np.asarray(b, np.float32), f"b{i}"))
                ins.append(f"b{i}")
            nodes.append(helper.make_node("Conv", ins, [out], name=f"conv{i}",
                                          pads=[pads] * 4, kernel_shape=list(w.shape[2:])))
        elif kind == "gemm":
            w, b = layer[1], layer[2]
            inits.append(numpy_helper.from_array(np.asarray(w, np.float32), f"w{i}"))
            ins = [current, f"w{i}"]
            if b is not None:
                inits.append(numpy_helper.from_array(np.asarray(b, np.float32), f"b{i}"))
                ins.append(f"b{i}")
            nodes.append(helper.make_node("Gemm", ins, [out], name=f"gemm{i}", transB=1))
        elif kind == "matmul":
            w, b = layer[1], layer[2]
            inits.append(numpy_helper.from_array(np.asarray(w, np.float32), f"w{i}"))
            mm = out if b is None else f"mm{i}"
            nodes.append(helper.make_node("MatMul", [current, f"w{i}"], [mm], name=f"matmul{i}"))
            if b is not None:
                inits.append(numpy_helper.from_array(np.asarray(b, np.float32), f"b{i}"))
                nodes.append(helper.make_node("Add", [mm, f"b{i}"], [out], name=f"add{i}"))
        elif kind == "relu":
            nodes.append(helper.make_node("Relu", [current], [out], name=f"relu{i}"))
        elif kind in ("maxpool", "avgpool"):
            k = layer[1]
            op = "MaxPool" if kind == "maxpool" else "AveragePool"
            nodes.append(helper.make_node(op, [current], [out], name=f"{kind}{i}",
                                          kernel_shape=[k, k], strides=[k, k]))
        elif kind == "gap":
            nodes.append(helper.make_node("GlobalAveragePool", [current], [out], name=f"gap{i}"))
        elif kind == "flatten":
            nodes.append(helper.make_node("Flatten", [current], [out], name=f"flatten{i}"))
        elif kind == "op":
            nodes.append(helper.make_node(layer[1], [current], [out], name=f"op{i}"))
        current = out
    nodes[-1].output[0] = "logits"
    graph = helper.make_graph(
        nodes, "toy", [helper.make_tensor_value_info("input", TensorProto.FLOAT, input_shape)],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", "classes"])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x.astype(np.float32)})[0]
