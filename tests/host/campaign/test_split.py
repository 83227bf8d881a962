"""Tests of host.campaign.split: the suffix of a prefix is the whole graph."""

from __future__ import annotations

import numpy as np
import onnx
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from host.campaign import split_at_weights
from host.campaign.split import quantises_activations
from host.executors.ort import OnnxExecutor
from host.model import load_model
from host.models import resolve_model


@settings(max_examples=6, deadline=None)
@given(model=st.sampled_from(["digits_mlp", "digits_cnn", "digits_bnn"]),
       which=st.integers(0, 10), seed=st.integers(0, 2**31))
def test_suffix_of_prefix_is_the_whole_graph(model, which, seed):
    ws = load_model(resolve_model(model))
    layers = list(dict.fromkeys(t.layer for t in ws.tensors))
    layer = layers[which % len(layers)]
    corrupted = [t.name for t in ws.tensors if t.layer == layer]
    cut = split_at_weights(ws.graph, corrupted, input_name=ws.input_name,
                           output_name=ws.output_name)
    assert cut is not None
    rng = np.random.default_rng(seed)
    weights = {t.name: (t.values + rng.normal(0, 0.05, t.values.shape).astype(t.values.dtype)
                        if t.name in corrupted and t.values.dtype.kind == "f" else t.values)
               for t in ws.tensors}
    specs = {t.name: (t.values.shape, t.values.dtype) for t in ws.tensors}
    x = rng.random((7, *[d for d in ws.input_shape[1:]]), dtype=np.float32)
    whole = OnnxExecutor(ws.graph, specs, input_name=ws.input_name,
                         output_name=ws.output_name).logits(weights, x)
    feeds = {ws.input_name: x} if ws.input_name in cut.boundary else {}
    if cut.prefix is not None:
        pre = OnnxExecutor(cut.prefix, {n: specs[n] for n in cut.prefix_weights},
                           input_name=ws.input_name, output_name=cut.prefix_outputs[0])
        acts = pre.session({n: weights[n] for n in cut.prefix_weights}).run(
            list(cut.prefix_outputs), {ws.input_name: x})
        feeds.update(zip(cut.prefix_outputs, acts))
    suf = OnnxExecutor(cut.suffix, {n: specs[n] for n in cut.suffix_weights},
                       input_name=cut.boundary[0], output_name=ws.output_name)
    got = suf.session({n: weights[n] for n in cut.suffix_weights}).run(
        [ws.output_name], feeds)[0]
    np.testing.assert_array_equal(got, whole)
    # the prefix reads none of the corrupted weights; the suffix reads all of them
    assert not set(corrupted) & set(cut.prefix_weights)
    assert set(corrupted) <= set(cut.suffix_weights)


def test_split_at_value_composes_to_the_whole_model():
    """prefix then suffix (the cut value fed in) gives the model's output, bit for bit."""
    import onnxruntime as ort
    import pytest

    from host.campaign.split import split_at_value
    from host.errors import FlipLabError
    from tests.host.activations.helpers import small_cnn

    model = small_cnn(seed=2)
    x = np.random.default_rng(0).random((7, 1, 8, 8), dtype=np.float32)
    cut = split_at_value(model, "p0", input_name="x", output_name="y")
    assert cut.boundary == ("p0",)

    def run(m, feeds):
        return ort.InferenceSession(m.SerializeToString(),
                                    providers=["CPUExecutionProvider"]).run(None, feeds)

    [p0] = run(cut.prefix, {"x": x})
    assert np.array_equal(run(cut.suffix, {"p0": p0})[0], run(model, {"x": x})[0])
    with pytest.raises(FlipLabError, match="is not an activation of the model"):
        split_at_value(model, "x", input_name="x", output_name="y")


def test_a_qdq_graph_is_not_cut():
    """onnxruntime fuses DequantizeLinear -> Gemm -> QuantizeLinear into QGemm depending on
    where a graph begins and ends, so a prefix and suffix cut from a QDQ graph gave a logit one
    quantisation step off the whole graph for some inputs (the property above found it on
    digits_mlp_int8, first layer, clean weights). Such a graph is run whole."""
    ws = load_model(resolve_model("digits_mlp_int8"))
    assert quantises_activations(ws.graph)
    for layer in dict.fromkeys(t.layer for t in ws.tensors):
        corrupted = [t.name for t in ws.tensors if t.layer == layer]
        assert split_at_weights(ws.graph, corrupted, input_name=ws.input_name,
                                output_name=ws.output_name) is None


def _chain(*ops: str) -> onnx.ModelProto:
    """x -> QuantizeLinear -> ops... -> y, scale and zero point as initializers."""
    init = [helper.make_tensor("s", TensorProto.FLOAT, [], [0.1]),
            helper.make_tensor("z", TensorProto.INT8, [], [0])]
    nodes, value = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"])], "q"
    for i, op in enumerate(ops):
        inputs = {"DequantizeLinear": [value, "s", "z"], "BitwiseXor": [value, value],
                  "Clip": [value]}[op]
        nodes.append(helper.make_node(op, inputs, [f"v{i}"]))
        value = f"v{i}"
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", 1, [1])],
                              [helper.make_tensor_value_info(value, 1, [1])], init)
    return helper.make_model(graph)


def test_which_graphs_quantise_activations():
    assert quantises_activations(_chain("DequantizeLinear"))
    assert quantises_activations(_chain("Clip", "DequantizeLinear"))  # brevitas QCDQ
    assert not quantises_activations(_chain("BitwiseXor", "DequantizeLinear"))  # fault points
    assert not quantises_activations(_chain("Clip"))
    for model in ("digits_mlp", "digits_cnn", "digits_bnn"):
        assert not quantises_activations(load_model(resolve_model(model)).graph)
