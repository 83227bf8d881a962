"""T^b of seed 004 (eq. 2-6, Theorem 1) against hand-worked values, brute force and host/hw."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from onnx import helper, numpy_helper

from host.cli import main
from host.data import load_dataset
from host.errors import FlipLabError
from host.hw.dense import binary_dense, xnor_popcount
from host.mitigation.tolerance import (
    local_tolerance,
    model_input_shape,
    parse_levels,
    pre_activations,
    tolerance,
    tolerance_share,
)
from host.models import resolve_model

QONNX = "qonnx.custom_op.general"


def _init(name, value):
    return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)


def _save(model: onnx.ModelProto, path) -> str:
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return str(path)


def _model(nodes, x_shape, y_name, inits, domains=()) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "bnn", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info(y_name, onnx.TensorProto.FLOAT, ["N"] + [None] * (len(x_shape) - 1))],
        inits)
    opsets = [helper.make_opsetid("", 17)] + [helper.make_opsetid(d, 1) for d in domains]
    return helper.make_model(graph, opset_imports=opsets)


# ------------------------------------------------------------------------- hand-worked values

def test_hand_example_h5_s3():
    # eq. 2: T = |h - s - 1/2| = |5 - 3 - 0.5| = 1.5 (s = 3: +1 iff h >= 4, a threshold tau = 4)
    t = local_tolerance(np.array([[5.0]]), np.array([4.0]), np.array([1.0]), 1.0, True)
    assert t[0, 0] == 1.5
    # eq. 6: a first layer with inputs 0..Z divides by Z
    assert local_tolerance(np.array([[5.0]]), np.array([4.0]), np.array([1.0]), 3.0, True)[0, 0] == 0.5


def test_hand_worked_2x2_map(tmp_path):
    """One Conv neuron, 2x2 kernel on a 3x3 ±1 input -> a 2x2 map, threshold tau = 1 (s = 0).

    x = [[ 1,  1, -1],      w = [[1,  1],
         [ 1, -1, -1],           [1, -1]]
         [-1,  1,  1]]
    h = [[4, 0], [-2, -2]], T = |h - 1/2| = [[3.5, 0.5], [2.5, 2.5]]:
    T^0.5 = 1, T^2.5 = 3/4, T^3 = 1/4, T^4 = 0.
    """
    nodes = [helper.make_node("Conv", ["x", "w"], ["h"], name="conv"),
             helper.make_node("GreaterOrEqual", ["h", "tau"], ["ge"]),
             helper.make_node("Where", ["ge", "one", "minus_one"], ["y"])]
    inits = [_init("w", [[[[1, 1], [1, -1]]]]), _init("tau", 1.0), _init("one", 1.0),
             _init("minus_one", -1.0)]
    path = _save(_model(nodes, ["N", 1, 3, 3], "y", inits), tmp_path / "map.onnx")
    x = np.array([[1, 1, -1], [1, -1, -1], [-1, 1, 1]], dtype=np.float32).reshape(1, 1, 3, 3)
    report = tolerance(path, x, [0.5, 2.5, 3, 4])
    assert report.overall == {0.5: 1.0, 2.5: 0.75, 3.0: 0.25, 4.0: 0.0}
    (layer,) = report.layers
    assert (layer.name, layer.kind, layer.neurons, layer.positions, layer.z) == ("conv", "threshold", 1, 4, 1.0)
    assert layer.mean_t == pytest.approx((3.5 + 0.5 + 2.5 + 2.5) / 4)


def test_share_averages_positions_per_neuron():
    t = np.array([[[1.0, 5.0], [3.0, 5.0]]])          # 1 sample, 2 positions, 2 neurons
    np.testing.assert_array_equal(tolerance_share(t, 2.0), [[0.5, 1.0]])


# ------------------------------------------------------------------------- Theorem 1

@settings(max_examples=60, deadline=None)
@given(st.data())
def test_theorem_1_with_host_hw(data):
    """Where T >= b, any floor(b/2) weight flips keep the output of binary_dense; floor(T/2) + 1
    flips chosen against the output change it."""
    n_in = data.draw(st.integers(2, 24))
    seed = data.draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2, (1, n_in))
    w = rng.integers(0, 2, (1, n_in))
    tau = data.draw(st.integers(-n_in + 1, n_in))
    z = int(xnor_popcount(x, w)[0, 0])
    t = float(local_tolerance(np.array([[z]]), np.array([tau]), np.array([1.0]), 1.0, True)[0, 0])
    out = binary_dense(x, w, tau)[0, 0]
    b = data.draw(st.floats(0, t))
    any_flips = rng.choice(n_in, size=min(int(b // 2), n_in), replace=False)
    w_any = w.copy()
    w_any[0, any_flips] ^= 1
    assert binary_dense(x, w_any, tau)[0, 0] == out
    # the flips that move z towards the threshold: weights agreeing with x (z > tau) or not
    movers = np.flatnonzero((x[0] == w[0]) == bool(out))
    k = int(t // 2) + 1
    assume(k <= len(movers))
    w_chosen = w.copy()
    w_chosen[0, movers[:k]] ^= 1
    assert binary_dense(x, w_chosen, tau)[0, 0] != out


def _bn_sign_model(rng, n_in, n_out, act: str):
    """x (±1) -> MatMul(±1 weights) -> BatchNormalization -> Sign / BipolarQuant -> y."""
    w = np.where(rng.random((n_in, n_out)) < 0.5, -1.0, 1.0)
    gamma = rng.normal(size=n_out)
    gamma[0] = -abs(gamma[0])          # gamma < 0 present
    beta, mean = rng.normal(size=n_out) * 2, rng.normal(size=n_out) * 3
    var = rng.random(n_out) + 0.5
    if act == "Sign":
        sign = helper.make_node("Sign", ["bn"], ["y"])
        domains, extra = (), []
    else:
        sign = helper.make_node("BipolarQuant", ["bn", "one"], ["y"], domain=QONNX)
        domains, extra = (QONNX,), [_init("one", 1.0)]
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="fc"),
             helper.make_node("BatchNormalization", ["h", "g", "b", "m", "v"], ["bn"], epsilon=1e-3),
             sign]
    inits = [_init("w", w), _init("g", gamma), _init("b", beta), _init("m", mean),
             _init("v", var)] + extra
    params = (gamma, beta, mean, var, 1e-3)
    return _model(nodes, ["N", n_in], "y", inits, domains), w, params


@pytest.mark.parametrize("act", ["Sign", "BipolarQuant"])
def test_batchnorm_sign_minimal_flips_by_brute_force(tmp_path, act):
    """floor(T/2) + 1 is the least number of weight flips that changes sign(BN(h)), found by
    stepping h by 2 per flip through the BatchNorm formula itself (gamma < 0 included)."""
    rng = np.random.default_rng(4)
    n_in, n_out = 15, 6
    model, w, (gamma, beta, mean, var, eps) = _bn_sign_model(rng, n_in, n_out, act)
    path = _save(model, tmp_path / "bn.onnx")
    x = np.where(rng.random((40, n_in)) < 0.5, -1.0, 1.0).astype(np.float32)
    h = x @ w
    np.testing.assert_array_equal(pre_activations(path, x)["fc"], h)

    def out(v):
        return gamma * (v - mean) / np.sqrt(var + eps) + beta >= 0

    report = tolerance(path, x, [0.0])
    from host.mitigation.tolerance import _prepared
    (layer,) = _prepared(path)[2]
    t = local_tolerance(h, layer.c, layer.sense, 1.0, True)
    for i in range(len(x)):
        for n in range(n_out):
            now = out(h[i])[n]
            flips = next((k for k in range(1, n_in + 1)
                          if out(h[i] + 2 * k)[n] != now or out(h[i] - 2 * k)[n] != now), None)
            assert flips is not None
            assert flips == int(t[i, n] // 2) + 1, (i, n, h[i, n], t[i, n])
    assert report.overall[0.0] == 1.0


# ------------------------------------------------------------------------- digits_bnn and host/hw

def test_digits_bnn_pre_activations_equal_host_hw():
    path = resolve_model("digits_bnn")
    x, _ = load_dataset("digits", input_shape=model_input_shape(path), samples=200)
    model = onnx.load(str(path))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    nodes = list(model.graph.node)
    at = next(inits[n.input[1]] for n in nodes if n.op_type == "GreaterOrEqual"
              and n.input[0] == model.graph.input[0].name)
    bits = (x >= at).astype(np.uint8)
    got = pre_activations(path, x)
    matmuls = [n for n in nodes if n.op_type == "MatMul"]
    for node in matmuls[:-1]:
        sign = next(n for n in nodes if n.output[0] == node.input[1])   # Sign(latent weight)
        latent = inits[sign.input[0]]
        assert np.all(latent != 0)
        w_bits = (latent.T > 0).astype(np.uint8)
        z = xnor_popcount(bits, w_bits)
        np.testing.assert_array_equal(got[node.name], z)
        ge = next(n for n in nodes if n.op_type == "GreaterOrEqual" and n.input[0] == node.output[0])
        bits = binary_dense(bits, w_bits, inits[ge.input[1]].astype(np.int64))
    assert set(got) == {n.name for n in matmuls[:-1]}   # the logits layer is no sign layer


def test_cli_json_and_errors(capsys):
    assert main(["tolerance", "digits_bnn", "--samples", "50", "--b", "0,2,1000", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["T_b"]["0"] == 1.0 and out["T_b"]["1000"] == 0.0
    assert 0.0 < out["T_b"]["2"] < 1.0
    assert [la["name"] for la in out["layers"]] == ["fc1", "fc2"]
    assert len(out["layers"][0]["per_neuron"]["2"]) == out["layers"][0]["neurons"]
    assert main(["tolerance", "digits_mlp"]) == 2
    assert "no sign layer" in capsys.readouterr().err
    assert main(["tolerance", "digits_bnn", "--b", "-1"]) == 2


def test_parse_levels_refuses_bad_specs():
    assert parse_levels("32, 64,128") == [32.0, 64.0, 128.0]
    for bad in ("", "x", "-1", "nan"):
        with pytest.raises(FlipLabError):
            parse_levels(bad)


def test_a_bias_moves_the_threshold(tmp_path):
    """Gemm(x, W, bias) >= tau is MatMul(x, W^T) >= tau - bias: the same T^b."""
    rng = np.random.default_rng(7)
    w = np.where(rng.random((5, 9)) < 0.5, -1.0, 1.0)
    bias, tau = np.array([2.0, -3.0, 0.0, 1.0, 5.0]), np.array([1.0, 0.0, -2.0, 4.0, 3.0])
    x = np.where(rng.random((30, 9)) < 0.5, -1.0, 1.0).astype(np.float32)

    def act(src):
        return [helper.make_node("GreaterOrEqual", [src, "tau"], ["ge"]),
                helper.make_node("Where", ["ge", "one", "minus_one"], ["y"])]

    consts = [_init("one", 1.0), _init("minus_one", -1.0)]
    gemm = _model([helper.make_node("Gemm", ["x", "w", "c"], ["h"], name="fc", transB=1), *act("h")],
                  ["N", 9], "y", [_init("w", w), _init("c", bias), _init("tau", tau), *consts])
    plain = _model([helper.make_node("MatMul", ["x", "wt"], ["h"], name="fc"), *act("h")],
                   ["N", 9], "y", [_init("wt", w.T), _init("tau", tau - bias), *consts])
    a = tolerance(_save(gemm, tmp_path / "gemm.onnx"), x, [0.5, 1.5, 2.5, 3.5])
    b = tolerance(_save(plain, tmp_path / "plain.onnx"), x, [0.5, 1.5, 2.5, 3.5])
    assert a.overall == b.overall
    assert 0 < a.overall[2.5] < 1
