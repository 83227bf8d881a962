"""Model builders and runners shared by the host.model tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from host.model import WeightSet, with_weights_as_initializers, with_weights_as_inputs

QONNX = "qonnx.custom_op.general"


def _model(nodes, inputs, outputs, initializers=(), *, opset=17, domains=()) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "test", inputs, outputs, list(initializers))
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in domains]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _f32(name: str, shape) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _init(name: str, array) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array), name)


def _save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, str(path))
    return path


def _run(model: onnx.ModelProto, feeds: dict, *, optimize: bool = True) -> np.ndarray:
    options = ort.SessionOptions()
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


def _stored(ws: WeightSet) -> dict[str, np.ndarray]:
    return {t.name: t.values for t in ws.tensors}


def _run_reinserted(ws: WeightSet, x: np.ndarray, weights=None, *, optimize=True):
    """Outputs of ws.graph with `weights` put back as initializers and as inputs."""
    weights = _stored(ws) if weights is None else weights
    as_init = with_weights_as_initializers(ws.graph, weights)
    onnx.checker.check_model(as_init)
    as_inputs = with_weights_as_inputs(ws.graph, ws.tensors)
    onnx.checker.check_model(as_inputs)
    y_init = _run(as_init, {ws.input_name: x}, optimize=optimize)
    y_inputs = _run(as_inputs, {ws.input_name: x, **weights}, optimize=optimize)
    return y_init, y_inputs


def float_cnn(rng, *, named: bool = True) -> onnx.ModelProto:
    """x[N,1,8,8] → Conv(4,3×3) → Clip(0,6) → Reshape(val_7) → Gemm(transB=1, 3) → y."""
    name = (lambda n: n) if named else (lambda n: "")
    nodes = [
        helper.make_node("Conv", ["x", "conv1.weight", "conv1.bias"], ["c"], name=name("conv1")),
        helper.make_node("Clip", ["c", "clip_lo", "clip_hi"], ["r"], name=name("act1")),
        helper.make_node("Reshape", ["r", "val_7"], ["f"], name=name("flatten")),
        helper.make_node("Gemm", ["f", "fc.weight", "fc.bias"], ["y"], transB=1, name=name("fc")),
    ]
    inits = [
        _init("conv1.weight", rng.normal(size=(4, 1, 3, 3)).astype(np.float32)),
        _init("conv1.bias", rng.normal(size=4).astype(np.float32)),
        _init("clip_lo", np.float32(0.0)),
        _init("clip_hi", np.float32(6.0)),
        _init("val_7", np.array([-1, 144], dtype=np.int64)),
        _init("fc.weight", (rng.normal(size=(3, 144)) / 12).astype(np.float32)),
        _init("fc.bias", rng.normal(size=3).astype(np.float32)),
    ]
    return _model(nodes, [_f32("x", ["N", 1, 8, 8])], [_f32("y", ["N", 3])], inits)


def float_mlp(rng) -> onnx.ModelProto:
    """x[N,8] → MatMul(w1[8,16]) → Add(b1) → Relu → Gemm(w2[16,4], b2, transB=0) → y."""
    nodes = [
        helper.make_node("MatMul", ["x", "fc1.weight"], ["m"], name="fc1"),
        helper.make_node("Add", ["m", "fc1.bias"], ["a"], name="fc1_bias"),
        helper.make_node("Relu", ["a"], ["r"], name="relu1"),
        helper.make_node("Gemm", ["r", "fc2.weight", "fc2.bias"], ["y"], name="fc2"),
    ]
    inits = [
        _init("fc1.weight", rng.normal(size=(8, 16)).astype(np.float32)),
        _init("fc1.bias", rng.normal(size=16).astype(np.float32)),
        _init("fc2.weight", rng.normal(size=(16, 4)).astype(np.float32)),
        _init("fc2.bias", rng.normal(size=4).astype(np.float32)),
    ]
    return _model(nodes, [_f32("x", ["N", 8])], [_f32("y", ["N", 4])], inits)


def _one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message and message
    return message


def _quant_model(w, scale, zero_point, bits, *, signed=1, narrow=0, x_shape=("N", 4)):
    nodes = [helper.make_node("Quant", ["w", "s", "z", "b"], ["wq"], name="quant",
                              domain="qonnx.custom_op.general", signed=signed, narrow=narrow,
                              rounding_mode="ROUND"),
             helper.make_node("MatMul", ["x", "wq"], ["y"], name="fc")]
    inits = [_init("w", w), _init("s", np.asarray(scale, np.float32)),
             _init("z", np.asarray(zero_point, np.float32)), _init("b", np.float32(bits))]
    return _model(nodes, [_f32("x", list(x_shape))], [_f32("y", ["N", w.shape[1]])], inits,
                  opset=13, domains=["qonnx.custom_op.general"])
