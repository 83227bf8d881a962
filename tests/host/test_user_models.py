"""The folder of models as users export them (tests/models, made by tests/models/build.py).

Independent truth: the top-1 predictions onnxruntime gave on each ORIGINAL file when the folder
was built (for QONNX files, which onnxruntime cannot run, the torch model's), stored in
``expected.json``; and onnxruntime on the original file, run here, where it can. FlipLab's
clean image (``float32``, or the model's own integer codes) must give exactly those; a noisy
image must give different logits. Needs neither torch nor brevitas.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from host.channels import parse_channel
from host.data import DataSpec
from host.decode import decode_weights
from host.errors import FlipLabError
from host.evaluate import EvalSettings, evaluate
from host.executors import get_executor
from host.export import CodecPlan, build_image
from host.image import describe, write_image
from host.inject import inject
from host.model import load_model

FOLDER = Path(__file__).resolve().parents[1] / "models"
EXPECTED = json.loads((FOLDER / "expected.json").read_text())
QONNX = {"brevitas_qonnx4", "brevitas_bipolar"}  # custom ops onnxruntime cannot run


def _image(name: str):
    entry = EXPECTED[name]
    ws = load_model(FOLDER / f"{name}.onnx")
    plan = CodecPlan("float32" if entry["codec"] == "float32" else None)
    image, _ = build_image(ws, plan, source=name, normalize=entry["normalize"])
    return ws, image


def _original_predictions(name: str, x: np.ndarray) -> list[int]:
    """onnxruntime on the original file, one model batch at a time."""
    session = ort.InferenceSession(str(FOLDER / f"{name}.onnx"), providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0]
    batch = feed.shape[0] if isinstance(feed.shape[0], int) else len(x)
    out = np.concatenate([session.run(None, {feed.name: x[i:i + batch]})[0]
                          for i in range(0, len(x), batch)])
    if out.ndim == 1:  # the model's own predicted labels (sklearn-onnx's first output)
        return out.tolist()
    return out.argmax(axis=1).tolist()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_clean_image_predicts_as_the_original_and_a_noisy_one_differs(name):
    entry = EXPECTED[name]
    ws, image = _image(name)
    x, _ = DataSpec("digits", None, entry["samples"]).load_for(image.model)
    assert x.dtype == np.dtype(entry["input_dtype"])
    executor = get_executor("onnxruntime").for_image(image)
    clean = executor.run(decode_weights(image), x).logits
    assert clean.argmax(axis=1).tolist() == entry["predictions"]
    if name not in QONNX:
        assert clean.argmax(axis=1).tolist() == _original_predictions(name, x)
    noisy, report = inject(image, parse_channel("bsc:0.05"), seed=1)
    assert report.flips > 0
    assert not np.array_equal(executor.run(decode_weights(noisy), x).logits, clean)


def test_a_label_first_classifier_is_scored_on_its_probabilities():
    ws = load_model(FOLDER / "sklearn_mlp.onnx")  # outputs: label int64 [N], probabilities
    assert ws.output_name == "probabilities"


def test_a_zipmap_classifier_is_refused_naming_the_fix():
    with pytest.raises(FlipLabError, match=r"'output_label' \(labels\), 'output_probability' "
                                           r"\(sequence\)\); export the scores as a tensor "
                                           r"\(sklearn-onnx: options=\{'zipmap': False\}\)"):
        load_model(FOLDER / "sklearn_mlp_zipmap.onnx")


@pytest.mark.parametrize("name", ["embedding_dynamo", "mlp_batch1", "brevitas_qcdq4", "sklearn_mlp"])
def test_host_eval_reads_the_image_alone(name, tmp_path):
    """Through the file and `host eval`'s job: the recorded input dtype, normalisation and the
    model's fixed batch need no options."""
    entry = EXPECTED[name]
    _, image = _image(name)
    write_image(image, tmp_path / "m.img")
    result = evaluate(EvalSettings(image=tmp_path / "m.img",
                                   data=DataSpec("digits", None, entry["samples"])))
    assert result.predictions.tolist() == entry["predictions"]


def test_declared_widths_become_the_default_codecs():
    """brevitas's 4-bit weights (int8 codes clipped to [-7, 7], or QONNX Quant bit_width 4) are
    stored in 4 bits; onnxruntime's int32 biases in 32; float biases in fixed8."""
    for name in ("brevitas_qcdq4", "brevitas_qonnx4"):
        _, image = _image(name)
        assert [(t.name, t.codec) for t in image.tensors] == [
            ("slice_1", "int4"), ("fc1.bias", "fixed8"), ("slice_2", "int4"), ("fc2.bias", "fixed8")]
    _, image = _image("cnn_qdq")
    assert [t.codec for t in image.tensors] == ["int8", "int32", "int8", "int32"]


@pytest.mark.parametrize("name", ["lstm_dynamo", "gru_dynamo"])
def test_recurrent_gates_of_the_default_exporter_are_the_initializers(name):
    """torch's default exporter slices the stacked gates of rnn.weight_hh_l0 and concatenates
    them in ONNX's gate order before the LSTM/GRU: the stored tensor is the initializer, its
    gate axis (0 of [gates·H, H]) the channel axis, the Slice/Concat chain stays in the graph."""
    ws = load_model(FOLDER / f"{name}.onnx")
    recurrence = ws["rnn.weight_hh_l0"]
    assert (recurrence.role, recurrence.channel_axis) == ("recurrence", 0)
    assert recurrence.values.ndim == 2
    readers = [node.op_type for node in ws.graph.graph.node if "rnn.weight_hh_l0" in node.input]
    assert readers and set(readers) == {"Slice"}


def test_short_names_make_opaque_exporter_names_readable(tmp_path):
    ws = load_model(FOLDER / "lstm_legacy.onnx")
    image, _ = build_image(ws, CodecPlan("float32"))
    shorts = {t["name"]: t["short"] for t in describe(image)["tensors"]}
    assert shorts["onnx::LSTM_110"] == "rnn.recurrence"
    assert shorts["fc.weight"] == "fc.weight"
    assert [t.name for t in image.select(["rnn.recurrence"])] == ["onnx::LSTM_110"]
    assert [t.name for t in image.select(["/rnn/LSTM"])] == ["onnx::LSTM_109", "onnx::LSTM_110",
                                                             "onnx::LSTM_111"]


def test_onnxruntime_refusals_keep_their_whole_reason_on_one_line():
    _, image = _image("mlp_batch1")
    executor = get_executor("onnxruntime").for_image(image)
    x = np.zeros((3, 63), np.float32)
    with pytest.raises(FlipLabError) as error:
        executor.run(decode_weights(image), x)
    message = str(error.value)
    assert "\n" not in message
    assert "index: 1 Got: 63 Expected: 64" in message


def test_binary_weights_of_brevitas_are_stored_as_signs():
    ws, image = _image("brevitas_bipolar")
    assert [(t.binarized, c.codec) for t, c in zip(ws.tensors, image.tensors)] == [
        (True, "sign"), (False, "fixed8"), (True, "sign"), (False, "fixed8")]


def test_a_fixed_batch_is_run_in_padded_chunks(tmp_path):
    """A model fixed to batch 4 on 10 samples: chunks of 4, 4 and 2 + 2 copies; the outputs
    equal x @ w row by row (independent truth: numpy)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.arange(6, dtype=np.float32).reshape(3, 2) - 2.5
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")], "fixed",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 2])],
        [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "fixed.onnx"))
    image, _ = build_image(load_model(tmp_path / "fixed.onnx"), CodecPlan("float32"))
    executor = get_executor("onnxruntime").for_image(image)
    assert executor.batch == 4
    x = np.random.default_rng(3).normal(size=(10, 3)).astype(np.float32)
    np.testing.assert_allclose(executor.run(decode_weights(image), x).logits, x @ w, rtol=1e-6)
