"""``host sweep --target activations|both``: each row equals the faulted graph run separately
with the masks of host.activations.faults (seed, trial), and bad input is one line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from host.activations.faults import ActivationErrors, zero_masks
from host.activations.quantize import insert_fault_points, profile_formats, select_layers
from host.campaign import read_rows, run_sweep
from host.campaign.store import LEGACY_ROW_KEYS, RESULTS, read_results
from host.data import load_dataset
from host.errors import FlipLabError
from host.export import CodecPlan, build_image
from host.model import load_model, with_weights_as_initializers
from host.models import resolve_model

from .helpers import SAMPLES, small_spec

RATES = "1e-3,1e-2"


@pytest.fixture(scope="module")
def activation_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("act") / "run"
    spec = small_spec("digits_cnn", codecs="fixed8", rates=RATES, target="activations")
    run_sweep(spec, out, progress=False)
    return spec, out


def _separately(spec, rate, trial):
    """Accuracy and activation flips of one row, through the pass and the masks alone."""
    right, flips = _predictions(spec, rate, trial)
    return float(np.mean(right)), flips


def _predictions(spec, rate, trial, bits=8):
    """The right-answer mask and activation flips of one row, through the pass and the masks
    alone."""
    import onnxruntime as ort

    ws = load_model(resolve_model("digits_cnn"))
    image, _ = build_image(ws, CodecPlan("fixed8"))
    from host.decode import decode_weights

    x, y = load_dataset("digits", input_shape=ws.input_shape, samples=SAMPLES)
    full = with_weights_as_initializers(ws.graph, {t.name: t.values for t in ws.tensors})
    formats = profile_formats(full, x, select_layers(full), bits=bits)
    stored = with_weights_as_initializers(ws.graph, decode_weights(image).weights)
    from host.executors.ort import DISABLED_OPTIMIZERS

    session = ort.InferenceSession(insert_fault_points(stored, formats).SerializeToString(),
                                   providers=["CPUExecutionProvider"],
                                   disabled_optimizers=DISABLED_OPTIMIZERS)
    if rate > 0:
        errors = ActivationErrors(formats, seed=spec.seed, trial=trial, rate_max=0.01)
        masks, flips = errors.masks(0, len(x), rate)
    else:
        masks, flips = zero_masks(formats, len(x)), 0
    out = session.run(None, {ws.input_name: x, **masks})[0]
    return out.argmax(axis=1) == y, flips


def test_rows_equal_the_faulted_graph_run_alone(activation_run):
    spec, out = activation_run
    rows = read_rows(out)
    assert {r["target"] for r in rows} == {"activations"}
    assert all(r["flips"] == 0 for r in rows)  # no weight errors
    for r in rows:
        if r["trial"] == 1 or r["rate"] == 0.0:
            accuracy, flips = _separately(spec, r["rate"], r["trial"])
            assert r["accuracy"] == accuracy and r["act_flips"] == flips, r
    assert json.loads((out / "campaign.json").read_text())["grid"]["target"] == "activations"


def test_failures_count_against_the_fault_free_quantised_network(tmp_path):
    """Seed 002's failure: a right answer of the fault-free quantised network turned wrong.
    With 3-bit activations the float and the quantised model disagree on some samples; the
    clean row then has no failure, every row's failures are (quantised right and row wrong),
    and the failure rate's denominator is the quantised network's correct count."""
    from host.campaign.sweep import reference_run
    from host.metrics import summarise
    from host.report.read import read_run
    from host.report.write import write_report

    spec = small_spec("digits_cnn", codecs="fixed8", rates="3e-3", trials=2,
                      target="activations", act_bits=3)
    run_sweep(spec, tmp_path / "run", progress=False)
    _, float_right = reference_run(spec)
    quantised_right, _ = _predictions(spec, 0.0, 0, bits=3)
    assert np.any(float_right & ~quantised_right)  # the two references differ
    rows = read_rows(tmp_path / "run")
    for r in rows:
        right, _ = _predictions(spec, r["rate"], r["trial"], bits=3)
        assert r["correct"] == right.sum()
        assert r["failures"] == np.count_nonzero(quantised_right & ~right), r
    [clean] = [r for r in rows if r["rate"] == 0]
    assert clean["failures"] == 0 < np.count_nonzero(float_right & ~quantised_right)
    doc = json.loads((tmp_path / "run" / "campaign.json").read_text())["reference"]
    assert doc["quantised"]["fixed8"] == {"accuracy": float(quantised_right.mean()),
                                          "correct": int(quantised_right.sum()),
                                          "samples": SAMPLES}
    assert doc["correct"] == int(float_right.sum())
    noisy = [r for r in rows if r["rate"] > 0]
    run = read_run(tmp_path / "run")
    assert run.reference_correct == {"fixed8": int(quantised_right.sum())}
    table = summarise(run.results, reference_correct=run.reference_correct)
    [rate] = table.loc[table["rate"] == 3e-3, "failure_rate"]
    assert rate == pytest.approx(np.mean([r["failures"] for r in noisy])
                                 / quantised_right.sum())
    text = write_report(run).read_text()
    assert f"`fixed8` {100 * quantised_right.mean():.2f} % ({quantised_right.sum()} correct)" in text

    # a damaged record of the quantised network: the report says what it can, no traceback
    campaign = json.loads((tmp_path / "run" / "campaign.json").read_text())
    campaign["reference"]["quantised"]["fixed8"] = {"accuracy": "x", "correct": None}
    (tmp_path / "run" / "campaign.json").write_text(json.dumps(campaign))
    damaged = read_run(tmp_path / "run")
    assert damaged.reference_correct == int(float_right.sum())  # falls back to the float model
    assert "`fixed8` —" in write_report(damaged).read_text()


def test_both_corrupts_weights_and_activations(tmp_path):
    spec = small_spec("digits_cnn", codecs="fixed8", rates="1e-2", trials=1, target="both")
    run_sweep(spec, tmp_path / "run", progress=False)
    [_, noisy] = read_rows(tmp_path / "run")
    assert noisy["target"] == "both" and noisy["flips"] > 0 and noisy["act_flips"] > 0
    _, act_flips = _separately(spec, 1e-2, 0)
    assert noisy["act_flips"] == act_flips  # activation errors do not depend on the weights'


def test_rows_written_before_targets_read_as_weights(tmp_path):
    legacy = {k: 0 for k in LEGACY_ROW_KEYS}
    (tmp_path / RESULTS).write_text(json.dumps(legacy) + "\n")
    [row] = read_results(tmp_path / RESULTS, exact=True).rows
    assert row["target"] == "weights" and row["act_flips"] == 0


@pytest.mark.parametrize("kw,message", [
    ({"target": "neurons"}, "unknown target 'neurons'"),
    ({"target": "activations", "channel": "asym:0.01,0.001"}, "take --channel bsc only"),
    ({"target": "activations", "backend": "reference"}, "onnxruntime backend only"),
    ({"target": "activations", "act_bits": 9}, "activation bits must be an integer from 2"),
    ({"target": "both", "act_layers": "conv9"}, "no layer output named 'conv9'"),
    ({"target": "activations", "scopes": ["layers"]}, "takes no --scope"),
])
def test_bad_input_is_one_line(kw, message):
    with pytest.raises(FlipLabError, match=message):
        small_spec("digits_cnn", codecs="fixed8", **kw)
