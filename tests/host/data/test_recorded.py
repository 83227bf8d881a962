"""The normalisation a model records (host.data.recorded), and host sweep / host robustness
using it: against accuracy computed by hand on inputs normalised by hand."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from host.campaign import SweepSettings, make_spec, reference_run
from host.cli import main
from host.data import DataSpec, load_dataset
from host.data.recorded import NORMALIZE_KEY, choose_normalize, normalize_conflict, recorded_normalize
from host.errors import FlipLabError
from host.models import resolve_model


def with_props(tmp_path, **props) -> str:
    model = onnx.load(resolve_model("digits_mlp"))
    onnx.helper.set_model_props(model, props)
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    return str(path)


def test_recorded_normalisation_is_read_canonical_and_checked(tmp_path):
    assert recorded_normalize(resolve_model("digits_mlp")) is None
    assert recorded_normalize(with_props(tmp_path, **{NORMALIZE_KEY: "meanstd:0.50,0.25"})) \
        == "meanstd:0.5,0.25"
    # a clipped model: the normalisation host clip profiled with
    profile = json.dumps({"data": "digits", "normalize": "none", "samples": 10})
    assert recorded_normalize(with_props(tmp_path, **{"fliplab.clip.profile": profile})) == \
        "none"
    with pytest.raises(FlipLabError, match="fliplab.normalize: unknown normalize 'zscore'"):
        recorded_normalize(with_props(tmp_path, **{NORMALIZE_KEY: "zscore"}))


def test_precedence_explicit_then_recorded_then_by_input_type():
    assert choose_normalize("unit", "meanstd:0.5,0.25") == "unit"
    assert choose_normalize(None, "meanstd:0.5,0.25") == "meanstd:0.5,0.25"
    assert choose_normalize(None, None, "int64") == "none"
    assert choose_normalize(None, None) == "unit"


def test_sweep_uses_the_recorded_normalisation_hand_checked(tmp_path):
    path = with_props(tmp_path, **{NORMALIZE_KEY: "meanstd:0.5,0.25"})
    spec = make_spec(path, SweepSettings(codecs="float32", rates="1e-3", trials=1,
                                         data=DataSpec("digits", None, 100)))
    assert spec.normalize == "meanstd:0.5,0.25"
    reference, _ = reference_run(spec)
    # by hand: pixels to [0, 1], then (x - 0.5) / 0.25, run in onnxruntime
    x, y = load_dataset("digits", input_shape=["N", 64], samples=100)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    logits = sess.run(None, {sess.get_inputs()[0].name: ((x - 0.5) / 0.25).astype(np.float32)})[0]
    assert reference["correct"] == int((logits.argmax(1) == y).sum())
    explicit = make_spec(path, SweepSettings(codecs="float32", rates="1e-3", trials=1,
                                             data=DataSpec("digits", "unit", 100)))
    assert explicit.normalize == "unit"


def test_a_conflict_is_reported_and_the_explicit_value_wins(tmp_path, capsys):
    path = with_props(tmp_path, **{NORMALIZE_KEY: "meanstd:0.5,0.25"})
    assert normalize_conflict(path, None) is None
    assert normalize_conflict(path, "meanstd:0.5,0.250") is None  # the same spec
    assert main(["sweep", path, "--codecs", "float32", "--rates", "1e-3", "--trials", "1",
                 "--samples", "20", "--normalize", "unit", "--out", str(tmp_path / "run"),
                 "--json"]) == 0
    err = capsys.readouterr().err
    assert "warning: --normalize unit differs from the normalisation m.onnx records " \
           "(meanstd:0.5,0.25); using --normalize unit" in err
    camp = json.loads((tmp_path / "run" / "campaign.json").read_text())
    assert json.dumps(camp).count('"normalize": "unit"') == 1
    assert main(["robustness", path, "--codec", "float32", "--samples", "20", "--normalize",
                 "unit", "--max-trials", "3", "--lo", "1e-3", "--hi", "1e-2", "--json"]) == 0
    assert "differs from the normalisation m.onnx records" in capsys.readouterr().err


def test_export_records_the_models_normalisation_in_the_image(tmp_path, capsys):
    path = with_props(tmp_path, **{NORMALIZE_KEY: "meanstd:0.5,0.25"})
    assert main(["export", path, "--codec", "float32", "-o", str(tmp_path / "m.bin")]) == 0
    capsys.readouterr()
    assert main(["inspect", str(tmp_path / "m.bin"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"]["normalize"] == "meanstd:0.5,0.25"


def test_sweep_of_an_integer_input_model_passes_token_ids_unchanged():
    """Token ids (an int64 input): no recorded normalisation, so ``none``; the reference
    accuracy equals the original model's in tests/models/expected.json (onnxruntime)."""
    from pathlib import Path

    models = Path(__file__).resolve().parents[2] / "models"
    entry = json.loads((models / "expected.json").read_text())["embedding_dynamo"]
    spec = make_spec(models / "embedding_dynamo.onnx", SweepSettings(
        codecs="float32", rates="1e-3", trials=1, data=DataSpec("digits", None,
                                                                 entry["samples"])))
    assert spec.normalize == "none"
    assert reference_run(spec)[0]["accuracy"] == pytest.approx(entry["accuracy"])


def test_clip_profiles_with_the_recorded_normalisation_hand_checked(tmp_path, capsys):
    from host.mitigation.clip import profile_act_max, read_metadata

    model = onnx.load(resolve_model("digits_cnn"))
    onnx.helper.set_model_props(model, {NORMALIZE_KEY: "meanstd:0.5,0.25"})
    path = tmp_path / "cnn.onnx"
    onnx.save(model, path)
    assert main(["clip", str(path), "--profile-samples", "50", "-o", str(tmp_path / "c.onnx"),
                 "--json"]) == 0
    capsys.readouterr()
    meta = read_metadata(onnx.load(tmp_path / "c.onnx"))
    assert meta["profile"]["normalize"] == "meanstd:0.5,0.25"
    x, _ = load_dataset("digits", input_shape=["N", 1, 8, 8], samples=50)  # unit, by hand:
    assert meta["act_max"] == profile_act_max(model, ((x - 0.5) / 0.25).astype(np.float32))
