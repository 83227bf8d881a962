"""Export -> image -> decode -> onnxruntime, checked against the original ONNX models.

An image written, read back and evaluated without errors must predict exactly what the original
model predicts (float32 codec, exact integer codes of a QDQ model, sign codes of a binarized
model), or what the model predicts with the same quantisation applied in floating point by an
independent implementation of seed 000 eq. (1) (quantised codecs).
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from host.data import load_dataset
from host.decode import decode_weights
from host.evaluate import evaluate_image
from host.executors.ort import OnnxExecutor
from host.export import CodecPlan, build_image
from host.image import image_bytes, parse_image
from host.model import load_model
from host.models import resolve_model


def original_predictions(path, x, replace=None):
    """argmax of the original model on x; ``replace`` maps initializer name -> new array."""
    m = onnx.load(str(path))
    for init in m.graph.initializer:
        if replace and init.name in replace:
            init.CopyFrom(numpy_helper.from_array(replace[init.name], init.name))
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0].argmax(1)


def round_trip(path, plan):
    ws = load_model(path)
    image, _ = build_image(ws, plan)
    return parse_image(image_bytes(image))  # through the bytes, as a file would


def digits_for(image, n=450):
    return load_dataset("digits", input_shape=image.model["input_shape"], samples=n)


@pytest.mark.parametrize("model", ["digits_mlp", "digits_cnn"])
@pytest.mark.parametrize("strategy", ["session", "inputs"])
def test_float32_image_predicts_exactly_like_the_original(model, strategy):
    path = resolve_model(model)
    image = round_trip(path, CodecPlan("float32"))
    x, y = digits_for(image)
    ev = evaluate_image(image, x, y, executor=OnnxExecutor.for_image(image, strategy=strategy))
    assert np.array_equal(ev.predictions, original_predictions(path, x))
    assert ev.nulled == {t.name: 0 for t in image.tensors}


def eq1_quantise(w, lo, hi, q):
    """Seed 000 eq. (1), written out independently: nearest level of w_min + Δ·i."""
    delta = (hi - lo) / (2 ** q - 1)
    i = np.clip(np.round((w - lo) / delta), 0, 2 ** q - 1)
    return (lo + delta * i).astype(np.float32)


@pytest.mark.parametrize("spec, q", [("fixed8", 8), ("parity8", 7), ("fixed4", 4)])
def test_quantised_image_predicts_like_float_quantisation(spec, q):
    path = resolve_model("digits_cnn")
    ws = load_model(path)
    lo = min(float(t.values.min()) for t in ws.tensors)  # one range per model
    hi = max(float(t.values.max()) for t in ws.tensors)
    image = round_trip(path, CodecPlan(spec))
    x, y = digits_for(image)
    quantised = {t.name: eq1_quantise(t.values, lo, hi, q) for t in ws.tensors}
    decoded = decode_weights(image).weights
    for name, w in quantised.items():
        np.testing.assert_allclose(decoded[name], w, rtol=0, atol=1e-6 * (hi - lo))
    ev = evaluate_image(image, x, y)
    assert np.array_equal(ev.predictions, original_predictions(path, x, quantised))


def test_qdq_image_keeps_the_integer_codes_and_predictions():
    path = resolve_model("digits_mlp_int8")
    image = round_trip(path, CodecPlan())  # default: exact int<bits> for QDQ codes
    ws = load_model(path)
    decoded = decode_weights(image).weights
    for t in ws.tensors:
        assert decoded[t.name].dtype == t.values.dtype
        assert np.array_equal(decoded[t.name], t.values)
    x, y = digits_for(image)
    assert np.array_equal(evaluate_image(image, x, y).predictions, original_predictions(path, x))


def test_binarized_image_stores_one_bit_per_weight_and_predicts_like_the_original():
    path = resolve_model("digits_bnn")
    image = round_trip(path, CodecPlan("fixed8"))
    binarized = [t for t in image.tensors if t.binarized]
    assert binarized and all(t.codec == "sign" and t.stored_bits == t.count for t in binarized)
    x, y = digits_for(image)
    assert np.array_equal(evaluate_image(image, x, y).predictions, original_predictions(path, x))


def test_overrides_mix_codecs_in_one_image():
    path = resolve_model("digits_cnn")
    ws = load_model(path)
    first = ws.tensors[0].name
    image = round_trip(path, CodecPlan("parity8", ((first, "secded(parity8)"),)))
    codecs = {t.name: t.codec for t in image.tensors}
    assert codecs[first] == "secded(parity8)"
    assert set(codecs.values()) == {"secded(parity8)", "parity8"}
    # SECDED corrects a single flip in the first tensor; parity8 nulls one elsewhere
    payload = image.payload.copy()
    payload[image.tensors[0].bit_offset // 8] ^= 1
    payload[image.tensors[-1].bit_offset // 8] ^= 1
    d = decode_weights(image.with_payload(payload))
    assert d.total_corrected == 1 and d.corrected[first] == 1
    assert d.nulled[first] == 0 and d.nulled[image.tensors[-1].name] == 1


def test_per_channel_range_fits_each_output_channel():
    path = resolve_model("digits_cnn")
    ws = load_model(path)
    image = round_trip(path, CodecPlan("fixed8", granularity="channel"))
    decoded = decode_weights(image).weights
    for t in ws.tensors:
        if t.channel_axis is None or t.values.ndim < 2:
            continue
        w = np.moveaxis(t.values, t.channel_axis, 0).reshape(t.values.shape[t.channel_axis], -1)
        d = np.moveaxis(decoded[t.name], t.channel_axis, 0).reshape(w.shape)
        step = (w.max(1) - w.min(1)) / 255
        assert np.all(np.abs(d - w) <= step[:, None] / 2 + 1e-6)  # half a step of its own range


def test_nulled_qdq_weight_reads_as_its_zero_point():
    """A parity failure on an asymmetric uint8 code must dequantise to 0: it reads as zp."""
    from host.image import Image, TensorEntry

    values = np.array([3, 200, 128, 255], np.uint8)
    codec_spec = "parity(int8)"
    from host.codecs import get_codec
    codec = get_codec(codec_spec)
    params = codec.fit(values, axis=None, granularity="tensor", zero_point=128)
    seg = codec.pack(codec.encode(values, params))
    payload = np.zeros(-(-seg.size // 4) * 4, np.uint8)
    payload[:seg.size] = seg
    entry = TensorEntry("w", "fc", "MatMul", "weight", (4,), "uint8", codec.spec, params, 0,
                        codec.stored_bits(4), 4)
    image = Image([entry], {"input": "x", "input_shape": [1, 4], "output": "y"}, b"", payload)
    assert np.array_equal(decode_weights(image).weights["w"], values)
    noisy = payload.copy()
    noisy[0] ^= 1 << 3  # a data bit of weight 0 (9-bit codes): odd parity
    d = decode_weights(image.with_payload(noisy))
    assert d.nulled == {"w": 1}
    assert d.weights["w"].tolist() == [128, 200, 128, 255]
