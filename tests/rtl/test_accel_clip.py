"""The accelerator runs a clipped int8 model (seed 003): lowering carries each layer's T_int,
the integer reference agrees with onnxruntime, and the RTL equals the reference bit for bit,
clean and noisy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from cocotb_harness import require_simulator

from host.channels import parse_channel
from host.data import load_dataset
from host.decode import decode_weights
from host.executors.ort import OnnxExecutor
from host.export import CodecPlan, build_accel_image
from host.hw.program import input_activations, logits, run_program
from host.inject import inject
from host.mitigation.clip import clip_activations, integer_threshold, profile_act_max
from host.model import load_model

MODELS = Path(__file__).resolve().parents[2] / "models"
SEED = 20261202


@pytest.fixture(scope="module")
def clipped(tmp_path_factory) -> tuple[Path, dict]:
    """digits_mlp_int8 with both hidden layers clipped at ACT_max / 2 (so the clip bites)."""
    model = onnx.load(MODELS / "digits_mlp_int8.onnx")
    x, _ = load_dataset("digits", input_shape=["N", 64])
    half = {k: v / 2 for k, v in profile_act_max(model, x).items()}
    path = tmp_path_factory.mktemp("clip") / "mlp_clipped.onnx"
    onnx.save(clip_activations(model, half), path)
    return path, half


def test_lowering_carries_the_integer_thresholds(clipped):
    path, half = clipped
    image, _ = build_accel_image(load_model(path), CodecPlan("int8"))
    layers = image.program["layers"]
    scales = {"fc1": 0.018637668, "fc2": 0.07022586}  # the models' fc*.relu_scale
    for layer in layers[:2]:
        assert layer["act"] is True
        assert layer["t"] == integer_threshold(half[layer["name"]], scales[layer["name"]], -128,
                                               127)
        assert 0 < layer["t"] < layer["hi"]
    assert layers[2]["act"] is False  # the logits are never clipped


@pytest.mark.parametrize("noisy", [False, True], ids=["clean", "bsc1e-2"])
def test_reference_agrees_with_onnxruntime_on_the_clipped_model(clipped, noisy):
    image, _ = build_accel_image(load_model(clipped[0]), CodecPlan("parity(int8)"))
    if noisy:
        image, report = inject(image, parse_channel("bsc:1e-2"), seed=SEED)
        assert report.flips > 0
    x, _ = load_dataset("digits", input_shape=image.model["input_shape"])
    ort = OnnxExecutor.for_image(image).logits(decode_weights(image).weights, x)
    run = run_program(image.program, image.payload, input_activations(image.program, x))
    ref = logits(image.program, run.outputs)
    np.testing.assert_array_equal(ref.argmax(axis=1), ort.argmax(axis=1))
    step = np.float32(image.program["output"]["scale"])
    assert np.max(np.abs(ref - ort)) <= step * 1.0001
    # and the clip changed something: without it the reference computes other outputs
    plain = dict(image.program, layers=[dict(l, act=False, t=l["hi"])
                                        for l in image.program["layers"]])
    other = run_program(plain, image.payload, input_activations(plain, x))
    assert not np.array_equal(other.outputs, run.outputs)


def test_cli_clip_export_and_eval_rtl_equals_reference_and_onnxruntime(clipped, tmp_path,
                                                                        capsys):
    from host.cli import main

    require_simulator()
    image, noisy = tmp_path / "w.bin", tmp_path / "noisy.bin"
    assert main(["export", str(clipped[0]), "--codec", "parity(int8)", "--lower", "accel",
                 "-o", str(image)]) == 0
    assert main(["inject", str(image), "--channel", "bsc:1e-2", "--seed", "5",
                 "-o", str(noisy)]) == 0
    capsys.readouterr()
    for img in (image, noisy):
        outs = {}
        for backend in ("onnxruntime", "reference", "rtl"):
            assert main(["eval", "--image", str(img), "--samples", "6", "--backend", backend,
                         "--json"]) == 0
            outs[backend] = json.loads(capsys.readouterr().out)
        assert outs["rtl"]["predictions"] == outs["reference"]["predictions"] \
            == outs["onnxruntime"]["predictions"]
        assert outs["rtl"]["detected"] == outs["reference"]["detected"]


def test_accelerator_outputs_equal_the_reference_bit_for_bit(clipped, tmp_path):
    from host.sim import simulate

    require_simulator()
    image, _ = build_accel_image(load_model(clipped[0]), CodecPlan("parity(int8)"))
    image, _ = inject(image, parse_channel("bsc:1e-2"), seed=SEED)
    x, _ = load_dataset("digits", input_shape=image.model["input_shape"], samples=8)
    a = input_activations(image.program, x)
    ref = run_program(image.program, image.payload, a)
    result = simulate(image, a, build_dir=tmp_path)
    np.testing.assert_array_equal(result.outputs, ref.outputs)
    np.testing.assert_array_equal(result.detected, ref.detected)
