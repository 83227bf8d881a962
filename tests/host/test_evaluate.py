"""host.evaluate and host.evaluation: the eval job, top-1 scoring and its refusals."""

from __future__ import annotations

import numpy as np
import pytest

from host.channels import parse_channel
from host.data import DataSpec, check_labels, load_dataset
from host.decode import decode_weights
from host.errors import FlipLabError
from host.evaluate import EvalSettings, evaluate
from host.evaluation import Evaluation, top1
from host.executors.ort import OnnxExecutor
from host.export import CodecPlan, build_image
from host.image import write_image
from host.inject import inject
from host.model import load_model
from host.models import resolve_model


@pytest.fixture(scope="module")
def image_file(tmp_path_factory):
    image, _ = build_image(load_model(resolve_model("digits_mlp")), CodecPlan("parity8"))
    path = tmp_path_factory.mktemp("eval") / "w.bin"
    write_image(image, path)
    return image, path


def test_top1_and_a_hand_worked_evaluation():
    logits = np.array([[0.1, 0.9, 0.0], [2.0, 2.0, 1.0], [0.0, 0.0, 3.0], [5.0, 1.0, 1.0]])
    assert top1(logits).tolist() == [1, 0, 2, 0]  # ties: the first index
    image, _ = build_image(load_model(resolve_model("digits_mlp")), CodecPlan("parity8"))
    variant = decode_weights(image)
    ev = Evaluation.of(logits, np.array([1, 1, 2, 2]), variant, flips=3)
    assert (ev.correct, ev.samples, ev.accuracy, ev.flips) == (2, 4, 0.5, 3)
    assert ev.failures(np.array([True, True, False, True])) == 2
    assert ev.to_json()["predictions"] == [1, 0, 2, 0]


def test_labels_outside_the_model_classes_are_refused():
    check_labels(np.array([0, 9]), 10, "d")
    with pytest.raises(FlipLabError, match="d: label 10 of sample 1 is outside the model's 10 "):
        check_labels(np.array([0, 10]), 10, "d")
    with pytest.raises(FlipLabError, match="label -1 of sample 0 is outside"):
        check_labels(np.array([-1, 3]), 10, "d")
    image, _ = build_image(load_model(resolve_model("digits_mlp")), CodecPlan("parity8"))
    with pytest.raises(FlipLabError, match="labels: label 12 of sample 2"):
        Evaluation.of(np.zeros((3, 10)), np.array([1, 2, 12]), decode_weights(image))


def test_eval_with_a_channel_is_inject_then_decode_then_run(image_file):
    image, path = image_file
    settings = EvalSettings(path, data=DataSpec(samples=100), channel="bsc:0.01", seed=4,
                            trial=2)
    ev = evaluate(settings)
    noisy, report = inject(image, parse_channel("bsc:0.01"), seed=4, trial=2)
    x, y = load_dataset("digits", input_shape=image.model["input_shape"], samples=100)
    logits = OnnxExecutor.for_image(image).logits(decode_weights(noisy).weights, x)
    assert np.array_equal(ev.predictions, logits.argmax(1))
    assert ev.flips == report.flips > 0
    assert ev.nulled == decode_weights(noisy).nulled


def test_eval_refuses_options_and_images_before_any_slow_work(image_file):
    _, path = image_file
    with pytest.raises(FlipLabError, match="--strategy does not apply to the reference"):
        evaluate(EvalSettings(path, backend="reference", options={"strategy": "inputs"}))
    with pytest.raises(FlipLabError, match="layer program"):
        evaluate(EvalSettings(path, backend="reference"))
    with pytest.raises(FlipLabError, match="unknown backend"):
        evaluate(EvalSettings(path, backend="fpga"))
    with pytest.raises(FlipLabError, match="unknown channel"):
        evaluate(EvalSettings(path, channel="gauss:1"))
