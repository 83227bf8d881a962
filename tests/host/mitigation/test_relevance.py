"""LRP (eq. 2-5 of seed 002) against hand-worked numbers, conservation, and naive loops."""

from __future__ import annotations

import numpy as np
import pytest

from host.errors import FlipLabError
from host.mitigation.relevance import (
    bottleneck_advice,
    convergence_measure,
    criticality,
    forward,
    read_chain,
    relevance_per_sample,
)
from host.models import resolve_model
from tests.host.mitigation.toy_nets import chain_model, run

W1 = np.array([[1.0, -1.0], [2.0, 1.0]])   # 2 -> 2, ReLU
W2 = np.array([[1.0, 3.0], [-1.0, 2.0]])   # 2 -> 2 logits


def test_hand_worked_dense_network():
    # x = (1, 2): a = W1 x = (-1, 4), f = ReLU(a) = (0, 4), logits = W2 f = (12, 8); class 0.
    # Logits -> f (z+): W2+ = [[1, 3], [0, 2]], z = (0·1 + 4·3, 0·0 + 4·2) = (12, 8),
    #   r_f = f ⊙ (W2+ᵀ (1/12, 0)) = (0, 4·3/12) = (0, 1).
    # f -> x: W1+ = [[1, 0], [2, 1]], z = (1·1 + 2·0, 1·2 + 2·1) = (1, 4), s = (0/1, 1/4),
    #   r_x = x ⊙ (W1+ᵀ s) = (1·(0 + 2/4), 2·(0 + 1/4)) = (0.5, 0.5).
    model = chain_model(["N", 2], [("matmul", W1.T, None), ("relu",), ("gemm", W2, None)])
    chain = read_chain(model)
    values = forward(chain, np.array([[1.0, 2.0]]))
    np.testing.assert_allclose(values[-1], [[12.0, 8.0]])
    r = relevance_per_sample(chain, np.array([[1.0, 2.0]]), np.array([0]))
    np.testing.assert_allclose(r[-1], [[1.0, 0.0]])
    np.testing.assert_allclose(r[2], [[0.0, 1.0]])   # after the ReLU
    np.testing.assert_allclose(r[0], [[0.5, 0.5]])
    # eq. 4: ρ of the hidden layer = (0, 1); eq. 5: η_c = Σ_k |W2_kc| / 2 · ρ_logits,k with
    # ρ_logits = (1, 0): η = (|1|/2, |3|/2) = (0.5, 1.5)
    layers = criticality(chain, np.array([[1.0, 2.0]]), np.array([0]))
    np.testing.assert_allclose(layers[0].rho, [0.0, 1.0])
    np.testing.assert_allclose(layers[0].eta, [0.5, 1.5])
    assert layers[1].eta is None
    np.testing.assert_allclose(layers[1].rho, [1.0, 0.0])
    # (1/L) Σ SD(η / mean η): η / 1.0 = (0.5, 1.5), population SD 0.5
    assert convergence_measure(layers) == pytest.approx(0.5)


def test_mean_over_data_is_eq3():
    model = chain_model(["N", 2], [("matmul", W1.T, None), ("relu",), ("gemm", W2, None)])
    chain = read_chain(model)
    x = np.array([[1.0, 2.0], [2.0, 0.5], [0.3, 0.9]])
    y = np.array([0, 1, 1])
    each = [criticality(chain, x[i:i + 1], y[i:i + 1])[0].rho for i in range(3)]
    np.testing.assert_allclose(criticality(chain, x, y, batch=2)[0].rho, np.mean(each, axis=0))


def _conv_net(rng, bias: bool, pool: str = "maxpool"):
    w0 = rng.normal(size=(3, 2, 3, 3))
    w1 = rng.normal(size=(4, 3, 3, 3))
    w2 = rng.normal(size=(5, 4))
    b = (lambda n: rng.normal(size=n)) if bias else (lambda n: None)
    return chain_model(["N", 2, 8, 8], [
        ("conv", w0, b(3), 1), ("relu",), (pool, 2),
        ("conv", w1, b(4), 1), ("relu",), ("gap",), ("flatten",), ("gemm", w2, b(5))])


@pytest.mark.parametrize("pool", ["maxpool", "avgpool"])
def test_relevance_is_conserved_without_biases(pool):
    rng = np.random.default_rng(3)
    chain = read_chain(_conv_net(rng, bias=False, pool=pool))
    x = rng.uniform(0.1, 1.0, size=(6, 2, 8, 8))
    logits = forward(chain, x)[-1]
    y = np.argmax(logits, axis=1)  # the top class has a positive z+ denominator here
    r = relevance_per_sample(chain, x, y)
    for layer in r:
        np.testing.assert_allclose(layer.reshape(len(x), -1).sum(axis=1), 1.0, rtol=1e-9)


def test_forward_matches_onnxruntime():
    rng = np.random.default_rng(4)
    model = _conv_net(rng, bias=True)
    x = rng.uniform(0, 1, size=(3, 2, 8, 8))
    np.testing.assert_allclose(forward(read_chain(model), x)[-1], run(model, x), rtol=1e-4,
                               atol=1e-5)


def _naive_conv_lrp(f, w, r_out):
    """Eq. 2 for a 3x3 conv with padding 1, element by element."""
    c_in, h, wd = f.shape
    fp = np.pad(f, ((0, 0), (1, 1), (1, 1)))
    wp = np.maximum(w, 0)
    r_in = np.zeros_like(fp)
    for k in range(w.shape[0]):
        for x in range(h):
            for y in range(wd):
                z = sum(fp[c, x + u, y + v] * wp[k, c, u, v]
                        for c in range(c_in) for u in range(3) for v in range(3))
                if z == 0:
                    continue
                for c in range(c_in):
                    for u in range(3):
                        for v in range(3):
                            r_in[c, x + u, y + v] += fp[c, x + u, y + v] * wp[k, c, u, v] \
                                * r_out[k, x, y] / z
    return r_in[:, 1:-1, 1:-1]


def _naive_maxpool_lrp(f, r_out):
    r_in = np.zeros_like(f)
    for c in range(f.shape[0]):
        for x in range(r_out.shape[1]):
            for y in range(r_out.shape[2]):
                window = f[c, 2 * x:2 * x + 2, 2 * y:2 * y + 2]
                u, v = np.unravel_index(np.argmax(window), window.shape)  # first maximum
                r_in[c, 2 * x + u, 2 * y + v] += r_out[c, x, y]
    return r_in


def test_against_a_naive_per_element_loop():
    rng = np.random.default_rng(5)
    chain = read_chain(_conv_net(rng, bias=True))
    x = rng.uniform(0, 1, size=(2, 2, 8, 8))
    x[0, :, :2, :2] = 0.5  # ties inside a max-pool window go to the first maximum
    y = np.array([1, 3])
    values = forward(chain, x)
    r = relevance_per_sample(chain, x, y)
    conv0, conv1 = chain.steps[0].weight, chain.steps[3].weight
    for n in range(2):
        np.testing.assert_allclose(r[3][n], _naive_conv_lrp(values[3][n], conv1, r[4][n]),
                                   atol=1e-12)
        np.testing.assert_allclose(r[2][n], _naive_maxpool_lrp(values[2][n], r[3][n]),
                                   atol=1e-12)
        np.testing.assert_allclose(r[0][n], _naive_conv_lrp(values[0][n], conv0, r[1][n]),
                                   atol=1e-12)


def test_zero_denominator_gives_zero():
    # all weights negative: z+ is 0 everywhere, no relevance flows back
    model = chain_model(["N", 2], [("gemm", -np.ones((2, 2)), None)])
    r = relevance_per_sample(read_chain(model), np.array([[1.0, 1.0]]), np.array([0]))
    np.testing.assert_array_equal(r[0], [[0.0, 0.0]])


def test_bundled_models():
    from host.data import DataSpec
    from host.mitigation.tolerance import model_input_shape

    for name in ("digits_cnn", "digits_mlp", "digits_mlp_int8"):
        path = resolve_model(name)
        x, y = DataSpec("digits", "unit", 20).load(model_input_shape(path))
        layers = criticality(read_chain(path), x, y)
        assert [la.eta is None for la in layers][-1]
        assert all(la.eta is not None and la.eta.shape == (la.shape[0],) for la in layers[:-1])
    with pytest.raises(FlipLabError, match="does not support op (Sign|GreaterOrEqual|Where)"):
        read_chain(resolve_model("digits_bnn"))


def test_qdq_forward_matches_onnxruntime():
    from host.data import DataSpec
    from host.mitigation.tolerance import model_input_shape
    from host.model.reading import read_onnx

    path = resolve_model("digits_mlp_int8")
    x, _ = DataSpec("digits", "unit", 50).load(model_input_shape(path))
    np.testing.assert_allclose(forward(read_chain(path), x)[-1], run(read_onnx(path), x),
                               rtol=1e-4, atol=1e-4)


def test_bad_inputs():
    with pytest.raises(FlipLabError, match="does not support op Sigmoid"):
        read_chain(chain_model(["N", 2], [("gemm", W2, None), ("op", "Sigmoid")]))
    with pytest.raises(FlipLabError, match="at least one Conv, Gemm or MatMul"):
        read_chain(chain_model(["N", 2], [("relu",)]))
    chain = read_chain(chain_model(["N", 2], [("gemm", W2, None)]))
    with pytest.raises(FlipLabError, match="class indices below 2"):
        relevance_per_sample(chain, np.ones((1, 2)), np.array([2]))


def test_bottleneck_advice_names_the_pooled_layer():
    rng = np.random.default_rng(6)
    chain = read_chain(chain_model(["N", 1, 16, 16], [
        ("conv", rng.normal(size=(8, 1, 3, 3)), None, 1), ("relu",),
        ("conv", rng.normal(size=(8, 8, 3, 3)), None, 1), ("relu",), ("gap",),
        ("conv", rng.normal(size=(3, 8, 1, 1)), None, 0), ("flatten",)]))
    x = rng.uniform(0, 1, size=(4, 1, 16, 16))
    notes = bottleneck_advice(chain, criticality(chain, x, np.zeros(4, dtype=int)))
    assert len(notes) == 1 and "conv2" in notes[0] and "8 neurons" in notes[0]
    assert "global average pooling" in notes[0]
