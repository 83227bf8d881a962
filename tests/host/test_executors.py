"""host.executors: the registry by name and agreement between executors on one image."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from host.channels import parse_channel
from host.data import load_dataset
from host.decode import decode_weights
from host.errors import FlipLabError
from host.executors import executor_names, get_executor
from host.export import CodecPlan, build_accel_image
from host.inject import inject
from host.model import load_model
from host.models import resolve_model


def test_registry_names_and_errors():
    assert executor_names()[0] == "onnxruntime"
    assert set(executor_names()) >= {"onnxruntime", "reference", "rtl"}
    for name in executor_names():
        assert get_executor(name).name == name
    with pytest.raises(FlipLabError, match="unknown backend 'gpu'; choose one of onnxruntime"):
        get_executor("gpu")


def test_naming_a_backend_imports_nothing_heavy():
    code = ("import sys, host.executors as e; e.executor_names(); "
            "print(sorted(m for m in ('onnxruntime', 'cocotb', 'onnx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_an_option_a_backend_does_not_take_is_refused():
    with pytest.raises(FlipLabError, match="--strategy does not apply to the reference backend"):
        get_executor("reference").check_options({"strategy": "inputs"})
    get_executor("reference").check_options({"strategy": None})  # not given: fine
    get_executor("onnxruntime").check_options({"strategy": "inputs", "threads": 1})


@pytest.mark.parametrize("channel", ["none", "bsc:0.02"])
def test_reference_and_onnxruntime_agree_on_the_same_image(channel):
    """The int8 model lowered for the accelerator: the integer reference (parity checked in
    'hardware') and onnxruntime (the host decoder's nulling) predict the same classes."""
    ws = load_model(resolve_model("digits_mlp_int8"))
    image, _ = build_accel_image(ws, CodecPlan("parity(int8)"))
    image, _ = inject(image, parse_channel(channel), seed=3)
    x, _ = load_dataset("digits", input_shape=image.model["input_shape"], samples=120)
    variant = decode_weights(image)
    ours = get_executor("onnxruntime").for_image(image).run(variant, x)
    ref = get_executor("reference").for_image(image).run(variant, x)
    assert np.array_equal(ours.logits.argmax(1), ref.logits.argmax(1))
    assert ref.extra["detected"] == variant.total_nulled


def test_reference_refuses_an_image_without_a_program():
    from host.export import build_image
    image, _ = build_image(load_model(resolve_model("digits_mlp")), CodecPlan("parity8"))
    with pytest.raises(FlipLabError, match="layer program"):
        get_executor("reference").for_image(image)


def test_board_backend_needs_a_port_and_refuses_what_the_accelerator_cannot_run(tmp_path):
    """`host eval --backend board` without --board, and an image without a layer program, are
    one-line errors before any serial port is opened (the board executor against the simulated
    FPGA: tests/rtl/accel_session.py)."""
    from host.cli import main
    from host.image import write_image

    image = build_accel_image(load_model(resolve_model("digits_mlp_int8")), CodecPlan("parity(int8)"))[0]
    write_image(image, tmp_path / "w.bin")
    with pytest.raises(FlipLabError, match="board backend needs the board's serial port"):
        get_executor("board").for_image(image)
    assert main(["eval", "--image", str(tmp_path / "w.bin"), "--backend", "board"]) != 0
    no_program = image.with_payload(image.payload)
    no_program.program = None
    with pytest.raises(FlipLabError, match="no accelerator layer program"):
        get_executor("board").for_image(no_program, port="/dev/null")


@pytest.mark.parametrize("strategy", ["session", "inputs"])
def test_a_graph_onnxruntime_refuses_is_one_line_with_either_strategy(strategy):
    # a float16 activation added to a float32 constant: onnxruntime refuses the graph when
    # it builds the first session, which the "session" strategy does per variant
    from onnx import TensorProto, helper, numpy_helper

    from host.executors.ort import OnnxExecutor

    graph = helper.make_model(helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Add", ["h", "b"], ["y"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT16, ["N", 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT16, None)],
        [numpy_helper.from_array(np.ones(2, np.float32), "b")]),
        opset_imports=[helper.make_opsetid("", 17)])
    specs = {"W": ((2, 2), np.dtype(np.float16))}
    with pytest.raises(FlipLabError, match=r"^onnxruntime refused the model: .*Add") as error:
        executor = OnnxExecutor(graph, specs, input_name="x", output_name="y", strategy=strategy)
        executor.logits({"W": np.eye(2, dtype=np.float16)}, np.ones((3, 2), np.float16))
    assert "\n" not in str(error.value)
