"""Eq. 6 rescaling (seed 002) as graph passes: η equalised, function kept, bad input refused."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import numpy_helper

from host.errors import FlipLabError
from host.mitigation.relevance import criticality, eta_of, read_chain
from host.mitigation.rescale import adjust_weights, eq6_scales, requantise, rescale_features
from host.model.reading import read_onnx
from host.models import resolve_model
from tests.host.mitigation.toy_nets import chain_model, run


def _net(rng, head: str = "gap"):
    layers = [("conv", rng.normal(size=(3, 1, 3, 3)), rng.normal(size=3), 1), ("relu",),
              ("maxpool", 2),
              ("conv", rng.normal(size=(4, 3, 3, 3)), rng.normal(size=4), 1), ("relu",)]
    if head == "gap":
        layers += [("gap",), ("flatten",), ("gemm", rng.normal(size=(5, 4)), rng.normal(size=5))]
    else:  # flatten 4 x 2 x 2 -> a MatMul + Add reads each feature map as a block of 4
        layers += [("avgpool", 2), ("flatten",),
                   ("matmul", rng.normal(size=(16, 5)), rng.normal(size=5))]
    return chain_model(["N", 1, 8, 8], layers)


def _weights(model):
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def test_eq6_scales_by_hand():
    # η = (1, 3): mean 2, s = (2/1, 2/3); η' = s·η = (2, 2)
    np.testing.assert_allclose(eq6_scales(np.array([1.0, 3.0])), [2.0, 2 / 3])
    np.testing.assert_allclose(eq6_scales(np.array([0.0, 2.0])), [1.0, 0.5])  # η = 0 keeps 1


@pytest.mark.parametrize("head", ["gap", "flatten"])
def test_eta_equals_its_mean_after_eq6_with_rho_fixed(head):
    rng = np.random.default_rng(1)
    model = _net(rng, head)
    x = rng.uniform(0, 1, size=(8, 1, 8, 8))
    y = rng.integers(0, 5, size=8)
    layers = criticality(read_chain(model), x, y)
    for i, layer in enumerate(layers[:-1]):
        rescaled = read_chain(rescale_features(model, {layer.name: eq6_scales(layer.eta)}))
        reader = [s for s in rescaled.steps if s.is_weight_layer][i + 1]
        eta_new = eta_of(reader.weight, layers[i + 1].rho, layer.shape[0])
        np.testing.assert_allclose(eta_new, np.full_like(eta_new, layer.eta.mean()), rtol=1e-6)


def test_constant_eta_changes_nothing():
    rng = np.random.default_rng(2)
    model = _net(rng)
    same = rescale_features(model, {"conv0": eq6_scales(np.full(3, 0.7))}, compensate=True)
    for name, value in _weights(model).items():
        np.testing.assert_array_equal(_weights(same)[name], value)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), head=st.sampled_from(["gap", "flatten"]),
       log_s=st.lists(st.floats(-2.0, 2.0), min_size=7, max_size=7))
def test_compensated_rescale_keeps_a_relu_network_function(seed, head, log_s):
    rng = np.random.default_rng(seed)
    model = _net(rng, head)
    x = rng.uniform(0, 1, size=(4, 1, 8, 8)).astype(np.float32)
    s = np.exp(np.array(log_s))
    scaled = rescale_features(model, {"conv0": s[:3], "conv3": s[3:]}, compensate=True)
    np.testing.assert_allclose(run(scaled, x), run(model, x), rtol=1e-4, atol=1e-4)
    # ρ (and so the relevance) does not move either
    y = np.zeros(4, dtype=int)
    before, after = criticality(read_chain(model), x, y), criticality(read_chain(scaled), x, y)
    for a, b in zip(before, after):
        np.testing.assert_allclose(b.rho, a.rho, rtol=1e-6, atol=1e-9)


def test_paper_form_changes_only_the_reader():
    rng = np.random.default_rng(3)
    model = _net(rng)
    s = np.array([0.5, 1.0, 2.0])
    scaled = _weights(rescale_features(model, {"conv0": s}))
    original = _weights(model)
    np.testing.assert_allclose(scaled["w3"], original["w3"] * s.reshape(1, 3, 1, 1))
    for name in ("w0", "b0", "b3", "w7"):
        np.testing.assert_array_equal(scaled[name], original[name])


def test_requantise_uses_the_int8_grid_per_output_channel():
    rng = np.random.default_rng(4)
    model = requantise(_net(rng, "flatten"))
    w = _weights(model)
    for name, axis in (("w0", 0), ("w3", 0), ("w7", 1)):
        value = np.moveaxis(w[name], axis, 0).reshape(w[name].shape[axis], -1)
        step = np.abs(value).max(axis=1, keepdims=True) / 127
        np.testing.assert_allclose(value / step, np.rint(value / step), atol=1e-3)


def test_adjust_weights_reduces_the_spread_on_the_bundled_cnn():
    from host.data import DataSpec
    from host.mitigation.relevance import convergence_measure
    from host.mitigation.tolerance import model_input_shape

    path = resolve_model("digits_cnn")
    x, y = DataSpec("digits", "unit", 60).load(model_input_shape(path))
    model = read_onnx(path)
    adjusted, used = adjust_weights(model, x, y, compensate=True, codec=None)
    assert [la.name for la in used] == [la.name for la in criticality(read_chain(model), x, y)
                                        if la.eta is not None]
    before = convergence_measure(criticality(read_chain(model), x, y))
    after = convergence_measure(criticality(read_chain(adjusted), x, y))
    assert after < before
    np.testing.assert_allclose(run(adjusted, x), run(model, x), rtol=1e-3, atol=1e-3)


def test_bad_inputs():
    rng = np.random.default_rng(5)
    model = _net(rng)
    with pytest.raises(FlipLabError, match="no weight layer named nope"):
        rescale_features(model, {"nope": np.ones(3)})
    with pytest.raises(FlipLabError, match="writes the logits"):
        rescale_features(model, {"gemm7": np.ones(5)})
    with pytest.raises(FlipLabError, match="2 scales for 3 feature maps"):
        rescale_features(model, {"conv0": np.ones(2)})
    with pytest.raises(FlipLabError, match="finite and > 0"):
        rescale_features(model, {"conv0": np.array([1.0, 0.0, 1.0])})
    with pytest.raises(FlipLabError, match="QDQ model cannot be rescaled"):
        rescale_features(read_onnx(resolve_model("digits_mlp_int8")), {"fc1": np.ones(64)})
    with pytest.raises(FlipLabError, match="η >= 0"):
        eq6_scales(np.array([1.0, -1.0]))


def test_pool_after_pointwise_keeps_the_function_and_widens_the_layer():
    from host.mitigation.bottleneck import pool_after_pointwise

    rng = np.random.default_rng(7)
    model = chain_model(["N", 1, 8, 8], [
        ("conv", rng.normal(size=(4, 1, 3, 3)), rng.normal(size=4), 1), ("relu",), ("gap",),
        ("conv", rng.normal(size=(3, 4, 1, 1)), rng.normal(size=3), 0), ("flatten",)])
    moved = pool_after_pointwise(model)
    x = rng.uniform(0, 1, size=(5, 1, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(run(moved, x), run(model, x), rtol=1e-5, atol=1e-5)
    assert [n.op_type for n in moved.graph.node] == ["Conv", "Relu", "Conv",
                                                     "GlobalAveragePool", "Flatten"]
    layers = criticality(read_chain(moved), x, np.zeros(5, dtype=int))
    assert layers[0].shape == (4, 8, 8)  # the layer the 1x1 conv reads is no longer pooled
    with pytest.raises(FlipLabError, match="no global average pooling"):
        pool_after_pointwise(moved)
