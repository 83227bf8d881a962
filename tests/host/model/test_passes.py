"""Tests of host.model.passes: naming, QDQ folding, binarizer bypass and BipolarQuant lowering,
through load_model and alone.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from host.model import load_model, weight_slots, with_weights_as_initializers
from host.model.passes import (
    bypass_weight_binarizers,
    fold_constant_quantize,
    lower_bipolar_quant,
    name_unnamed_nodes,
    promote_weight_constants,
    remove_weights,
)

from .helpers import QONNX, _f32, _init, _model, _quant_model, _run, _run_reinserted, _save, float_cnn

FINN = "finn.custom_op.general"


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


# ----------------------------------------------------------------------------- QDQ / QCDQ

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


def test_initializers_listed_as_graph_inputs_are_constants(tmp_path, rng):
    """ONNX lets an initializer appear in graph.input (brevitas's QCDQ export lists its Clip
    bounds and biases so): they are not data inputs."""
    model = _qcdq_model((rng.normal(size=(3, 1, 3, 3))).astype(np.float32),
                        np.array([0.01, 0.02, 0.05], np.float32))
    model.graph.input.extend([helper.make_tensor_value_info("w_min", TensorProto.INT8, []),
                              helper.make_tensor_value_info("w_max", TensorProto.INT8, [])])
    ws = load_model(_save(model, tmp_path / "qcdq_inputs.onnx"))
    assert ws.input_name == "x" and [v.name for v in ws.graph.graph.input] == ["x"]
