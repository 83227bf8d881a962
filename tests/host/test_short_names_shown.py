"""Short layer names (host.names) where users read tensors and layers: ``host diff`` and the
campaign report, equal to what ``host inspect`` shows (two paths agree), on a model whose
exporter names are opaque (torch's legacy exporter: ``onnx::LSTM_...``, ``/rnn/LSTM``)."""

from __future__ import annotations

import json
from pathlib import Path

from host.cli import main
from host.report.read import layer_short_names

MODELS = Path(__file__).resolve().parents[1] / "models"


def _json(capsys, *argv) -> dict:
    assert main([*map(str, argv), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_diff_shows_the_short_names_inspect_shows(tmp_path, capsys):
    img, noisy = tmp_path / "lstm.bin", tmp_path / "noisy.bin"
    _json(capsys, "export", MODELS / "lstm_legacy.onnx", "--codec", "float32", "-o", img)
    _json(capsys, "inject", img, "--channel", "bsc:0.01", "-o", noisy)
    shown = {t["name"]: t["short"] for t in _json(capsys, "inspect", img)["tensors"]}
    assert any(name != short for name, short in shown.items())  # opaque names were renamed
    diff = _json(capsys, "diff", img, noisy)
    assert {t["tensor"]: t["short"] for t in diff["tensors"]} == shown
    assert main(["diff", str(img), str(noisy)]) == 0
    table = capsys.readouterr().out
    assert "short name" in table and all(short in table for short in shown.values())


def test_report_shows_each_swept_layers_short_name(tmp_path, capsys):
    model = MODELS / "cnn_legacy.onnx"
    out = tmp_path / "run"
    _json(capsys, "sweep", model, "--codecs", "float32", "--rates", "1e-2", "--trials", "1",
          "--samples", "20", "--scope", "layers", "--out", out)
    inspect = _json(capsys, "inspect", _export(tmp_path, model, capsys))
    short_of_layer = {t["layer"]: t["short"].rsplit(".", 1)[0] for t in inspect["tensors"]}
    camp = json.loads((out / "campaign.json").read_text())
    layers = [s[len("layer:"):] for s in camp["grid"]["scopes"]]
    assert layer_short_names(layers, str(model)) == {x: short_of_layer[x] for x in layers}
    report = _json(capsys, "report", out)["report"]
    text = Path(report).read_text()
    for layer in layers:
        assert f"layer:{short_of_layer[layer]}" in text


def _export(tmp_path, model, capsys) -> Path:
    img = tmp_path / "m.bin"
    _json(capsys, "export", model, "--codec", "float32", "-o", img)
    return img


def test_short_names_without_the_model_are_the_stems_made_unique():
    assert layer_short_names(["node_conv2d", "/fc/Gemm", "node_conv2d_x"], None) == \
        {"node_conv2d": "conv2d", "/fc/Gemm": "fc.Gemm", "node_conv2d_x": "conv2d_x"}
    assert layer_short_names(["/a/b", "a.b"], None) == {"/a/b": "a.b", "a.b": "a.b_2"}
