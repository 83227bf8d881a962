"""The shipped reference models (models/*.onnx) against their cards (models/cards.json).

cards.json is written by models/train.py with the accuracy it measured; here each model is
re-run with onnxruntime on the embedded digits test split and must match it within 0.5 %.
The QDQ and BNN graphs are also checked for the form their cards promise, and the BNN is
re-computed independently with XNOR + popcount in numpy.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from onnx import TensorProto, numpy_helper

from host.data import load_dataset

MODELS = Path(__file__).resolve().parents[2] / "models"
CARDS = json.loads((MODELS / "cards.json").read_text(encoding="utf-8"))
EXPECTED_INPUT = {
    "digits_mlp": ["batch", 64],
    "digits_mlp_int8": ["batch", 64],
    "digits_bnn": ["batch", 64],
    "digits_cnn": ["batch", 1, 8, 8],
}


def session(name: str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(MODELS / CARDS[name]["file"]), options,
                                providers=["CPUExecutionProvider"])


def initializers(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def producers(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {out: node for node in model.graph.node for out in node.output}


def consumers(model: onnx.ModelProto, tensor: str) -> list[onnx.NodeProto]:
    return [node for node in model.graph.node if tensor in node.input]


def attribute(node: onnx.NodeProto, name: str, default=None):
    for attr in node.attribute:
        if attr.name == name:
            return onnx.helper.get_attribute_value(attr)
    return default


def test_cards_cover_exactly_the_reference_models():
    assert sorted(CARDS) == sorted(EXPECTED_INPUT)


@pytest.mark.parametrize("name", sorted(EXPECTED_INPUT))
def test_model_loads_with_documented_io_and_size(name):
    card = CARDS[name]
    path = MODELS / card["file"]
    assert path.stat().st_size < 1_000_000
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    sess = session(name)
    (inp,) = sess.get_inputs()
    (out,) = sess.get_outputs()
    assert inp.name == "input" == card["input"]["name"]
    assert inp.type == "tensor(float)"
    assert inp.shape == EXPECTED_INPUT[name] == card["input"]["shape"]
    assert out.name == "logits" == card["output"]["name"]
    assert out.shape == ["batch", 10] == card["output"]["shape"]


@pytest.mark.parametrize("name", sorted(EXPECTED_INPUT))
def test_accuracy_on_embedded_test_split_matches_card(name):
    card = CARDS[name]
    x, y = load_dataset(card["dataset"], input_shape=EXPECTED_INPUT[name], normalize=card["normalize"])
    assert len(y) == card["test_samples"] == 450
    (logits,) = session(name).run(["logits"], {"input": x})
    assert logits.shape == (450, 10)
    accuracy = float(np.mean(np.argmax(logits, axis=1) == y))
    assert abs(accuracy - card["accuracy"]) <= 0.005
    assert accuracy > 0.85  # a working classifier, not chance (10 %)


@pytest.mark.parametrize("name", sorted(EXPECTED_INPUT))
def test_readme_card_states_the_measured_accuracy_and_command(name):
    readme = (MODELS / "README.md").read_text(encoding="utf-8")
    sections = dict(re.findall(r"^## (\S+)\n(.*?)(?=^## |\Z)", readme, flags=re.S | re.M))
    card = CARDS[name]
    text = sections[name]
    assert f"{100 * card['accuracy']:.2f} % ({card['correct']}/{card['test_samples']})" in text
    assert f"`{card['train_command']}`" in text
    assert "models/train.py" in card["train_command"]


@pytest.mark.parametrize("name", ["digits_mlp", "digits_cnn"])
def test_float_model_parameter_count_matches_graph(name):
    model = onnx.load(str(MODELS / CARDS[name]["file"]))
    assert sum(a.size for a in initializers(model).values()) == CARDS[name]["parameters"]["total"]
    assert all(t.data_type == TensorProto.FLOAT for t in model.graph.initializer)


def test_cnn_layers_are_as_documented():
    model = onnx.load(str(MODELS / "digits_cnn.onnx"))
    assert [n.op_type for n in model.graph.node] == [
        "Conv", "Relu", "Conv", "Relu", "MaxPool", "Flatten", "Gemm"]
    weights = initializers(model)
    assert weights["conv1.weight"].shape == (8, 1, 3, 3)
    assert weights["conv2.weight"].shape == (16, 8, 3, 3)
    assert weights["fc.weight"].shape == (10, 144)
    conv1 = model.graph.node[0]
    assert list(attribute(conv1, "pads")) == [1, 1, 1, 1]


# ------------------------------------------------------------------ int8 QDQ

def test_int8_model_is_a_per_channel_qdq_graph_of_the_float_mlp():
    model = onnx.load(str(MODELS / "digits_mlp_int8.onnx"))
    float_weights = initializers(onnx.load(str(MODELS / "digits_mlp.onnx")))
    inits = {t.name: t for t in model.graph.initializer}
    values = initializers(model)
    made_by = producers(model)
    gemms = [n for n in model.graph.node if n.op_type == "Gemm"]
    assert [g.name for g in gemms] == ["fc1", "fc2", "fc3"]
    for gemm in gemms:
        # weight: DequantizeLinear of an int8 initializer, per output channel (axis 0), symmetric
        dq_w = made_by[gemm.input[1]]
        assert dq_w.op_type == "DequantizeLinear"
        q_name, scale_name, zp_name = dq_w.input
        assert inits[q_name].data_type == TensorProto.INT8
        q, scale, zp = values[q_name], values[scale_name], values[zp_name]
        assert attribute(dq_w, "axis", 1) == 0 and scale.shape == (q.shape[0],)
        assert np.all(zp == 0)
        # the dequantized weight is the float MLP's weight rounded to its channel's grid
        w_float = float_weights[f"{gemm.name}.weight"]
        error = np.abs(q.astype(np.float32) * scale[:, None] - w_float)
        assert np.all(error <= scale[:, None] / 2 + 1e-7)
        assert np.all(np.abs(q) <= 127) and np.max(np.abs(q)) == 127
        # bias: DequantizeLinear of an int32 initializer
        dq_b = made_by[gemm.input[2]]
        assert dq_b.op_type == "DequantizeLinear"
        assert inits[dq_b.input[0]].data_type == TensorProto.INT32
        # activation into the Gemm: QuantizeLinear -> DequantizeLinear with int8 zero point
        dq_x = made_by[gemm.input[0]]
        assert dq_x.op_type == "DequantizeLinear" and made_by[dq_x.input[0]].op_type == "QuantizeLinear"
        assert inits[dq_x.input[2]].data_type == TensorProto.INT8
    # no float weight matrix left
    assert not [t.name for t in model.graph.initializer
                if t.data_type == TensorProto.FLOAT and len(t.dims) == 2]
    assert CARDS["digits_mlp_int8"]["parameters"]["int8 weights"] == sum(
        values[made_by[g.input[1]].input[0]].size for g in gemms)


# ------------------------------------------------------------------ BNN

def bnn_layers(model: onnx.ModelProto) -> list[dict]:
    """Per MatMul: its latent weight, and what follows it (threshold, or scale + offset)."""
    values = initializers(model)
    made_by = producers(model)
    layers = []
    for node in model.graph.node:
        if node.op_type != "MatMul":
            continue
        sign = made_by[node.input[1]]
        assert sign.op_type == "Sign", f"{node.name}: weight path without Sign"
        assert sign.input[0] in values, f"{node.name}: Sign input is not an initializer"
        (after,) = consumers(model, node.output[0])
        layer = {"name": node.name, "input": node.input[0], "weight": values[sign.input[0]]}
        if after.op_type == "GreaterOrEqual":
            assert after.input[0] == node.output[0]
            layer["threshold"] = values[after.input[1]]
            (where,) = consumers(model, after.output[0])
            assert where.op_type == "Where"
            assert values[where.input[1]] == 1.0 and values[where.input[2]] == -1.0
        else:
            assert after.op_type == "Mul"
            (add,) = consumers(model, after.output[0])
            assert add.op_type == "Add" and add.output[0] == "logits"
            layer["scale"] = values[after.input[1]]
            layer["offset"] = values[add.input[1]]
        layers.append(layer)
    return layers


def test_bnn_every_weight_path_has_sign_and_thresholds_are_integers():
    model = onnx.load(str(MODELS / "digits_bnn.onnx"))
    ops = {n.op_type for n in model.graph.node}
    assert not ops & {"Less", "LessOrEqual", "Greater", "Gemm", "Conv"}
    layers = bnn_layers(model)
    assert [layer["weight"].shape for layer in layers] == [(64, 128), (128, 64), (64, 10)]
    for layer in layers:
        assert np.all(layer["weight"] != 0), f"{layer['name']}: Sign would see 0"
        assert np.all(np.abs(layer["weight"]) <= 1)
    hidden = layers[:-1]
    assert all("threshold" in layer for layer in hidden) and "scale" in layers[-1]
    for layer in hidden:
        tau = layer["threshold"]
        fan_in = layer["weight"].shape[0]
        assert tau.shape == (layer["weight"].shape[1],)
        assert np.all(tau == np.round(tau)), f"{layer['name']}: non-integer threshold"
        assert np.all(np.abs(tau) <= fan_in + 1)
    # inputs binarized in-graph: GreaterOrEqual(input, 0.5) -> Where(+1, -1)
    (ge,) = consumers(model, "input")
    assert ge.op_type == "GreaterOrEqual" and initializers(model)[ge.input[1]] == 0.5
    card = CARDS["digits_bnn"]["parameters"]
    assert card["binary weights"] == sum(layer["weight"].size for layer in layers)
    assert card["integer thresholds"] == sum(layer["threshold"].size for layer in hidden)


def test_bnn_equals_an_xnor_popcount_reference():
    """Recompute the BNN on bits only: z = fan_in - 2 * popcount(x XOR w), y = z >= tau."""
    model = onnx.load(str(MODELS / "digits_bnn.onnx"))
    layers = bnn_layers(model)
    x, y = load_dataset("digits", input_shape=["batch", 64])
    bits = x >= 0.5                                      # +1 -> True, -1 -> False
    for layer in layers[:-1]:
        w_bits = layer["weight"] > 0
        mismatches = (bits[:, :, None] ^ w_bits[None, :, :]).sum(axis=1)   # popcount(XOR)
        z = w_bits.shape[0] - 2 * mismatches
        bits = z >= layer["threshold"].astype(np.int64)
    last = layers[-1]
    w_bits = last["weight"] > 0
    z = w_bits.shape[0] - 2 * (bits[:, :, None] ^ w_bits[None, :, :]).sum(axis=1)
    reference = z * last["scale"].astype(np.float64) + last["offset"].astype(np.float64)
    (logits,) = session("digits_bnn").run(["logits"], {"input": x})
    np.testing.assert_allclose(logits, reference, rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(np.argmax(logits, axis=1), np.argmax(reference, axis=1))
    accuracy = float(np.mean(np.argmax(reference, axis=1) == y))
    assert abs(accuracy - CARDS["digits_bnn"]["accuracy"]) <= 0.005


# ------------------------------------------------------------------ BatchNorm folding (models/onnx_export.py)

def load_exporter():
    """models/onnx_export.py (numpy + onnx only, no torch), imported from its file."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("fliplab_models_onnx_export", MODELS / "onnx_export.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@given(
    st.integers(1, 9),
    hnp.arrays(np.float32, 6, elements=st.sampled_from([-1.5, -0.3, 0.0, 0.2, 1.0, 2.5])),
    hnp.arrays(np.float32, 6, elements=st.floats(-3, 3, width=32)),
    hnp.arrays(np.float32, 6, elements=st.floats(-5, 5, width=32)),
    hnp.arrays(np.float32, 6, elements=st.floats(0.015625, 9, width=32)),
)
@settings(max_examples=60, deadline=None)
def test_folded_threshold_matches_batchnorm_sign_for_every_integer_sum(fan_in, gamma, beta, mean, var):
    """For every reachable z: (z' >= tau) == (gamma (z - mean) / sigma + beta >= 0)."""
    exporter = load_exporter()
    rng = np.random.default_rng(fan_in)
    latent = rng.uniform(-1, 1, size=(fan_in, 6)).astype(np.float32)
    latent[0, 0] = 0.0  # a latent zero: stored away from 0, counted as +1
    eps = 1e-5
    folded = exporter.fold_sign_batchnorm(latent, gamma, beta, mean, var, eps, 1e-3)
    assert np.all(folded.weight != 0) and np.all(folded.threshold == np.round(folded.threshold))
    trained_sign = np.where(latent >= 0, 1.0, -1.0)
    flipped = np.sign(folded.weight) != trained_sign        # columns negated for gamma < 0
    assert np.array_equal(flipped.all(axis=0), gamma < 0) and np.array_equal(flipped.any(axis=0), gamma < 0)
    sigma = np.sqrt(var.astype(np.float64) + eps)
    for z in range(-fan_in, fan_in + 1):
        bn = gamma.astype(np.float64) * (z - mean) / sigma + beta
        z_graph = np.where(gamma < 0, -z, z)
        expected = bn >= 0
        decided = np.abs(bn) > 1e-6  # leave exact float ties at the boundary out
        np.testing.assert_array_equal((z_graph >= folded.threshold)[decided], expected[decided])
