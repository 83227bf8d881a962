"""host relevance / host rescale (seed 002) on the command line: output, refusals."""

from __future__ import annotations

import json
import shutil
import sys

import pytest

from host.cli import main
from host.models import resolve_model


def test_relevance_json_and_table(capsys):
    assert main(["relevance", "digits_cnn", "--samples", "30", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["samples"] == 30 and [la["layer"] for la in out["layers"]][-1] == "fc"
    assert len(out["layers"][0]["rho"]) == len(out["layers"][0]["eta"]) == 8
    assert main(["relevance", "digits_mlp_int8", "--samples", "10"]) == 0
    text = capsys.readouterr().out
    assert "eta (eq. 5)" in text and "(1/L)·Σ SD(eta / mean eta)" in text


@pytest.mark.parametrize("argv, word", [
    (["relevance", "digits_bnn", "--samples", "5"], "does not support op"),
    (["relevance", "digits_cnn", "--data", "{t}/none.npz"], "none.npz"),
    (["rescale", "{t}/m.onnx", "-o", "{t}/m.onnx"], "is the input"),
    (["rescale", "digits_cnn", "--codec", "nope8", "-o", "{t}/r.onnx"], "nope8"),
])
def test_bad_inputs_are_one_line_errors(tmp_path, capsys, argv, word):
    shutil.copy(resolve_model("digits_cnn"), tmp_path / "m.onnx")
    before = (tmp_path / "m.onnx").read_bytes()
    assert main([a.format(t=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("host: error:") and "\n" not in err and word in err
    assert (tmp_path / "m.onnx").read_bytes() == before
    assert not (tmp_path / "r.onnx").exists()


def test_rescale_without_the_train_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    monkeypatch.delitem(sys.modules, "host.train.rescale", raising=False)
    assert main(["rescale", "digits_cnn", "-o", str(tmp_path / "r.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert "needs the train extra (pip install 'fliplab[train]')" in err and "\n" not in err
