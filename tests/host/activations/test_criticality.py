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
    assert files == ["conv2.csv", "fc.csv"]
    assert [r["layer"] for r in summary["layers"]] == ["conv2", "fc"]
    assert summary["layers"][0]["neurons"] == 16 * 3 * 3
    for name in ("report.md", "worst.csv", "summary.json", "plots/histogram.png"):
        assert (tmp_path / "crit" / name).is_file()
    stamp = (tmp_path / "crit" / "layers" / "conv2.csv").stat().st_mtime_ns
    again = run_criticality("digits_cnn", tmp_path / "crit", settings, progress=False)
    assert (tmp_path / "crit" / "layers" / "conv2.csv").stat().st_mtime_ns == stamp
    assert again["correct_samples"] == summary["correct_samples"] > 0
    assert json.dumps(again["worst"]) == json.dumps(summary["worst"])
    with pytest.raises(FlipLabError, match="holds a different study"):
        run_criticality("digits_cnn", tmp_path / "crit",
                        CriticalitySettings(DataSpec("digits", samples=61), layers="fc"),
                        progress=False)


def test_a_wider_selection_reuses_the_finished_layers(tmp_path):
    """Resume keys on the layer's name: a run of fc, then of conv2,fc into the same folder,
    computes conv2 only and gives what one conv2,fc run gives."""
    data = DataSpec("digits", samples=40)
    computed: list[str] = []
    run_criticality("digits_cnn", tmp_path / "c", CriticalitySettings(data, layers="fc"),
                    progress=False)
    fc = tmp_path / "c" / "layers" / "fc.csv"
    stamp = fc.stat().st_mtime_ns
    wider = run_criticality("digits_cnn", tmp_path / "c",
                            CriticalitySettings(data, layers="conv2,fc"), progress=False,
                            on_layer=lambda r: computed.append(r.format.layer))
    assert computed == ["conv2"]
    assert fc.stat().st_mtime_ns == stamp
    fresh = run_criticality("digits_cnn", tmp_path / "fresh",
                            CriticalitySettings(data, layers="conv2,fc"), progress=False)
    def rates(summary):
        return [(r["layer"], r["mean_failure_rate"], r["max_failure_rate"])
                for r in summary["layers"]]

    assert rates(wider) == rates(fresh)
    assert wider["worst"] == fresh["worst"]


def test_a_changed_model_is_refused_not_mixed(tmp_path):
    """Another model into the same folder is refused (criticality.json); and a layer file of
    another study is refused even when criticality.json is gone."""
    import onnx
    from onnx import numpy_helper

    from host.models import resolve_model

    model = onnx.load(str(resolve_model("digits_cnn")))
    w = model.graph.initializer[0]
    w.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(w) * 1.5, w.name))
    other = tmp_path / "other.onnx"
    other.write_bytes(model.SerializeToString())
    settings = CriticalitySettings(DataSpec("digits", samples=30), layers="fc")
    run_criticality("digits_cnn", tmp_path / "c", settings, progress=False)
    before = (tmp_path / "c" / "layers" / "fc.csv").read_bytes()
    with pytest.raises(FlipLabError, match="holds a different study .*model"):
        run_criticality(other, tmp_path / "c", settings, progress=False)
    (tmp_path / "c" / "criticality.json").unlink()
    with pytest.raises(FlipLabError, match="fc.csv holds another study"):
        run_criticality(other, tmp_path / "c", settings, progress=False)
    assert (tmp_path / "c" / "layers" / "fc.csv").read_bytes() == before


def test_layer_files_are_named_by_layer():
    from pathlib import Path

    from host.activations.criticality import layer_file

    assert layer_file(Path("o"), "conv1") == Path("o/layers/conv1.csv")
    a, b = layer_file(Path("o"), "conv/1"), layer_file(Path("o"), "conv_1")
    assert a != b and a.name.startswith("conv_1-")


@pytest.mark.parametrize("kw,message", [
    ({"layers": "nope"}, "no layer output named 'nope'"),
    ({"bits": 9}, "activation bits must be an integer from 2 to 8"),
    ({"bit": 8}, "bit 8 is outside the 8-bit code"),
])
def test_bad_input_is_one_line(tmp_path, kw, message):
    settings = CriticalitySettings(DataSpec("digits", samples=20), **kw)
    with pytest.raises(FlipLabError, match=message):
        run_criticality("digits_mlp", tmp_path / "c", settings, progress=False)
