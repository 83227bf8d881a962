"""host.activations.criticality: the split-graph and closed-form failure rates against the
whole faulted graph run once per neuron (brute force), neuron for neuron."""

from __future__ import annotations

import json

import numpy as np
import pytest

from host.activations.criticality import CriticalitySettings, FlipStudy, brute_force, run_criticality
from host.activations.faults import ActivationErrors, zero_masks
from host.activations.quantize import insert_fault_points, profile_formats, select_layers
from host.data import DataSpec
from host.errors import FlipLabError
from tests.host.activations.helpers import run, table1_like


@pytest.fixture(scope="module")
def setting():
    """The Table I shape in small; dyadic weights and inputs, so float32 is exact and the
    patch arithmetic cannot round differently from onnxruntime."""
    model = table1_like(seed=4)
    rng = np.random.default_rng(4)
    x = (rng.integers(0, 17, size=(160, 1, 8, 8)) / 16).astype(np.float32)
    formats = profile_formats(model, x, select_layers(model))
    y = run(insert_fault_points(model, formats, masks=False), {"x": x}).argmax(axis=1)
    y[::4] = (y[::4] + 1) % 3  # some samples wrong from the start: they never count
    return model, x, y, formats


@pytest.mark.parametrize("bit", ["msb", 5])
def test_split_and_closed_form_equal_brute_force(setting, bit):
    model, x, y, formats = setting
    study = FlipStudy(model, x, y, formats, bit=bit)
    assert study.correct == int(np.count_nonzero(np.arange(160) % 4))
    methods, skipped, failures = set(), 0, 0
    for fmt in formats:
        result = study.layer(fmt)
        methods.add(result.method.split(" ")[0])
        skipped += result.skipped_pairs
        failures += int(result.failures.sum())
        assert np.array_equal(result.failures, brute_force(model, x, y, formats, fmt.layer,
                                                           bit=bit)), fmt.layer
    assert methods == {"local", "closed", "suffix"}
    assert skipped > 0 and failures > 0  # the comparison covers skips and failures


def test_many_small_suffix_batches_give_the_same_failures(setting, monkeypatch):
    """The queue of flipped rows runs whenever ROWS rows wait: batch edges change nothing."""
    import host.activations.criticality as criticality

    model, x, y, formats = setting
    whole = [FlipStudy(model, x, y, formats).layer(fmt).failures for fmt in formats]
    monkeypatch.setattr(criticality, "ROWS", 7)
    for fmt, expected in zip(formats, whole):
        assert np.array_equal(FlipStudy(model, x, y, formats).layer(fmt).failures, expected)


def test_zero_rate_fails_nothing(setting):
    model, x, y, formats = setting
    faulty = insert_fault_points(model, formats)
    clean = run(faulty, {"x": x, **zero_masks(formats)}).argmax(axis=1)
    masks, flips = ActivationErrors(formats, seed=0, trial=0, rate_max=0.1).masks(0, len(x), 0.0)
    assert flips == 0
    assert np.array_equal(run(faulty, {"x": x, **masks}).argmax(axis=1), clean)


def test_command_writes_per_layer_resumes_and_reports(tmp_path):
    settings = CriticalitySettings(DataSpec("digits", samples=60), layers="conv2,fc")
    summary = run_criticality("digits_cnn", tmp_path / "crit", settings, progress=False)
    files = sorted(p.name for p in (tmp_path / "crit" / "layers").iterdir())
    assert files == ["00_conv2.csv", "01_fc.csv"]
    assert [r["layer"] for r in summary["layers"]] == ["conv2", "fc"]
    assert summary["layers"][0]["neurons"] == 16 * 3 * 3
    for name in ("report.md", "worst.csv", "summary.json", "plots/histogram.png"):
        assert (tmp_path / "crit" / name).is_file()
    stamp = (tmp_path / "crit" / "layers" / "00_conv2.csv").stat().st_mtime_ns
    again = run_criticality("digits_cnn", tmp_path / "crit", settings, progress=False)
    assert (tmp_path / "crit" / "layers" / "00_conv2.csv").stat().st_mtime_ns == stamp
    assert json.dumps(again["worst"]) == json.dumps(summary["worst"])
    with pytest.raises(FlipLabError, match="holds a different study"):
        run_criticality("digits_cnn", tmp_path / "crit",
                        CriticalitySettings(DataSpec("digits", samples=61), layers="fc"),
                        progress=False)


@pytest.mark.parametrize("kw,message", [
    ({"layers": "nope"}, "no layer output named 'nope'"),
    ({"bits": 9}, "activation bits must be an integer from 2 to 8"),
    ({"bit": 8}, "bit 8 is outside the 8-bit code"),
])
def test_bad_input_is_one_line(tmp_path, kw, message):
    settings = CriticalitySettings(DataSpec("digits", samples=20), **kw)
    with pytest.raises(FlipLabError, match=message):
        run_criticality("digits_mlp", tmp_path / "c", settings, progress=False)
