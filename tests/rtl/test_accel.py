"""The accelerator end to end: lowering, the integer reference against onnxruntime, and
``rtl/accel_top.v`` under cocotb + Icarus against the reference, bit for bit.

Tolerances (stated in docs/datapath.md, "Lowering"): on the 450 embedded digits test images
the integer reference's predictions equal onnxruntime's exactly for both models; the int8
model's dequantised logits may differ by at most one output step (a rounding tie of M/2^S
against onnxruntime's float requantisation) and the measured difference is 0; the BNN's logits
(the host's float32 affine of the hardware's z) are equal exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cocotb_harness import require_simulator

from host.channels import parse_channel
from host.data import load_dataset
from host.decode import decode_weights
from host.errors import FlipLabError
from host.executors.ort import OnnxExecutor
from host.export import CodecPlan, build_accel_image
from host.hw.lower import lower_model
from host.hw.program import inference_cycles, input_activations, logits, run_program
from host.image import Image
from host.inject import inject
from host.model import load_model
from host.sim import AccelConfig, check_image, simulate

MODELS = Path(__file__).resolve().parents[2] / "models"
CODECS = {"digits_mlp_int8": "parity(int8)", "digits_bnn": "parity(sign)"}
SAMPLES = 50  # per end-to-end case, as issue 4 asks
SEED = 20261123


def lowered(model: str, codec: str | None = None) -> Image:
    ws = load_model(MODELS / f"{model}.onnx")
    image, _ = build_accel_image(ws, CodecPlan(codec or CODECS[model]))
    return image


def macs(image: Image) -> int:
    return sum(int(l["n_in"]) * int(l["n_out"]) for l in image.program["layers"])


@pytest.mark.parametrize("model", list(CODECS))
def test_reference_reproduces_onnxruntime_on_all_test_digits(model: str) -> None:
    image = lowered(model)
    x, _ = load_dataset("digits", input_shape=image.model["input_shape"], normalize="unit")
    ort = OnnxExecutor.for_image(image).logits(decode_weights(image).weights, x)
    run = run_program(image.program, image.payload, input_activations(image.program, x))
    ref = logits(image.program, run.outputs)
    np.testing.assert_array_equal(ref.argmax(axis=1), ort.argmax(axis=1))
    if model == "digits_bnn":
        np.testing.assert_array_equal(ref, ort)
    else:
        step = np.float32(image.program["output"]["scale"])
        assert np.max(np.abs(ref - ort)) <= step * 1.0001


def test_lowering_keeps_only_weights_in_the_payload() -> None:
    image = lowered("digits_mlp_int8")
    assert [t.role for t in image.tensors] == ["weight"] * 3
    layer = image.program["layers"][0]
    assert (layer["q"], layer["parity"], layer["lo"], layer["hi"]) == (9, True, 0, 255)
    bnn = lowered("digits_bnn")
    assert [t.shape for t in bnn.tensors] == [(128, 64), (64, 128), (10, 64)]  # neuron-major
    assert bnn.program["layers"][-1]["out"] == "z"


def test_unsupported_codec_is_refused_naming_it() -> None:
    with pytest.raises(FlipLabError, match="codec 'float16' is not supported"):
        lowered("digits_mlp_int8", "float16")


def test_float_model_cannot_be_lowered() -> None:
    with pytest.raises(FlipLabError, match="cannot lower a float model"):
        lower_model(load_model(MODELS / "digits_mlp.onnx"))


def test_sizes_beyond_the_memories_are_refused_before_simulation(monkeypatch) -> None:
    import host.sim.run as run

    def no_simulation(*args, **kwargs):
        raise AssertionError("the simulator must not start")

    monkeypatch.setattr(run, "_run", no_simulation)
    image = lowered("digits_bnn")
    with pytest.raises(FlipLabError, match="exceeds the 64-entry activation buffers"):
        simulate(image, np.zeros((1, 64), np.int64), config=AccelConfig(n_bits=6))
    with pytest.raises(FlipLabError, match="payload RAM"):
        simulate(image, np.zeros((1, 64), np.int64), config=AccelConfig(addr_bits=4))
    plain = Image(image.tensors, image.model, image.graph, image.payload)
    with pytest.raises(FlipLabError, match="no accelerator layer program"):
        check_image(plain, AccelConfig())


def test_missing_simulator_names_the_install_command(monkeypatch) -> None:
    import shutil

    from host.sim import require_simulator as require

    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(FlipLabError, match="apt-get install -y iverilog"):
        require()


@pytest.mark.parametrize("noisy", [False, True], ids=["clean", "bsc1e-2"])
@pytest.mark.parametrize("model", list(CODECS))
def test_accelerator_equals_reference_bit_for_bit(tmp_path: Path, model: str, noisy: bool) -> None:
    require_simulator()
    image = lowered(model)
    if noisy:
        image, report = inject(image, parse_channel("bsc:1e-2"), seed=SEED)
        assert report.flips > 0
    x, _ = load_dataset("digits", input_shape=image.model["input_shape"], normalize="unit",
                        samples=SAMPLES)
    a = input_activations(image.program, x)
    ref = run_program(image.program, image.payload, a)
    nulled = decode_weights(image).total_nulled
    assert ref.detected == nulled
    assert (nulled > 0) == noisy
    result = simulate(image, a, build_dir=tmp_path)
    assert result.outputs.shape == (SAMPLES, 10)
    assert (tmp_path / "progress").read_bytes() == b"." * SAMPLES  # what the progress bar counts
    np.testing.assert_array_equal(result.outputs, ref.outputs)
    np.testing.assert_array_equal(result.detected, np.full(SAMPLES, nulled))
    # the cycle model of host.hw (docs/datapath.md, timing), and the lane bound: <= 1.1 x MACs / LANES
    config = AccelConfig()
    expected = inference_cycles(image.program, config.lanes, config.word_bits)
    np.testing.assert_array_equal(result.cycles, np.full(SAMPLES, expected))
    assert expected <= 1.1 * macs(image) / config.lanes


def test_cli_export_lower_and_eval_rtl(tmp_path: Path, capsys) -> None:
    """`host export --lower accel` then `host eval --backend rtl --json`: the same predictions
    as the onnxruntime backend on the same noisy image and samples, and the RTL's fields."""
    import json

    from host.cli import main

    require_simulator()
    image, noisy = tmp_path / "w.bin", tmp_path / "noisy.bin"
    assert main(["export", str(MODELS / "digits_mlp_int8.onnx"), "--codec", "parity(int8)",
                 "--lower", "accel", "-o", str(image)]) == 0
    assert main(["inject", str(image), "--channel", "bsc:1e-2", "--seed", "3",
                 "-o", str(noisy)]) == 0
    capsys.readouterr()
    outs = {}
    for backend in ("onnxruntime", "rtl"):
        assert main(["eval", "--image", str(noisy), "--samples", "5", "--backend", backend,
                     "--json"]) == 0
        outs[backend] = json.loads(capsys.readouterr().out)
    ort, rtl = outs["onnxruntime"], outs["rtl"]
    assert rtl["backend"] == "rtl" and rtl["predictions"] == ort["predictions"]
    assert rtl["accuracy"] == ort["accuracy"]
    assert rtl["detected"] == ort["detected"] == ort["nulled"] > 0
    assert rtl["cycles_per_inference"] == 851  # docs/datapath.md: 1 + (512+14) + (256+14) + (40+14)


def test_cli_eval_rtl_refuses_an_image_without_program(tmp_path: Path, capsys) -> None:
    from host.cli import main

    image = tmp_path / "plain.bin"
    assert main(["export", str(MODELS / "digits_mlp_int8.onnx"), "-o", str(image)]) == 0
    capsys.readouterr()
    assert main(["eval", "--image", str(image), "--backend", "rtl"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no accelerator layer program" in err and "--lower accel" in err
