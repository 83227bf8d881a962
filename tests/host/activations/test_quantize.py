"""host.activations.quantize: the format, the range rule and the fault-point pass, against
hand-worked values."""

from __future__ import annotations

import numpy as np
import pytest

from host.activations.faults import single_flip_masks, zero_masks
from host.activations.quantize import (
    ActivationFormat,
    FixedPoint,
    activation_layers,
    insert_fault_points,
    profile_formats,
    range_rule,
    select_layers,
    stored_formats,
)
from host.errors import FlipLabError
from tests.host.activations.helpers import as_float16, matmul_model, run, small_cnn


def test_msb_flip_by_hand():
    """f = 4: 1.0 -> 16 -> MSB flip -> -112 -> -7.0 (unsigned: 144 -> 9.0); twice restores."""
    signed, unsigned = FixedPoint(8, 4, True), FixedPoint(8, 4, False)
    code = signed.quantize(np.array([1.0]))
    assert code.tolist() == [16]
    flipped = code.view(np.uint8) ^ np.uint8(signed.flip_mask("msb"))
    assert flipped.view(np.int8).tolist() == [-112]
    assert signed.dequantize(flipped.view(np.int8)).tolist() == [-7.0]
    assert unsigned.dequantize(unsigned.quantize(np.array([1.0])) ^ np.uint8(0x80)).tolist() == [9.0]
    assert (flipped ^ np.uint8(signed.flip_mask("msb"))).view(np.int8).tolist() == [16]


def test_narrow_signed_msb_is_sign_extended():
    """6 bits, f = 4: 1.0 -> 16 -> MSB (bit 5) flip -> 16 - 32 = -16 -> -1.0."""
    fmt = FixedPoint(6, 4, True)
    assert fmt.flip_mask("msb") == 0xE0 and fmt.flip_mask(4) == 0x10
    code = fmt.quantize(np.array([1.0, 5.0]))
    assert code.tolist() == [16, 31]  # 5.0 saturates at qmax = 31 (1.9375)
    assert fmt.dequantize((code.view(np.uint8) ^ np.uint8(0xE0)).view(np.int8)).tolist() == \
        [-1.0, -0.0625]


@pytest.mark.parametrize("max_abs,signed,frac", [
    (6.3, True, 4), (6.3, False, 5), (1.0, True, 6), (0.9, True, 7), (0.2, True, 9),
    (0.0, True, 7), (200.0, True, -1)])
def test_range_rule(max_abs, signed, frac):
    fmt = range_rule(max_abs, 8, signed)
    assert fmt.frac == frac
    top = fmt.qmax * fmt.scale
    assert top >= max_abs - fmt.scale  # the largest code is at most one LSB below max|a|
    assert max_abs < 2 ** fmt.integer_bits or max_abs == 0


@pytest.mark.parametrize("bits", [1, 9, 8.0, True])
def test_bits_out_of_range(bits):
    with pytest.raises(FlipLabError, match="activation bits must be an integer from 2 to 8"):
        range_rule(1.0, bits)


def test_layer_outputs_follow_the_paper_table():
    """conv+relu+pool is one layer, the global pool another, the logits the last."""
    layers = activation_layers(small_cnn())
    assert [(layer.name, layer.tensor) for layer in layers] == [
        ("conv0", "p0"), ("conv1", "r1"), ("gap", "gap"), ("conv2", "a2")]


def test_unknown_layer_and_no_layers_are_one_line_errors():
    with pytest.raises(FlipLabError, match="no layer output named 'nope'; the model has conv0"):
        select_layers(small_cnn(), "conv0,nope")
    from onnx import TensorProto, helper
    relu_only = helper.make_model(helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])]))
    with pytest.raises(FlipLabError, match="no layer outputs to put activation faults in"):
        select_layers(relu_only)


def _identity_point(signed=True, bits=8):
    model = matmul_model(np.eye(2))
    fmt = ActivationFormat("fc", "y", (2,), 1.0, FixedPoint(bits, 4, signed))
    return model, fmt


@pytest.mark.parametrize("signed,expected", [(True, -7.0), (False, 9.0)])
def test_graph_flips_like_the_hand_example(signed, expected):
    model, fmt = _identity_point(signed)
    faulty = insert_fault_points(model, [fmt])
    x = np.array([[1.0, 1.0]], np.float32)
    masks = single_flip_masks([fmt], "fc", 0, "msb")
    assert run(faulty, {"x": x, **masks}).tolist() == [[expected, 1.0]]
    assert run(faulty, {"x": x, **zero_masks([fmt])}).tolist() == [[1.0, 1.0]]
    assert stored_formats(faulty) == [fmt]


def test_fault_free_path_is_the_quantised_graph_and_lossless_where_representable():
    """A zero mask gives exactly the Quantize/Dequantize-only graph; where every activation
    is a multiple of the LSB inside the range, that is exactly the plain model."""
    model = matmul_model(np.array([[1, -2, 0.5], [0.25, 1, -1]]), relu=True)
    rng = np.random.default_rng(3)
    x = (rng.integers(-8, 9, size=(64, 2)) / 4).astype(np.float32)  # multiples of 1/4
    [fmt] = profile_formats(model, x, select_layers(model))
    assert fmt.format.frac >= 3  # max|y| < 16: at least 3 fraction bits; 1/8 steps are exact
    plain = run(model, {"x": x})
    with_masks = run(insert_fault_points(model, [fmt]), {"x": x, **zero_masks([fmt], len(x))})
    quantised_only = run(insert_fault_points(model, [fmt], masks=False), {"x": x})
    assert np.array_equal(with_masks, quantised_only)
    assert np.array_equal(with_masks, plain)


def test_fault_free_cnn_keeps_predictions():
    """On the small CNN (all layer outputs quantised, 8 bits) the zero-mask graph predicts what
    the Quantize/Dequantize-only graph predicts, bit for bit."""
    model = small_cnn()
    x = np.random.default_rng(1).random((200, 1, 8, 8), dtype=np.float32)
    formats = profile_formats(model, x, select_layers(model))
    out = run(insert_fault_points(model, formats), {"x": x, **zero_masks(formats)})
    ref = run(insert_fault_points(model, formats, masks=False), {"x": x})
    assert np.array_equal(out, ref)


def test_a_float16_model_stores_its_activations_like_its_float32_twin():
    """float16 layer outputs are stored from float32 (Cast -> Quantize -> Xor -> Dequantize ->
    Cast back): onnxruntime's CPU provider computes the float16 graph in float32, so its
    outputs are the float32 twin's (weights multiples of 1/4: the same values), rounded to
    float16 at the end; with every fault point clean and with single flips."""
    model = small_cnn()
    x = np.random.default_rng(1).random((50, 1, 8, 8)).astype(np.float16)
    formats = profile_formats(model, x.astype(np.float32), select_layers(model))
    half, full = insert_fault_points(as_float16(model), formats), insert_fault_points(model, formats)
    for masks in (zero_masks(formats), single_flip_masks(formats, "conv1", 5, "msb")):
        got = run(half, {"x": x, **masks})
        assert got.dtype == np.float16
        np.testing.assert_array_equal(got, run(full, {"x": x.astype(np.float32), **masks})
                                      .astype(np.float16))
