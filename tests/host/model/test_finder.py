"""Tests of host.model.finder: which tensors are weights, their layers, roles and channel axes, and
the weight-like tensors it refuses.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from host.errors import FlipLabError
from host.model import load_model, weight_slots, with_weights_as_initializers

from .helpers import _f32, _init, _model, _one_line, _run, _run_reinserted, _save, float_cnn, float_mlp

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


# ----------------------------------------------------------------------------- refusals

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
    # what to do: Einsum reads data, so the export must use a supported layer
    assert "export the model so that Einsum is one of those layers" in str(error.value)
    assert "Conv, ConvTranspose, Gemm, MatMul, LSTM, GRU, RNN, Gather" in str(error.value)


def test_weight_computed_on_constants_only_is_refused_with_the_fold_to_make(tmp_path, rng):
    # Mul(w, scale) on two initializers, then read by a layer: constant folding removes it
    model = _model(
        [helper.make_node("Mul", ["w", "k"], ["ws"], name="scale_w"),
         helper.make_node("Einsum", ["x", "ws"], ["y"], name="ein", equation="nk,kj->nj")],
        [_f32("x", ["N", 3])], [_f32("y", ["N", 4])],
        [_init("w", rng.normal(size=(3, 4)).astype(np.float32)),
         _init("k", np.array(2.0, np.float32))],
    )
    with pytest.raises(FlipLabError, match=r"'w' \[3, 4\] looks like a weight but is read by "
                                           r"Mul node 'scale_w'.*Mul computes on constants "
                                           r"only: fold it into the initializer") as error:
        load_model(_save(model, tmp_path / "t.onnx"))
    _one_line(error)


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
    with pytest.raises(FlipLabError, match="integer initializer 'w' without DequantizeLinear; "
                                           ".* export with QuantizeLinear/DequantizeLinear"
                                           ) as error:
        load_model(_save(model, tmp_path / "int.onnx"))
    _one_line(error)


def test_refuses_a_computed_scale_saying_to_store_it(tmp_path):
    # DequantizeLinear's scale computed by a Mul of the input: not a constant
    model = _model(
        [helper.make_node("ReduceMax", ["x"], ["s"], name="amax", keepdims=0),
         helper.make_node("DequantizeLinear", ["w", "s"], ["wf"], name="dq"),
         helper.make_node("MatMul", ["x", "wf"], ["y"], name="fc")],
        [_f32("x", [1, 2])], [_f32("y", [1, 2])],
        [_init("w", np.ones((2, 2), np.int8))],
    )
    with pytest.raises(FlipLabError, match=r"DequantizeLinear node 'dq': scale 's' is not a "
                                           r"constant; store the scale as an initializer"
                                           ) as error:
        load_model(_save(model, tmp_path / "scale.onnx"))
    _one_line(error)


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
