"""Per-tensor codec defaults and the clean-quantisation warnings of an export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from host.data import DataSpec
from host.errors import FlipLabError
from host.export import CodecPlan, build_image, clean_check
from host.model import load_model

FOLDER = Path(__file__).resolve().parents[1] / "models"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(9)


def test_int32_biases_keep_their_width_under_a_plain_int8_codec():
    ws = load_model(FOLDER / "cnn_qdq.onnx")
    image, _ = build_image(ws, CodecPlan("int8"))
    assert [(t.role, t.codec) for t in image.tensors] == [
        ("weight", "int8"), ("bias", "int32"), ("weight", "int8"), ("bias", "int32")]


def test_parity_codec_refuses_int32_biases_naming_the_tensor_and_the_fix():
    ws = load_model(FOLDER / "cnn_qdq.onnx")
    bias = ws["conv1.bias_quantized"].values
    needed = max(int(np.abs(bias).max()).bit_length() + 1, 8)
    with pytest.raises(FlipLabError) as error:
        build_image(ws, CodecPlan("parity(int8)"))
    message = str(error.value)
    assert "\n" not in message
    assert "'conv1.bias_quantized' (bias of '/conv1/Conv')" in message
    assert "--override 'conv1.bias_quantized=int32'" in message
    assert f"parity(int{needed})" in message
    # the fix it names works
    plan = CodecPlan("parity(int8)", (("*bias*", f"parity(int{needed})"),))
    image, _ = build_image(ws, plan)
    assert [t.codec for t in image.tensors] == ["parity(int8)", f"parity(int{needed})"] * 2


def test_a_codec_error_names_the_tensor():
    ws = load_model(FOLDER / "cnn_qdq.onnx")
    with pytest.raises(FlipLabError, match=r"^tensor 'conv1.weight_quantized' \(weight of '/conv1/Conv'\): "):
        build_image(ws, CodecPlan(None, (("*weight*", "int4"),)))


def _two_scale_mlp(tmp_path, rng) -> Path:
    """fc1's weights ~ N(0, 50), fc2's ~ N(0, 0.01): one range per model (fixed8: a step of
    about 1) puts all of fc2 on one level."""
    w1 = (rng.normal(size=(6, 8)) * 50).astype(np.float32)
    w2 = (rng.normal(size=(8, 4)) * 0.01).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"),
         helper.make_node("MatMul", ["h", "w2"], ["y"], name="fc2")], "two",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "two.onnx"
    onnx.save(model, str(path))
    return path


def test_a_range_that_loses_clean_accuracy_is_reported_with_the_better_one(tmp_path, rng):
    ws = load_model(_two_scale_mlp(tmp_path, rng))
    _, report = build_image(ws, CodecPlan("fixed8"))
    errors = {e.tensor: e for e in report.errors}
    # Independent truth: seed 000 eq. (1) over the one model range, nearest level.
    w1, w2 = ws["w1"].values.astype(np.float64), ws["w2"].values.astype(np.float64)
    lo, hi = min(w1.min(), w2.min()), max(w1.max(), w2.max())
    step = (hi - lo) / 255
    decoded = lo + np.round((w2 - lo) / step) * step
    sqnr = 10 * np.log10(np.sum(w2 ** 2) / np.sum((w2 - decoded) ** 2))
    assert errors["w2"].sqnr_db == pytest.approx(sqnr, abs=1e-6)
    assert errors["w2"].sqnr_db < 0  # one level for all of fc2: worse than storing zeros
    assert errors["w2"].sign_lost == pytest.approx(np.mean(np.sign(decoded) != np.sign(w2)))
    assert errors["w2"].channel_sqnr_db > 30
    [warning] = report.warnings("model")
    assert warning.startswith(f"tensor 'w2' (fc2) in fixed8 with --range model: clean SQNR {sqnr:.1f} dB")
    assert "of weights lose their sign; --range channel gives" in warning
    _, channel = build_image(ws, CodecPlan("fixed8", granularity="channel"))
    assert channel.warnings("channel") == []


def test_clean_check_on_data_reports_the_loss_and_the_channel_range():
    ws = load_model(FOLDER / "mlp_legacy.onnx")
    plan = CodecPlan("int2")  # 2-bit levels -1, 0, 1: most of the model is lost
    image, _ = build_image(ws, plan, normalize="unit")
    result, warnings = clean_check(ws, plan, image, DataSpec("digits", None, 100))
    assert result["model_accuracy"] > 0.9 > result["accuracy"] + 0.01
    assert "channel_accuracy" in result
    [line] = warnings
    assert line.startswith(f"the clean image scores {result['accuracy']:.4f}, the model itself "
                           f"{result['model_accuracy']:.4f}")


def test_the_image_records_the_normalisation_and_input_dtype():
    image, _ = build_image(load_model(FOLDER / "embedding_legacy.onnx"), CodecPlan("float32"),
                           normalize="none")
    assert image.model["normalize"] == "none" and image.model["input_dtype"] == "int64"
    image, _ = build_image(load_model(FOLDER / "mlp_legacy.onnx"), CodecPlan("float32"),
                           normalize="MeanStd:0.5,0.25")
    assert image.model["normalize"] == "meanstd:0.5,0.25" and "input_dtype" not in image.model
    with pytest.raises(FlipLabError, match="unknown normalize"):
        build_image(load_model(FOLDER / "mlp_legacy.onnx"), CodecPlan("float32"), normalize="zscore")


def test_integer_inputs_take_the_stored_values_or_refuse_a_normalisation():
    x, _ = DataSpec("digits", None, 5).load([None, 64], input_dtype="int64")
    assert x.dtype == np.int64 and x.max() <= 16
    with pytest.raises(FlipLabError, match="input is int64 .* normalize 'unit' does not apply"):
        DataSpec("digits", "unit", 5).load([None, 64], input_dtype="int64")


@pytest.mark.parametrize("codec,granularity", [
    ("fixed8", "model"), ("fixed3:mid", "tensor"), ("parity(float16)", "model"),
    ("int5", "tensor"), ("gray4", "model"), ("hamming6", "model"), ("sign", "model"),
    ("bfloat16", "tensor"), ("fixed8", "channel"), ("secded(fixed8)", "model")])
def test_encoding_a_chunk_at_a_time_writes_the_same_image(monkeypatch, codec, granularity):
    """Large tensors are encoded in chunks (bounded temporaries): the image is byte for byte
    the one the whole-tensor encode writes, for chunks that split tensors anywhere."""
    import host.export

    ws = load_model(FOLDER.parent.parent / "models" / "digits_cnn.onnx")
    plan = CodecPlan(codec, granularity=granularity)
    whole, _ = build_image(ws, plan)
    monkeypatch.setattr(host.export, "ENCODE_CHUNK", 37)
    chunked, _ = build_image(ws, plan, measure=False)
    assert np.array_equal(whole.payload, chunked.payload)
    assert [t.params for t in whole.tensors] == [t.params for t in chunked.tensors]
