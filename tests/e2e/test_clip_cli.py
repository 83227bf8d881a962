"""``host clip`` and ``host inspect`` on a clipped model, through main() (in process)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort

from host.cli import main
from host.data import load_dataset
from host.mitigation.clip import read_metadata


def _json(capsys, *argv) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_clip_profiles_clips_and_inspect_shows_it(tmp_path, capsys):
    out = tmp_path / "clipped.onnx"
    result = _json(capsys, "clip", "digits_cnn", "--profile-samples", "100", "-o", str(out))
    assert [r["layer"] for r in result["layers"]] == ["conv1", "conv2"]
    assert all(r["t"] == r["act_max"] > 0 for r in result["layers"])
    info = _json(capsys, "inspect", str(out))
    assert [(r["layer"], r["t"]) for r in info["relu_layers"]] == \
        [(r["layer"], r["t"]) for r in result["layers"]]
    assert info["profile"]["samples"] == 100
    # the image of the clipped model carries the graph, so its inspect shows the clip too
    img = tmp_path / "clipped.img"
    assert main(["export", str(out), "--codec", "float32", "-o", str(img)]) == 0
    capsys.readouterr()
    assert _json(capsys, "inspect", str(img))["clip"]["relu_layers"] == info["relu_layers"]
    # the prediction of every profiled sample is unchanged
    x, _ = load_dataset("digits", input_shape=["N", 1, 8, 8], samples=100)
    from host.models import resolve_model

    a = ort.InferenceSession(str(resolve_model("digits_cnn"))).run(None, {"input": x})[0]
    b = ort.InferenceSession(str(out)).run(None, {"input": x})[0]
    np.testing.assert_array_equal(a.argmax(1), b.argmax(1))


def test_clip_refuses_its_input_as_output_and_a_clipped_input(tmp_path, capsys):
    out = tmp_path / "c.onnx"
    assert main(["clip", "digits_cnn", "--profile-samples", "50", "-o", str(out)]) == 0
    before = out.read_bytes()
    assert main(["clip", str(out), "-o", str(out)]) == 2
    assert "is the input model" in capsys.readouterr().err
    assert out.read_bytes() == before
    assert main(["clip", str(out), "-o", str(tmp_path / "d.onnx")]) == 2
    assert "already clipped" in capsys.readouterr().err
    assert main(["clip", "digits_cnn", "--layers", "fc", "-o", str(tmp_path / "e.onnx")]) == 2
    assert "no ReLU-activated layer named 'fc'" in capsys.readouterr().err
    assert not (tmp_path / "e.onnx").exists()
    assert main(["clip", "digits_cnn", "--tune", "--rates", "1e-3,1e-2", "--trials", "1",
                 "--profile-samples", "50", "--results", str(tmp_path / "no" / "p.jsonl"),
                 "-o", str(tmp_path / "f.onnx")]) == 2
    assert "cannot write the probes file" in capsys.readouterr().err
    assert not (tmp_path / "f.onnx").exists()


def test_tune_records_every_probe_and_resumes_without_reevaluating(tmp_path, capsys):
    out, probes = tmp_path / "tuned.onnx", tmp_path / "probes.jsonl"
    argv = ["clip", "digits_cnn", "--profile-samples", "120", "--tune", "--rates",
            "1e-3:1e-2:3", "--trials", "2", "--n", "3", "--m", "2", "--layers", "conv2",
            "--results", str(probes), "-o", str(out)]
    first = _json(capsys, *argv)
    (layer,) = first["layers"]
    lines = probes.read_text().splitlines()
    header, rows = json.loads(lines[0]), [json.loads(x) for x in lines[1:]]
    # Algorithm 1 with N = 3: two rounds, 4 + 2 probes, plus the unclipped reference (T = inf)
    assert layer["evaluations"] == 6 and len(rows) == 7
    assert header["trials"] == 2 and all(r["trials"] == 2 for r in rows)
    assert {r["t"] for r in rows} >= {0.0, layer["act_max"], layer["t"]}
    assert all(set(r["curve"]) == {"0.0", *map(repr, header["rates"])} for r in rows)
    tuned = onnx.load(str(out))
    assert read_metadata(tuned)["thresholds"] == {"conv2": layer["t"]}
    # the rerun reads every probe back: same answer, no new line
    out.unlink()
    assert _json(capsys, *argv)["layers"] == first["layers"]
    assert probes.read_text().splitlines() == lines
    # another search into the same probes file is refused
    argv[argv.index("--trials") + 1] = "3"
    assert main(argv) == 2
    assert "holds another search" in capsys.readouterr().err
