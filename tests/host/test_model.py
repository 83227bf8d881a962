"""Tests of host.model: finding weights in ONNX graphs, QDQ/QCDQ, binarized forms, refusals.

Every model here is built with onnx.helper (or quantized from one with onnxruntime's
quantize_static); the truth is the model's own onnxruntime output before the
transformation, or numpy for graphs onnxruntime cannot run (QONNX BipolarQuant).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

from host.errors import FlipLabError
from host.model import (
    WeightSet,
    load_model,
    weight_slots,
    with_weights_as_initializers,
    with_weights_as_inputs,
)
from host.model.passes import (
    bypass_weight_binarizers,
    fold_constant_quantize,
    lower_bipolar_quant,
    name_unnamed_nodes,
    promote_weight_constants,
    remove_weights,
)

SHARED_MNIST = Path("/work/shared/models/qin_mnist_cnn.onnx")
QONNX = "qonnx.custom_op.general"
FINN = "finn.custom_op.general"


# ----------------------------------------------------------------------------- helpers


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


def mnist_like_cnn(rng) -> onnx.ModelProto:
    """The layer structure and tensor names of the reference MNIST CNN, random weights."""
    def conv(i, o, k):
        return (rng.normal(size=(o, i, k, k)) / np.sqrt(i * k * k)).astype(np.float32)

    nodes, inits, x = [], [], "input"
    for index, (cin, cout) in enumerate([(1, 32), (32, 32), (32, 64), (64, 64)], start=1):
        weight, bias = f"conv{index}.weight", f"conv{index}.bias"
        nodes.append(helper.make_node("Conv", [x, weight, bias], [f"c{index}"], name=f"node_conv2d_{index}"))
        nodes.append(helper.make_node("Relu", [f"c{index}"], [f"r{index}"], name=f"node_relu_{index}"))
        inits += [_init(weight, conv(cin, cout, 3)), _init(bias, np.full(cout, 0.01, np.float32))]
        x = f"r{index}"
        if index in (2, 4):
            nodes.append(helper.make_node("MaxPool", [x], [f"p{index}"], kernel_shape=[2, 2],
                                          strides=[2, 2], name=f"node_pool_{index}"))
            x = f"p{index}"
    nodes += [
        helper.make_node("Reshape", [x, "val_7"], ["view"], name="node_Reshape_3"),
        helper.make_node("Gemm", ["view", "fc1.weight", "fc1.bias"], ["linear"], transB=1, name="node_linear"),
        helper.make_node("Relu", ["linear"], ["relu_4"], name="node_relu_5"),
        helper.make_node("Gemm", ["relu_4", "fc2.weight", "fc2.bias"], ["logits"], transB=1, name="node_linear_1"),
    ]
    inits += [
        _init("val_7", np.array([-1, 1024], np.int64)),
        _init("fc1.weight", (rng.normal(size=(256, 1024)) / 32).astype(np.float32)),
        _init("fc1.bias", np.zeros(256, np.float32)),
        _init("fc2.weight", (rng.normal(size=(10, 256)) / 16).astype(np.float32)),
        _init("fc2.bias", np.zeros(10, np.float32)),
    ]
    model = _model(nodes, [_f32("input", ["batch", 1, 28, 28])], [_f32("logits", ["batch", 10])], inits)
    return onnx.shape_inference.infer_shapes(model)  # value_info, as exporters write it


class _Batches(CalibrationDataReader):
    def __init__(self, name: str, shape, rng) -> None:
        self._batches = iter([{name: rng.random(shape, dtype=np.float32)} for _ in range(4)])

    def get_next(self):
        return next(self._batches, None)


def _quantize(model, tmp_path: Path, name: str, shape, rng, *, per_channel: bool, fmt=QuantFormat.QDQ) -> Path:
    source = _save(model, tmp_path / f"{name}_float.onnx")
    target = tmp_path / f"{name}_q.onnx"
    quantize_static(str(source), str(target), _Batches(model.graph.input[0].name, shape, rng),
                    quant_format=fmt, per_channel=per_channel)
    return target


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# ----------------------------------------------------------------------------- float models


def test_float_cnn_finds_layers_roles_and_axes(tmp_path, rng):
    ws = load_model(_save(float_cnn(rng), tmp_path / "cnn.onnx"))
    got = [(t.name, t.layer, t.op_type, t.role, t.shape, t.channel_axis) for t in ws.tensors]
    assert got == [
        ("conv1.weight", "conv1", "Conv", "weight", (4, 1, 3, 3), 0),
        ("conv1.bias", "conv1", "Conv", "bias", (4,), 0),
        ("fc.weight", "fc", "Gemm", "weight", (3, 144), 0),
        ("fc.bias", "fc", "Gemm", "bias", (3,), 0),
    ]
    assert all(t.quant is None and not t.binarized and t.values.dtype == np.float32 for t in ws.tensors)
    assert (ws.input_name, ws.input_shape, ws.output_name) == ("x", ["N", 1, 8, 8], "y")
    # Non-weights stay: the Reshape shape and the Clip bounds; weights are gone.
    left = {t.name for t in ws.graph.graph.initializer}
    assert left == {"val_7", "clip_lo", "clip_hi"}
    assert set(weight_slots(ws.graph)) == {t.name for t in ws.tensors}


def test_float_cnn_round_trip_through_onnxruntime(tmp_path, rng):
    model = float_cnn(rng)
    ws = load_model(_save(model, tmp_path / "cnn.onnx"))
    x = rng.random((5, 1, 8, 8), dtype=np.float32)
    expected = _run(model, {"x": x})
    y_init, y_inputs = _run_reinserted(ws, x)
    np.testing.assert_array_equal(y_init, expected)
    np.testing.assert_allclose(y_inputs, expected, rtol=1e-5, atol=1e-5)
    assert ws.graph.opset_import == model.opset_import


def test_float_mlp_matmul_add_bias_and_gemm_trans_b0(tmp_path, rng):
    model = float_mlp(rng)
    ws = load_model(_save(model, tmp_path / "mlp.onnx"))
    got = [(t.name, t.layer, t.op_type, t.role, t.channel_axis) for t in ws.tensors]
    assert got == [
        ("fc1.weight", "fc1", "MatMul", "weight", 1),
        ("fc1.bias", "fc1", "MatMul", "bias", 0),
        ("fc2.weight", "fc2", "Gemm", "weight", 1),
        ("fc2.bias", "fc2", "Gemm", "bias", 0),
    ]
    x = rng.normal(size=(3, 8)).astype(np.float32)
    y_init, y_inputs = _run_reinserted(ws, x)
    np.testing.assert_array_equal(y_init, _run(model, {"x": x}))
    np.testing.assert_allclose(y_inputs, y_init, rtol=1e-6)


def test_matmul_with_weight_as_first_input(tmp_path, rng):
    model = _model(
        [helper.make_node("MatMul", ["w", "x"], ["y"], name="proj")],
        [_f32("x", [6, "N"])], [_f32("y", [5, "N"])],
        [_init("w", rng.normal(size=(5, 6)).astype(np.float32))],
    )
    ws = load_model(_save(model, tmp_path / "m.onnx"))
    assert [(t.name, t.role, t.channel_axis) for t in ws.tensors] == [("w", "weight", 0)]
    x = rng.normal(size=(6, 2)).astype(np.float32)
    np.testing.assert_array_equal(_run_reinserted(ws, x)[0], _run(model, {"x": x}))


@pytest.mark.parametrize("trans_a", [0, 1])
def test_gemm_with_constant_first_input(tmp_path, rng, trans_a):
    w = rng.normal(size=(6, 5) if trans_a else (5, 6)).astype(np.float32)
    model = _model(
        [helper.make_node("Gemm", ["w", "x"], ["y"], transA=trans_a, name="proj")],
        [_f32("x", [6, 2])], [_f32("y", [5, 2])], [_init("w", w)],
    )
    ws = load_model(_save(model, tmp_path / "g.onnx"))
    tensor = ws["w"]
    assert (tensor.role, tensor.channel_axis) == ("weight", trans_a)
    cut = w.copy()
    np.moveaxis(cut, tensor.channel_axis, 0)[0] = 0.0  # output row 0 only
    x = rng.normal(size=(6, 2)).astype(np.float32)
    y = _run(with_weights_as_initializers(ws.graph, {"w": cut}), {"x": x})
    np.testing.assert_array_equal(y[0], 0.0)
    np.testing.assert_array_equal(y[1:], _run(model, {"x": x})[1:])


def test_unnamed_nodes_get_stable_unique_names(tmp_path, rng):
    model = float_cnn(rng, named=False)
    model.graph.node[2].name = "Gemm_3"  # collides with the name the Gemm would get
    onnx.checker.check_model(model)
    path = _save(model, tmp_path / "cnn.onnx")
    first, second = load_model(path), load_model(path)
    assert [t.layer for t in first.tensors] == ["Conv_0", "Conv_0", "Gemm_3_1", "Gemm_3_1"]
    assert [t.layer for t in second.tensors] == [t.layer for t in first.tensors]
    names = [node.name for node in first.graph.graph.node]
    assert len(set(names)) == len(names) and "" not in names


def test_recurrent_and_embedding_roles(tmp_path, rng):
    hidden, embed = 3, 4
    nodes = [
        helper.make_node("Gather", ["emb", "tokens"], ["e"], name="embedding"),
        helper.make_node("LSTM", ["e", "lstm.W", "lstm.R", "lstm.B", "", "", "", "lstm.P"], ["", "h"],
                         hidden_size=hidden, name="lstm"),
        helper.make_node("GRU", ["e", "gru.W", "gru.R", "gru.B"], ["", "g"], hidden_size=hidden, name="gru"),
        helper.make_node("Add", ["h", "g"], ["y"], name="sum"),
    ]
    inits = [
        _init("emb", rng.normal(size=(10, embed)).astype(np.float32)),
        _init("lstm.W", rng.normal(size=(1, 4 * hidden, embed)).astype(np.float32)),
        _init("lstm.R", rng.normal(size=(1, 4 * hidden, hidden)).astype(np.float32)),
        _init("lstm.B", rng.normal(size=(1, 8 * hidden)).astype(np.float32)),
        _init("lstm.P", rng.normal(size=(1, 3 * hidden)).astype(np.float32)),
        _init("gru.W", rng.normal(size=(1, 3 * hidden, embed)).astype(np.float32)),
        _init("gru.R", rng.normal(size=(1, 3 * hidden, hidden)).astype(np.float32)),
        _init("gru.B", rng.normal(size=(1, 6 * hidden)).astype(np.float32)),
    ]
    model = _model(nodes, [helper.make_tensor_value_info("tokens", TensorProto.INT64, [5, 2])],
                   [_f32("y", [1, 2, hidden])], inits)
    ws = load_model(_save(model, tmp_path / "rnn.onnx"))
    got = [(t.name, t.layer, t.role, t.channel_axis) for t in ws.tensors]
    assert got == [
        ("emb", "embedding", "embedding", 0),
        ("lstm.W", "lstm", "weight", 1), ("lstm.R", "lstm", "recurrence", 1), ("lstm.B", "lstm", "bias", 1),
        ("lstm.P", "lstm", "peephole", 1),
        ("gru.W", "gru", "weight", 1), ("gru.R", "gru", "recurrence", 1), ("gru.B", "gru", "bias", 1),
    ]
    tokens = rng.integers(0, 10, size=(5, 2)).astype(np.int64)
    y_init, y_inputs = _run_reinserted(ws, tokens)
    np.testing.assert_array_equal(y_init, _run(model, {"tokens": tokens}))
    np.testing.assert_allclose(y_inputs, y_init, rtol=1e-5, atol=1e-6)


def test_conv_transpose_weight_axis_is_one(tmp_path, rng):
    model = _model(
        [helper.make_node("ConvTranspose", ["x", "up.W", "up.B"], ["y"], name="up")],
        [_f32("x", ["N", 2, 3, 3])], [_f32("y", ["N", 5, 4, 4])],
        [_init("up.W", rng.normal(size=(2, 5, 2, 2)).astype(np.float32)),
         _init("up.B", rng.normal(size=5).astype(np.float32))],
    )
    ws = load_model(_save(model, tmp_path / "ct.onnx"))
    assert [(t.role, t.channel_axis) for t in ws.tensors] == [("weight", 1), ("bias", 0)]
    x = rng.normal(size=(1, 2, 3, 3)).astype(np.float32)
    np.testing.assert_array_equal(_run_reinserted(ws, x)[0], _run(model, {"x": x}))


def test_constant_node_weight_is_found(tmp_path, rng):
    w = rng.normal(size=(4, 2)).astype(np.float32)
    model = _model(
        [helper.make_node("Constant", [], ["w"], value=numpy_helper.from_array(w), name="w_const"),
         helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")],
        [_f32("x", ["N", 4])], [_f32("y", ["N", 2])],
    )
    ws = load_model(_save(model, tmp_path / "c.onnx"))
    assert ws.names == ["w"]
    np.testing.assert_array_equal(ws["w"].values, w)
    assert [node.op_type for node in ws.graph.graph.node] == ["MatMul"]
    x = rng.normal(size=(3, 4)).astype(np.float32)
    np.testing.assert_array_equal(_run_reinserted(ws, x)[0], _run(model, {"x": x}))


def test_external_data_inside_the_folder_loads(tmp_path, rng):
    model = float_cnn(rng)
    original = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    (tmp_path / "data").mkdir()
    onnx.save(model, str(tmp_path / "ext.onnx"), save_as_external_data=True,
              all_tensors_to_one_file=True, location="data/weights.bin", size_threshold=0)
    assert (tmp_path / "data" / "weights.bin").stat().st_size > 4 * 144
    ws = load_model(tmp_path / "ext.onnx")
    assert len(ws.tensors) == 4
    for tensor in ws.tensors:
        np.testing.assert_array_equal(tensor.values, original[tensor.name])


# ----------------------------------------------------------------------------- QDQ / QCDQ


def _dequantize(tensor) -> np.ndarray:
    quant = tensor.quant
    scale = np.asarray(quant["scale"], np.float64)
    zero = np.asarray(quant["zero_point"], np.float64)
    if quant["axis"] is not None:
        shape = [1] * tensor.values.ndim
        shape[quant["axis"]] = -1
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return (tensor.values.astype(np.float64) - zero) * scale


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("which", ["cnn", "mlp"])
def test_qdq_quantize_static_round_trip(tmp_path, rng, which, per_channel):
    model, shape = (float_cnn(rng), (2, 1, 8, 8)) if which == "cnn" else (float_mlp(rng), (2, 8))
    path = _quantize(model, tmp_path, which, shape, rng, per_channel=per_channel)
    quantized = onnx.load(str(path))
    ws = load_model(path)
    float_weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    stored = {t.name: numpy_helper.to_array(t) for t in quantized.graph.initializer}
    weights = [t for t in ws.tensors if t.role == "weight"]
    assert [t.role for t in ws.tensors] == ["weight", "bias", "weight", "bias"]
    for tensor in ws.tensors:
        assert tensor.values.dtype in (np.int8, np.uint8, np.int32)
        np.testing.assert_array_equal(tensor.values, stored[tensor.name])  # integers kept exactly
        assert tensor.name not in {t.name for t in ws.graph.graph.initializer}
        # The quant record decodes the codes back to the float model's weights (±scale/2).
        original = float_weights[tensor.name.removesuffix("_quantized")]
        half_step = np.max(tensor.quant["scale"]) / 2 * 1.001
        assert np.max(np.abs(_dequantize(tensor) - original)) <= half_step
    for tensor in weights:
        expected_axis = tensor.channel_axis if per_channel else None
        assert tensor.quant["axis"] == expected_axis
        assert len(tensor.quant["scale"]) == (tensor.shape[tensor.channel_axis] if per_channel else 1)
    x = rng.random(shape, dtype=np.float32)
    y_init, y_inputs = _run_reinserted(ws, x)
    np.testing.assert_array_equal(y_init, _run(quantized, {ws.input_name: x}))
    exact_init, exact_inputs = _run_reinserted(ws, x, optimize=False)
    reference = _run(quantized, {ws.input_name: x}, optimize=False)
    np.testing.assert_array_equal(exact_init, reference)
    np.testing.assert_array_equal(exact_inputs, reference)


def _qcdq_model(w: np.ndarray, scale: np.ndarray) -> onnx.ModelProto:
    nodes = [
        helper.make_node("QuantizeLinear", ["conv.weight", "w_scale", "w_zp"], ["w_q"], axis=0, name="w_quant"),
        helper.make_node("Clip", ["w_q", "w_min", "w_max"], ["w_c"], name="w_clip"),
        helper.make_node("DequantizeLinear", ["w_c", "w_scale", "w_zp"], ["w_dq"], axis=0, name="w_dequant"),
        helper.make_node("Conv", ["x", "w_dq"], ["y"], name="conv"),
    ]
    inits = [
        _init("conv.weight", w), _init("w_scale", scale), _init("w_zp", np.zeros(len(scale), np.int8)),
        _init("w_min", np.int8(-100)), _init("w_max", np.int8(100)),
    ]
    return _model(nodes, [_f32("x", ["N", 1, 5, 5])], [_f32("y", ["N", 3, 3, 3])], inits, opset=13)


def test_qcdq_folds_quantize_and_clip_into_integer_codes(tmp_path, rng):
    w = (rng.normal(size=(3, 1, 3, 3)) * 2).astype(np.float32)
    scale = np.array([0.01, 0.02, 0.05], np.float32)
    model = _qcdq_model(w, scale)
    ws = load_model(_save(model, tmp_path / "qcdq.onnx"))
    assert ws.names == ["conv.weight"]
    tensor = ws["conv.weight"]
    # Independent truth: round half to even, saturate to int8, then the Clip bounds.
    codes = np.clip(np.clip(np.rint(w / scale[:, None, None, None]), -128, 127), -100, 100).astype(np.int8)
    assert tensor.values.dtype == np.int8
    np.testing.assert_array_equal(tensor.values, codes)
    assert np.any(np.abs(codes) == 100)  # the Clip mattered
    # Clip bounds [-100, 100] need all 8 bits of int8: the declared width stays 8.
    assert tensor.quant == {"scale": [float(s) for s in scale], "zero_point": [0, 0, 0], "axis": 0,
                            "bits": 8}
    assert (tensor.layer, tensor.role, tensor.channel_axis) == ("conv", "weight", 0)
    ops = [node.op_type for node in ws.graph.graph.node]
    assert ops == ["DequantizeLinear", "Conv"]
    assert {t.name for t in ws.graph.graph.initializer} == {"w_scale", "w_zp"}
    x = rng.normal(size=(2, 1, 5, 5)).astype(np.float32)
    y_init, y_inputs = _run_reinserted(ws, x)
    np.testing.assert_array_equal(y_init, _run(model, {"x": x}))
    np.testing.assert_array_equal(y_inputs, y_init)


def test_fold_constant_quantize_pass_is_pure_and_keeps_outputs(rng):
    model = _qcdq_model(rng.normal(size=(3, 1, 3, 3)).astype(np.float32), np.full(3, 0.02, np.float32))
    before = model.SerializeToString()
    folded = fold_constant_quantize(model)
    assert model.SerializeToString() == before
    onnx.checker.check_model(folded)
    x = rng.normal(size=(1, 1, 5, 5)).astype(np.float32)
    np.testing.assert_array_equal(_run(folded, {"x": x}), _run(model, {"x": x}))
    assert numpy_helper.to_array(folded.graph.initializer[-1]).dtype == np.int8


# ----------------------------------------------------------------------------- binarized


def _bipolar(x, scale):
    return np.where(x >= 0, 1.0, -1.0).astype(np.float32) * scale


def _qonnx_bnn(domain: str, w1, w2) -> onnx.ModelProto:
    """x → BipolarQuant(0.5) → MatMul(BipolarQuant(w1, 2.0)) → BipolarQuant(1) → MatMul(BipolarQuant(w2, 1))."""
    nodes = [
        helper.make_node("BipolarQuant", ["x", "s_half"], ["xb"], domain=domain, name="act0"),
        helper.make_node("BipolarQuant", ["fc1.weight", "s_two"], ["w1b"], domain=domain, name="wq1"),
        helper.make_node("MatMul", ["xb", "w1b"], ["h"], name="fc1"),
        helper.make_node("BipolarQuant", ["h", "s_one"], ["hb"], domain=domain, name="act1"),
        helper.make_node("BipolarQuant", ["fc2.weight", "s_one"], ["w2b"], domain=domain, name="wq2"),
        helper.make_node("MatMul", ["hb", "w2b"], ["y"], name="fc2"),
    ]
    inits = [_init("fc1.weight", w1), _init("fc2.weight", w2), _init("s_half", np.float32(0.5)),
             _init("s_two", np.float32(2.0)), _init("s_one", np.float32(1.0))]
    return _model(nodes, [_f32("x", ["N", 6])], [_f32("y", ["N", 3])], inits, opset=13, domains=[domain])


@pytest.mark.parametrize("domain", [QONNX, FINN])
def test_qonnx_bipolar_quant_weights_bypassed_activations_lowered(tmp_path, rng, domain):
    w1 = rng.normal(size=(6, 5)).astype(np.float32)
    w1[0, 0] = 0.0  # sign(0) = +1 in BipolarQuant
    w2 = rng.normal(size=(5, 3)).astype(np.float32)
    ws = load_model(_save(_qonnx_bnn(domain, w1, w2), tmp_path / "bnn.onnx"))
    got = [(t.name, t.layer, t.binarized) for t in ws.tensors]
    assert got == [("fc1.weight", "fc1", True), ("fc2.weight", "fc2", True)]
    np.testing.assert_array_equal(ws["fc1.weight"].values, w1)  # the latent float weights
    graph = ws.graph.graph
    assert not any(node.op_type == "BipolarQuant" for node in graph.node)
    assert all(opset.domain == "" for opset in ws.graph.opset_import)
    x = rng.normal(size=(4, 6)).astype(np.float32)
    x[0, :2] = 0.0  # activation exactly 0 → +scale
    decoded = {t.name: _bipolar(t.values, 1.0) for t in ws.tensors}
    expected = _bipolar(_bipolar(x, 0.5) @ _bipolar(w1, 2.0), 1.0) @ _bipolar(w2, 1.0)
    y_init, y_inputs = _run_reinserted(ws, x, decoded)
    np.testing.assert_allclose(y_init, expected, rtol=1e-6)
    np.testing.assert_allclose(y_inputs, expected, rtol=1e-6)


def test_lower_bipolar_quant_pass_matches_definition(rng):
    model = _model(
        [helper.make_node("BipolarQuant", ["x", "s"], ["y"], domain=QONNX, name="bq")],
        [_f32("x", [2, 3])], [_f32("y", [2, 3])], [_init("s", np.array([0.5, 2.0, 3.0], np.float32))],
        opset=11, domains=[QONNX],
    )
    lowered = lower_bipolar_quant(model)
    onnx.checker.check_model(lowered)
    x = np.array([[-1.0, 0.0, 2.0], [0.5, -0.0, -3.0]], np.float32)
    np.testing.assert_array_equal(_run(lowered, {"x": x}), _bipolar(x, np.array([0.5, 2.0, 3.0], np.float32)))


def test_sign_on_weight_path_is_bypassed(tmp_path, rng):
    w = rng.normal(size=(2, 1, 3, 3)).astype(np.float32)
    model = _model(
        [helper.make_node("Sign", ["conv.weight"], ["w_sign"], name="binarize"),
         helper.make_node("Conv", ["x", "w_sign", "conv.bias"], ["y"], name="conv")],
        [_f32("x", ["N", 1, 4, 4])], [_f32("y", ["N", 2, 2, 2])],
        [_init("conv.weight", w), _init("conv.bias", np.array([0.5, -0.5], np.float32))],
    )
    ws = load_model(_save(model, tmp_path / "sign.onnx"))
    assert [(t.name, t.binarized) for t in ws.tensors] == [("conv.weight", True), ("conv.bias", False)]
    assert [node.op_type for node in ws.graph.graph.node] == ["Conv"]
    x = rng.normal(size=(2, 1, 4, 4)).astype(np.float32)
    decoded = {"conv.weight": _bipolar(w, 1.0), "conv.bias": ws["conv.bias"].values}
    y_init, y_inputs = _run_reinserted(ws, x, decoded)
    np.testing.assert_array_equal(y_init, _run(model, {"x": x}))
    np.testing.assert_allclose(y_inputs, y_init, rtol=1e-6)


def test_bypass_weight_binarizers_pass_keeps_non_unit_scale(rng):
    model = _qonnx_bnn(QONNX, rng.normal(size=(6, 5)).astype(np.float32), rng.normal(size=(5, 3)).astype(np.float32))
    bypassed = bypass_weight_binarizers(model, ["wq1", "wq2"])
    ops = [(node.name, node.op_type) for node in bypassed.graph.node]
    assert ("wq1", "Mul") in ops  # scale 2.0 kept as a Mul
    assert "wq2" not in {name for name, _ in ops}  # scale 1: removed, fc2 reads the weight
    fc2 = next(node for node in bypassed.graph.node if node.name == "fc2")
    assert list(fc2.input) == ["hb", "fc2.weight"]


def test_binarize_patterns_mark_tensors_and_leave_graph(tmp_path, rng):
    path = _save(float_mlp(rng), tmp_path / "mlp.onnx")
    plain = load_model(path)
    ws = load_model(path, binarize=["fc1*"])
    assert {t.name: t.binarized for t in ws.tensors} == {
        "fc1.weight": True, "fc1.bias": True, "fc2.weight": False, "fc2.bias": False}
    assert ws.graph.SerializeToString() == plain.graph.SerializeToString()
    by_layer = load_model(path, binarize=["fc2"])  # a layer name
    assert [t.name for t in by_layer.tensors if t.binarized] == ["fc2.weight", "fc2.bias"]
    with pytest.raises(FlipLabError, match=r"'conv\*' matches no weight"):
        load_model(path, binarize=["fc1*", "conv*"])


# ----------------------------------------------------------------------------- refusals


def _one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message and message
    return message


@pytest.mark.parametrize("content", [b"", np.random.default_rng(7).bytes(256), b"this is a text file, not a model\n"],
                         ids=["empty", "random", "text"])
def test_refuses_files_that_are_not_onnx(tmp_path, content):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(FlipLabError) as error:
        load_model(path)
    assert "not an ONNX model" in _one_line(error) or "empty" in _one_line(error)


def test_refuses_missing_path_and_directory(tmp_path):
    with pytest.raises(FlipLabError, match="not found"):
        load_model(tmp_path / "nope.onnx")
    with pytest.raises(FlipLabError, match="not a file"):
        load_model(tmp_path)


def test_refuses_qoperator_models(tmp_path, rng):
    path = _quantize(float_cnn(rng), tmp_path, "cnn", (2, 1, 8, 8), rng, per_channel=False, fmt=QuantFormat.QOperator)
    with pytest.raises(FlipLabError, match="QOperator.*QLinearConv") as error:
        load_model(path)
    _one_line(error)
    model = _model(
        [helper.make_node("MatMulInteger", ["x", "w"], ["y"], name="mmi")],
        [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [1, 2])],
        [_init("w", np.ones((2, 2), np.uint8))],
    )
    with pytest.raises(FlipLabError, match="'mmi' is MatMulInteger"):
        load_model(_save(model, tmp_path / "mmi.onnx"))


def test_refuses_weight_read_by_unsupported_op(tmp_path, rng):
    model = _model(
        [helper.make_node("Transpose", ["w"], ["wt"], name="tr"),
         helper.make_node("Einsum", ["x", "wt"], ["y"], name="ein", equation="nk,kj->nj")],
        [_f32("x", ["N", 4])], [_f32("y", ["N", 3])],
        [_init("w", rng.normal(size=(3, 4)).astype(np.float32))],
    )
    with pytest.raises(FlipLabError, match=r"'w' \[3, 4\] looks like a weight .* Einsum node 'ein'") as error:
        load_model(_save(model, tmp_path / "t.onnx"))
    _one_line(error)


def test_weight_through_a_view_chain_is_the_initializer(tmp_path, rng):
    """W [3, 4] -> Transpose -> MatMul B [4, 3]: the layer's output channels are B's last axis,
    which is axis perm[1] = 0 of the stored W; the Transpose stays in the graph."""
    model = _model(
        [helper.make_node("Transpose", ["w"], ["wt"], name="tr", perm=[1, 0]),
         helper.make_node("MatMul", ["x", "wt"], ["y"], name="fc")],
        [_f32("x", ["N", 4])], [_f32("y", ["N", 3])],
        [_init("w", rng.normal(size=(3, 4)).astype(np.float32))],
    )
    ws = load_model(_save(model, tmp_path / "t.onnx"))
    [w] = ws.tensors
    assert (w.name, w.layer, w.role, w.channel_axis) == ("w", "fc", "weight", 0)
    assert [node.op_type for node in ws.graph.graph.node] == ["Transpose", "MatMul"]
    x = rng.normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_array_equal(_run_reinserted(ws, x)[0], _run(model, {"x": x}))


def test_stacked_gates_sliced_and_unsqueezed_into_a_recurrent_layer(tmp_path, rng):
    """torch's default exporter: W [3H, I] -> Slice (two pieces) -> Concat -> Unsqueeze(0) ->
    GRU W [1, 3H, I]. The gate axis 1 of the GRU input is axis 0 of the stored tensor."""
    hidden, features = 2, 3
    w = rng.normal(size=(3 * hidden, features)).astype(np.float32)
    r = rng.normal(size=(1, 3 * hidden, hidden)).astype(np.float32)
    ints = lambda name, v: _init(name, np.array(v, np.int64))  # noqa: E731
    model = _model(
        [helper.make_node("Slice", ["w", "s0", "e0", "ax"], ["w_a"], name="slice_a"),
         helper.make_node("Slice", ["w", "e0", "e1", "ax"], ["w_b"], name="slice_b"),
         helper.make_node("Concat", ["w_b", "w_a"], ["w_cat"], name="cat", axis=0),
         helper.make_node("Unsqueeze", ["w_cat", "zero"], ["w_3d"], name="unsq"),
         helper.make_node("GRU", ["x", "w_3d", "r"], ["y"], name="gru", hidden_size=hidden)],
        [_f32("x", [4, "N", features])], [_f32("y", [4, 1, "N", hidden])],
        [_init("w", w), _init("r", r), ints("s0", [0]), ints("e0", [hidden]),
         ints("e1", [3 * hidden]), ints("ax", [0]), ints("zero", [0])],
    )
    ws = load_model(_save(model, tmp_path / "gru.onnx"))
    assert [(t.name, t.role, t.channel_axis) for t in ws.tensors] == [
        ("w", "weight", 0), ("r", "recurrence", 1)]
    x = rng.normal(size=(4, 5, features)).astype(np.float32)
    np.testing.assert_allclose(_run_reinserted(ws, x)[0], _run(model, {"x": x}), rtol=1e-6)


def test_per_channel_constants_of_other_ops_are_not_weights(tmp_path, rng):
    model = _model(
        [helper.make_node("Mul", ["x", "gain"], ["g"], name="gain"),
         helper.make_node("Greater", ["g", "threshold"], ["y"], name="compare")],
        [_f32("x", ["N", 4, 2, 2])], [helper.make_tensor_value_info("y", TensorProto.BOOL, ["N", 4, 2, 2])],
        [_init("gain", rng.normal(size=(1, 4, 1, 1)).astype(np.float32)),
         _init("threshold", rng.normal(size=(4, 1, 1)).astype(np.float32))],
    )
    ws = load_model(_save(model, tmp_path / "thr.onnx"))
    assert ws.tensors == []
    assert {t.name for t in ws.graph.graph.initializer} == {"gain", "threshold"}


def test_refuses_integer_weight_without_dequantize(tmp_path):
    model = _model(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")],
        [helper.make_tensor_value_info("x", TensorProto.INT32, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [1, 2])],
        [_init("w", np.ones((2, 2), np.int32))],
    )
    with pytest.raises(FlipLabError, match="integer initializer 'w' without DequantizeLinear"):
        load_model(_save(model, tmp_path / "int.onnx"))


def test_refuses_unsupported_qonnx_op(tmp_path):
    model = _model(
        [helper.make_node("Trunc", ["x", "s", "z", "b", "o"], ["y"], domain=QONNX, name="q",
                          rounding_mode="FLOOR")],
        [_f32("x", [2])], [_f32("y", [2])],
        [_init("s", np.float32(1)), _init("z", np.float32(0)), _init("b", np.float32(4)),
         _init("o", np.float32(2))], domains=[QONNX],
    )
    with pytest.raises(FlipLabError, match="QONNX op Trunc"):
        load_model(_save(model, tmp_path / "quant.onnx"))


def _external(model, tmp_path: Path, location: str) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    onnx.save(model, str(folder / "m.onnx"), save_as_external_data=True,
              all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)
    loaded = onnx.load(str(folder / "m.onnx"), load_external_data=False)
    for tensor in loaded.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    onnx.save(loaded, str(folder / "m.onnx"))
    return folder / "m.onnx"


@pytest.mark.parametrize("where", ["parent", "absolute"])
def test_refuses_external_data_outside_the_folder(tmp_path, rng, where):
    outside = tmp_path / "weights.bin"
    outside.write_bytes(b"\0" * 4096)
    location = "../weights.bin" if where == "parent" else str(outside)
    path = _external(float_cnn(rng), tmp_path, location)
    with pytest.raises(FlipLabError, match="leaves the model's folder") as error:
        load_model(path)
    _one_line(error)


def test_refuses_missing_external_data_file(tmp_path, rng):
    path = _external(float_cnn(rng), tmp_path, "weights.bin")
    (path.parent / "weights.bin").unlink()
    with pytest.raises(FlipLabError, match="external data file 'weights.bin' not found"):
        load_model(path)


def test_refuses_two_data_inputs(tmp_path):
    model = _model([helper.make_node("Add", ["a", "b"], ["y"], name="add")],
                   [_f32("a", [2]), _f32("b", [2])], [_f32("y", [2])])
    with pytest.raises(FlipLabError, match=r"exactly one data input, it has 2 \(a, b\)"):
        load_model(_save(model, tmp_path / "two.onnx"))


def test_reinsertion_refuses_unknown_names_and_wrong_shapes(tmp_path, rng):
    ws = load_model(_save(float_mlp(rng), tmp_path / "mlp.onnx"))
    with pytest.raises(FlipLabError, match="no missing weight called 'nope'"):
        with_weights_as_initializers(ws.graph, {"nope": np.zeros(2, np.float32)})
    with pytest.raises(FlipLabError, match=r"'fc2.bias': got float32\[5\], the graph expects float32\[4\]"):
        with_weights_as_initializers(ws.graph, {"fc2.bias": np.zeros(5, np.float32)})
    with pytest.raises(FlipLabError, match="got float64"):
        with_weights_as_initializers(ws.graph, {"fc2.bias": np.zeros(4, np.float64)})


def test_partial_reinsertion_composes(tmp_path, rng):
    model = float_mlp(rng)
    ws = load_model(_save(model, tmp_path / "mlp.onnx"))
    clean = with_weights_as_initializers(ws.graph, {t.name: t.values for t in ws.tensors if t.layer != "fc2"})
    assert set(weight_slots(clean)) == {"fc2.weight", "fc2.bias"}
    mixed = with_weights_as_inputs(clean, [t for t in ws.tensors if t.layer == "fc2"])
    x = rng.normal(size=(2, 8)).astype(np.float32)
    feeds = {"x": x, "fc2.weight": ws["fc2.weight"].values, "fc2.bias": ws["fc2.bias"].values}
    np.testing.assert_allclose(_run(mixed, feeds), _run(model, {"x": x}), rtol=1e-6)


# ----------------------------------------------------------------------------- passes alone


def test_name_and_promote_passes_are_pure(rng):
    w = rng.normal(size=(2, 2)).astype(np.float32)
    model = _model(
        [helper.make_node("Constant", [], ["w"], value=numpy_helper.from_array(w)),
         helper.make_node("MatMul", ["x", "w"], ["y"])],
        [_f32("x", [1, 2])], [_f32("y", [1, 2])],
    )
    before = model.SerializeToString()
    named = name_unnamed_nodes(model)
    promoted = promote_weight_constants(named)
    assert model.SerializeToString() == before
    assert [node.name for node in named.graph.node] == ["Constant_0", "MatMul_1"]
    assert [t.name for t in promoted.graph.initializer] == ["w"]
    x = rng.normal(size=(1, 2)).astype(np.float32)
    np.testing.assert_array_equal(_run(promoted, {"x": x}), _run(model, {"x": x}))
    removed = remove_weights(promoted, ["w"])
    assert not removed.graph.initializer and set(weight_slots(removed)) == {"w"}


# ----------------------------------------------------------------------------- the MNIST CNN


def _check_mnist_cnn(path: Path, rng) -> None:
    model = onnx.load(str(path))
    ws = load_model(path)
    expected_names = [f"conv{i}.{p}" for i in range(1, 5) for p in ("weight", "bias")]
    expected_names += ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert ws.names == expected_names
    assert sum(t.values.size for t in ws.tensors) == 329_962
    assert all(t.values.dtype == np.float32 for t in ws.tensors)
    assert [t.name for t in ws.graph.graph.initializer] == ["val_7"]
    assert (ws.input_name, ws.input_shape, ws.output_name) == ("input", ["batch", 1, 28, 28], "logits")
    x = rng.random((4, 1, 28, 28), dtype=np.float32)
    expected = _run(model, {"input": x})
    y_init, y_inputs = _run_reinserted(ws, x)
    np.testing.assert_array_equal(y_init, expected)
    np.testing.assert_allclose(y_inputs, expected, rtol=1e-4, atol=1e-5)


def test_mnist_like_cnn_weights_and_round_trip(tmp_path, rng):
    _check_mnist_cnn(_save(mnist_like_cnn(rng), tmp_path / "mnist_like.onnx"), rng)


def test_shared_reference_mnist_cnn_when_present(tmp_path, rng):
    """Extra check on the project's reference model; without it, on a built replica."""
    path = SHARED_MNIST if SHARED_MNIST.is_file() else _save(mnist_like_cnn(rng), tmp_path / "replica.onnx")
    _check_mnist_cnn(path, rng)


# ----------------------------------------------------------------------------- more paths and rules


def test_identity_on_weight_path_is_followed(tmp_path, rng):
    model = _model(
        [helper.make_node("Identity", ["shared.weight"], ["w_alias"], name="alias"),
         helper.make_node("MatMul", ["x", "w_alias"], ["y"], name="fc")],
        [_f32("x", ["N", 4])], [_f32("y", ["N", 3])],
        [_init("shared.weight", rng.normal(size=(4, 3)).astype(np.float32))],
    )
    ws = load_model(_save(model, tmp_path / "id.onnx"))
    assert [(t.name, t.layer, t.channel_axis) for t in ws.tensors] == [("shared.weight", "fc", 1)]
    x = rng.normal(size=(2, 4)).astype(np.float32)
    np.testing.assert_array_equal(_run_reinserted(ws, x)[0], _run(model, {"x": x}))


def test_recurrent_state_constant_is_not_a_weight_nor_refused(tmp_path, rng):
    hidden = 3
    model = _model(
        [helper.make_node("RNN", ["x", "W", "R", "", "", "h0"], ["", "y"], hidden_size=hidden, name="rnn")],
        [_f32("x", [4, 2, 5])], [_f32("y", [1, 2, hidden])],
        [_init("W", rng.normal(size=(1, hidden, 5)).astype(np.float32)),
         _init("R", rng.normal(size=(1, hidden, hidden)).astype(np.float32)),
         _init("h0", rng.normal(size=(1, 2, hidden)).astype(np.float32))],
    )
    ws = load_model(_save(model, tmp_path / "rnn.onnx"))
    assert [(t.name, t.role) for t in ws.tensors] == [("W", "weight"), ("R", "recurrence")]
    assert [t.name for t in ws.graph.graph.initializer] == ["h0"]
    x = rng.normal(size=(4, 2, 5)).astype(np.float32)
    np.testing.assert_array_equal(_run_reinserted(ws, x)[0], _run(model, {"x": x}))


def test_refuses_weight_like_constant_node_read_by_unsupported_op(tmp_path, rng):
    w = numpy_helper.from_array(rng.normal(size=(3, 4)).astype(np.float32))
    model = _model(
        [helper.make_node("Constant", [], ["w"], value=w, name="w_const"),
         helper.make_node("Transpose", ["w"], ["wt"], name="tr"),
         helper.make_node("Einsum", ["x", "wt"], ["y"], name="ein", equation="nk,kj->nj")],
        [_f32("x", ["N", 4])], [_f32("y", ["N", 3])],
    )
    with pytest.raises(FlipLabError, match="'w' .* Einsum node 'ein'"):
        load_model(_save(model, tmp_path / "t.onnx"))


def test_refuses_binarizing_quantized_tensors(tmp_path, rng):
    path = _quantize(float_mlp(rng), tmp_path, "mlp", (2, 8), rng, per_channel=False)
    with pytest.raises(FlipLabError, match="matches quantized tensor .fc1.weight_quantized."):
        load_model(path, binarize=["fc1.weight*"])
    model = _model(
        [helper.make_node("DequantizeLinear", ["w_q", "s"], ["w"], name="dq"),
         helper.make_node("Sign", ["w"], ["w_sign"], name="sign"),
         helper.make_node("MatMul", ["x", "w_sign"], ["y"], name="fc")],
        [_f32("x", ["N", 2])], [_f32("y", ["N", 2])],
        [_init("w_q", np.array([[1, -2], [3, 4]], np.int8)), _init("s", np.float32(0.1))],
    )
    with pytest.raises(FlipLabError, match="'w_q' is both quantized .* and binarized"):
        load_model(_save(model, tmp_path / "qs.onnx"))


def test_refuses_sparse_initializers(tmp_path):
    values = numpy_helper.from_array(np.array([1.0, 2.0], np.float32), "w")
    indices = numpy_helper.from_array(np.array([0, 3], np.int64), "w_indices")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")], "sparse",
        [_f32("x", [1, 2])], [_f32("y", [1, 2])],
        sparse_initializer=[helper.make_sparse_tensor(values, indices, [2, 2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(FlipLabError, match="sparse initializer 'w' is not supported"):
        load_model(_save(model, tmp_path / "sparse.onnx"))


@settings(max_examples=12, deadline=None)
@given(
    trans_b=st.booleans(),
    batch=st.integers(1, 3),
    k=st.integers(1, 6),
    n=st.integers(2, 6),
    use_matmul=st.booleans(),
)
def test_channel_axis_indexes_the_output_features(tmp_path_factory, trans_b, batch, k, n, use_matmul):
    """Property: along channel_axis the weight has as many slices as the layer has outputs,
    and zeroing one slice changes only that output feature (checked with onnxruntime)."""
    rng = np.random.default_rng(k * 100 + n)
    shape = (n, k) if (trans_b and not use_matmul) else (k, n)
    node = (helper.make_node("MatMul", ["x", "w"], ["y"], name="layer") if use_matmul
            else helper.make_node("Gemm", ["x", "w"], ["y"], transB=int(trans_b), name="layer"))
    model = _model([node], [_f32("x", ["N", k])], [_f32("y", ["N", n])],
                   [_init("w", rng.normal(size=shape).astype(np.float32))])
    ws = load_model(_save(model, tmp_path_factory.mktemp("prop") / "m.onnx"))
    tensor = ws["w"]
    assert tensor.shape[tensor.channel_axis] == n
    x = rng.normal(size=(batch, k)).astype(np.float32) + 2.0
    baseline = _run(model, {"x": x})
    cut = tensor.values.copy()
    np.moveaxis(cut, tensor.channel_axis, 0)[n - 1] = 0.0
    changed = _run(with_weights_as_initializers(ws.graph, {"w": cut}), {"x": x})
    np.testing.assert_array_equal(changed[:, : n - 1], baseline[:, : n - 1])
    np.testing.assert_array_equal(changed[:, n - 1], 0.0)


def test_weights_listed_as_graph_inputs_old_style(tmp_path, rng):
    """Before IR 4 initializers were also graph inputs: they are not data inputs."""
    w = rng.normal(size=(4, 2)).astype(np.float32)
    model = _model(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")],
        [_f32("x", ["N", 4]), _f32("w", [4, 2])], [_f32("y", ["N", 2])], [_init("w", w)],
    )
    ws = load_model(_save(model, tmp_path / "old.onnx"))
    assert ws.input_name == "x" and ws.names == ["w"]
    assert [value.name for value in ws.graph.graph.input] == ["x"]
    x = rng.normal(size=(3, 4)).astype(np.float32)
    y_init, y_inputs = _run_reinserted(ws, x)
    np.testing.assert_array_equal(y_init, _run(model, {"x": x}))
    np.testing.assert_allclose(y_inputs, y_init, rtol=1e-6)


def test_qcdq_clip_bounds_declare_a_narrower_width(tmp_path, rng):
    """brevitas's 4-bit weights: int8 codes clipped to [-7, 7] (narrow range) -> 4 bits;
    [-8, 7] -> 4; [-9, 7] -> 5; [0, 15] on uint8 -> 4."""
    w = (rng.normal(size=(3, 1, 3, 3)) * 2).astype(np.float32)
    scale = np.array([0.01, 0.02, 0.05], np.float32)
    for bounds, dtype, bits in [((-7, 7), np.int8, 4), ((-8, 7), np.int8, 4), ((-9, 7), np.int8, 5),
                                ((0, 15), np.uint8, 4)]:
        model = _qcdq_model(w, scale)
        for tensor in model.graph.initializer:
            if tensor.name in ("w_min", "w_max", "w_zp"):
                value = {"w_min": bounds[0], "w_max": bounds[1], "w_zp": np.zeros(3)}[tensor.name]
                tensor.CopyFrom(_init(tensor.name, np.asarray(value).astype(dtype)))
        ws = load_model(_save(model, tmp_path / "qcdq.onnx"))
        assert ws["conv.weight"].quant["bits"] == bits, bounds


def _quant_model(w, scale, zero_point, bits, *, signed=1, narrow=0, x_shape=("N", 4)):
    nodes = [helper.make_node("Quant", ["w", "s", "z", "b"], ["wq"], name="quant",
                              domain="qonnx.custom_op.general", signed=signed, narrow=narrow,
                              rounding_mode="ROUND"),
             helper.make_node("MatMul", ["x", "wq"], ["y"], name="fc")]
    inits = [_init("w", w), _init("s", np.asarray(scale, np.float32)),
             _init("z", np.asarray(zero_point, np.float32)), _init("b", np.float32(bits))]
    return _model(nodes, [_f32("x", list(x_shape))], [_f32("y", ["N", w.shape[1]])], inits,
                  opset=13, domains=["qonnx.custom_op.general"])


def test_qonnx_quant_on_a_weight_becomes_codes_of_its_bit_width(tmp_path):
    """Hand-worked QONNX Quant, 3 bits signed narrow ([-3, 3]), scale 0.5 per column:
    w / scale = [[0.2, 2.5], [-1.4, -9]] / [0.5, 1] ... rounded half to even, clipped."""
    w = np.array([[0.1, 2.5], [-0.7, -9.0], [1.75, 0.5], [0.0, 3.4]], np.float32)
    scale = np.array([[0.5, 1.0]], np.float32)  # per output column (axis 1 of w)
    model = _quant_model(w, scale, 0.0, 3, narrow=1)
    ws = load_model(_save(model, tmp_path / "quant.onnx"))
    [tensor] = ws.tensors
    expected = np.array([[0, 2], [-1, -3], [3, 0], [0, 3]], np.int8)  # 0.2->0, 2.5->2, -1.4->-1,
    np.testing.assert_array_equal(tensor.values, expected)           # -9->-3, 3.5->3 (clip), 0.5->0
    assert tensor.quant == {"scale": [0.5, 1.0], "zero_point": [0, 0], "axis": 1, "bits": 3}
    assert [n.op_type for n in ws.graph.graph.node] == ["DequantizeLinear", "MatMul"]
    assert not [o for o in ws.graph.opset_import if o.domain == "qonnx.custom_op.general"]
    x = np.eye(4, dtype=np.float32)
    out = _run(with_weights_as_initializers(ws.graph, {"w": tensor.values}), {"x": x})
    np.testing.assert_array_equal(out, expected * np.array([0.5, 1.0], np.float32))


def test_refuses_qonnx_quant_on_an_activation(tmp_path):
    nodes = [helper.make_node("Quant", ["x", "s", "z", "b"], ["xq"], name="act_quant",
                              domain="qonnx.custom_op.general", signed=1, narrow=0,
                              rounding_mode="ROUND"),
             helper.make_node("Relu", ["xq"], ["y"], name="relu")]
    inits = [_init("s", np.float32(0.1)), _init("z", np.float32(0)), _init("b", np.float32(4))]
    model = _model(nodes, [_f32("x", ["N", 4])], [_f32("y", ["N", 4])], inits, opset=13,
                   domains=["qonnx.custom_op.general"])
    with pytest.raises(FlipLabError, match="'act_quant' quantizes an activation.*export_onnx_qcdq") as error:
        load_model(_save(model, tmp_path / "act.onnx"))
    _one_line(error)


def test_initializers_listed_as_graph_inputs_are_constants(tmp_path, rng):
    """ONNX lets an initializer appear in graph.input (brevitas's QCDQ export lists its Clip
    bounds and biases so): they are not data inputs."""
    model = _qcdq_model((rng.normal(size=(3, 1, 3, 3))).astype(np.float32),
                        np.array([0.01, 0.02, 0.05], np.float32))
    model.graph.input.extend([helper.make_tensor_value_info("w_min", TensorProto.INT8, []),
                              helper.make_tensor_value_info("w_max", TensorProto.INT8, [])])
    ws = load_model(_save(model, tmp_path / "qcdq_inputs.onnx"))
    assert ws.input_name == "x" and [v.name for v in ws.graph.graph.input] == ["x"]
