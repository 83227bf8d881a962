"""Tests of host.model.loader (load_model): whole models round trip through onnxruntime, the
--binarize option, the data input, and the models it refuses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

from host.errors import FlipLabError
from host.model import load_model
from host.model.graph import scores_output

from .helpers import QONNX, _f32, _init, _model, _one_line, _run, _run_reinserted, _save, float_cnn, float_mlp

SHARED_MNIST = Path("/work/shared/models/qin_mnist_cnn.onnx")


# ----------------------------------------------------------------------------- helpers

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


def test_float_cnn_round_trip_through_onnxruntime(tmp_path, rng):
    model = float_cnn(rng)
    ws = load_model(_save(model, tmp_path / "cnn.onnx"))
    x = rng.random((5, 1, 8, 8), dtype=np.float32)
    expected = _run(model, {"x": x})
    y_init, y_inputs = _run_reinserted(ws, x)
    np.testing.assert_array_equal(y_init, expected)
    np.testing.assert_allclose(y_inputs, expected, rtol=1e-5, atol=1e-5)
    assert ws.graph.opset_import == model.opset_import


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


def test_refuses_two_data_inputs(tmp_path):
    model = _model([helper.make_node("Add", ["a", "b"], ["y"], name="add")],
                   [_f32("a", [2]), _f32("b", [2])], [_f32("y", [2])])
    with pytest.raises(FlipLabError, match=r"exactly one data input, it has 2 \(a, b\); "
                                           r"export a model whose other inputs are "
                                           r"initializers") as error:
        load_model(_save(model, tmp_path / "two.onnx"))
    assert "\n" not in str(error.value)


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


def test_a_graph_doc_string_that_is_not_utf8_loads_as_before(tmp_path):
    """Stripping the weights copies the graph field by field, which reads its strings; one
    that is not UTF-8 (protobuf parses it, Python cannot read it) takes the whole-copy path."""
    model = float_mlp(np.random.default_rng(0))
    model.graph.doc_string = "QQQQQQQQQQQQ"
    raw = model.SerializeToString()
    assert raw.count(b"QQQQQQQQQQQQ") == 1
    path = tmp_path / "latin1.onnx"
    path.write_bytes(raw.replace(b"QQQQQQQQQQQQ", b"\xa7" * 12))
    ws = load_model(path)
    clean = load_model(_save(model, tmp_path / "utf8.onnx"))
    assert ws.names == clean.names
    for a, b in zip(ws.tensors, clean.tensors):
        assert np.array_equal(a.values, b.values)
    assert {t.name for t in ws.graph.graph.initializer}.isdisjoint(ws.names)


# ----------------------------------------------------------------------------- the scores output

def _outputs(*values: onnx.ValueInfoProto) -> onnx.GraphProto:
    return helper.make_graph([], "g", [], list(values))


def _int64(name: str, shape) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.INT64, shape)


@pytest.mark.parametrize("values, chosen", [
    ((_f32("logits", ["N", 10]), _f32("features", ["N", 32])), "logits"),
    ((_int64("label", ["N"]), _f32("probabilities", ["N", 10])), "probabilities"),
    ((_int64("label", ["N", 1]), _f32("probabilities", ["N", 10])), "probabilities"),
    ((_int64("label", ["N"]), helper.make_tensor_value_info("q", TensorProto.UINT8, ["N", 10])), "q"),
    ((helper.make_empty_tensor_value_info("untyped"), _f32("p", ["N", 10])), "untyped"),
    ((helper.make_tensor_value_info("half", TensorProto.FLOAT16, ["N", 10]),), "half"),
])
def test_the_scores_are_the_first_float_output_else_the_first_integer_scores(values, chosen):
    assert scores_output(_outputs(*values)) == chosen


def test_a_model_whose_outputs_hold_no_scores_is_refused_naming_them():
    zipmap = helper.make_value_info("output_probability", helper.make_sequence_type_proto(
        helper.make_map_type_proto(TensorProto.INT64, helper.make_tensor_type_proto(
            TensorProto.FLOAT, []))))
    with pytest.raises(FlipLabError, match=r"no output of the model holds class scores .* "
                                           r"\(outputs: 'output_label' \(labels\), "
                                           r"'output_probability' \(sequence\)\); .*zipmap"):
        scores_output(_outputs(_int64("output_label", ["N"]), zipmap))
    label_only = _outputs(helper.make_tensor_value_info("names", TensorProto.STRING, ["N", 10]),
                          _int64("argmax", ["N"]))
    with pytest.raises(FlipLabError, match=r"\(outputs: 'names' \(string\), 'argmax' "
                                           r"\(labels\)\)"):
        scores_output(label_only)


def test_outputs_that_are_no_classifiers_leave_the_first_output():
    # a bool or string output is never scores, but a model without a classifier's outputs
    # (labels, a ZipMap) keeps loading as before: its first output
    flags = helper.make_tensor_value_info("flags", TensorProto.BOOL, ["N", 4])
    names = helper.make_tensor_value_info("names", TensorProto.STRING, ["N"])
    assert scores_output(_outputs(flags, names)) == "flags"
