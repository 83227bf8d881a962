"""A BNN trained with seed 004's recipe (flip operator, BatchNorm folded to integer thresholds)
on the accelerator: ``rtl/accel_top.v`` under cocotb + Icarus equals host/hw bit for bit on a
clean image and on one with the paper's 3.3 % bit errors (``bsc:0.033``).

The model is a small FCNN on the embedded digits (64 → 32 → 32 → 10): the Fashion FCNN's 784
inputs exceed the simulated accelerator's 128-entry activation buffers (docs/datapath.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is the optional train extra (pip install -e .[train])")

from cocotb_harness import require_simulator  # noqa: E402

from host.channels import parse_channel  # noqa: E402
from host.data import load_dataset  # noqa: E402
from host.decode import decode_weights  # noqa: E402
from host.executors.ort import OnnxExecutor  # noqa: E402
from host.export import CodecPlan, build_accel_image  # noqa: E402
from host.hw.program import input_activations, logits, run_program  # noqa: E402
from host.inject import inject  # noqa: E402
from host.model import load_model  # noqa: E402
from host.sim import simulate  # noqa: E402
from host.train.bnn import TrainConfig, to_onnx, train  # noqa: E402

SAMPLES = 5


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    config = TrainConfig(arch="fcnn", epochs=2, width=32, batch=64, lr=1e-2, flip_p=0.1)
    model, _ = train(config, progress=False)
    path = tmp_path_factory.mktemp("bnn") / "bnn.onnx"
    path.write_bytes(to_onnx(model).SerializeToString())
    built, _ = build_accel_image(load_model(path), CodecPlan("sign"))
    return built


def test_reference_equals_onnxruntime_on_all_digits(image) -> None:
    x, _ = load_dataset("digits", input_shape=image.model["input_shape"], normalize="unit")
    ort = OnnxExecutor.for_image(image).logits(decode_weights(image).weights, x)
    run = run_program(image.program, image.payload, input_activations(image.program, x))
    np.testing.assert_array_equal(logits(image.program, run.outputs), ort)


@pytest.mark.parametrize("noisy", [False, True], ids=["clean", "bsc0.033"])
def test_rtl_equals_reference_bit_for_bit(tmp_path: Path, image, noisy: bool) -> None:
    require_simulator()
    if noisy:
        image, report = inject(image, parse_channel("bsc:0.033"), seed=4)
        assert report.flips > 0
    x, _ = load_dataset("digits", input_shape=image.model["input_shape"], normalize="unit",
                        samples=SAMPLES)
    a = input_activations(image.program, x)
    ref = run_program(image.program, image.payload, a)
    result = simulate(image, a, build_dir=tmp_path)
    np.testing.assert_array_equal(result.outputs, ref.outputs)
