"""``host sweep A,B`` (host.campaign.models): one campaign per model, then the comparison.

Independent truth: each model's folder holds exactly the rows a one-model ``host sweep`` of
that model writes (two paths agree), and ``host report OUT`` gives the comparison table that
``host report A B --out`` gives."""

from __future__ import annotations

import contextlib
import io
import json

import pandas as pd
import pytest

from host.campaign import read_rows
from host.campaign.models import MODELS_FILE, split_models
from host.cli import main
from host.errors import FlipLabError

GRID = ["--codecs", "float32", "--rates", "1e-3,1e-2", "--trials", "2", "--samples", "30"]
KEY = ["codec", "scope", "rate", "trial"]


def rows(folder) -> pd.DataFrame:
    return pd.DataFrame(read_rows(folder)).drop(columns="elapsed_s").sort_values(KEY) \
        .reset_index(drop=True)


def _json(capsys, *argv) -> dict:
    assert main([*map(str, argv), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """digits_cnn and its clipped copy, swept together into ``both`` (the JSON printed)."""
    tmp = tmp_path_factory.mktemp("models")
    clipped = tmp / "clipped.onnx"
    assert main(["clip", "digits_cnn", "--profile-samples", "100", "-o", str(clipped),
                 "--json"]) == 0
    out = tmp / "both"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["sweep", f"digits_cnn,{clipped}", *GRID, "--out", str(out), "--json"]) == 0
    return tmp, clipped, out, json.loads(buf.getvalue())


def test_sweep_of_two_models_equals_two_one_model_sweeps_and_compares_them(swept, capsys):
    tmp, clipped, out, res = swept
    assert [c["folder"] for c in res["campaigns"]] == [str(out / "digits_cnn"),
                                                       str(out / "clipped")]
    assert [v["variant"] for v in res["variants"]] == ["digits_cnn.onnx (float32)",
                                                       "clipped.onnx (float32)"]
    assert json.loads((out / MODELS_FILE).read_text())["models"][1]["folder"] == "clipped"
    for model, folder in (("digits_cnn", "digits_cnn"), (str(clipped), "clipped")):
        single = tmp / f"single_{folder}"
        _json(capsys, "sweep", model, *GRID, "--out", single)
        pd.testing.assert_frame_equal(rows(out / folder), rows(single))
    # host report OUT: the comparison of its campaigns, as host report A B --out gives it
    again = _json(capsys, "report", out)
    pair = _json(capsys, "report", tmp / "single_digits_cnn", tmp / "single_clipped", "--out",
                 tmp / "cmp")
    assert [v["auc"] for v in again["variants"]] == [v["auc"] for v in pair["variants"]]
    assert "AUC gain" in (out / "compare.md").read_text()
    # resumed: nothing is run again
    res2 = _json(capsys, "sweep", f"digits_cnn,{clipped}", *GRID, "--out", out)
    assert [c["units_run"] for c in res2["campaigns"]] == [0, 0]


def test_bad_model_lists_and_folders_are_refused(swept, capsys):
    tmp, clipped, both, _ = swept
    for text, message in ((f"digits_cnn,,{clipped}", "has an empty entry"),
                          ("digits_cnn,digits_cnn", "'digits_cnn' is named twice"),
                          ("digits_cnn,nope.onnx", "model nope.onnx does not exist")):
        assert main(["sweep", text, *GRID, "--out", str(tmp / "bad")]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp / "bad").exists()  # every model is checked before anything is written
    one = tmp / "one"
    _json(capsys, "sweep", "digits_cnn", *GRID, "--out", one)
    assert main(["sweep", f"digits_cnn,{clipped}", *GRID, "--out", str(one)]) == 2
    assert "holds a one-model campaign" in capsys.readouterr().err
    assert main(["sweep", f"{clipped},digits_cnn", *GRID, "--out", str(both)]) == 2
    assert "holds a sweep of other models" in capsys.readouterr().err


def test_split_models_keeps_an_existing_path_whole(tmp_path):
    odd = tmp_path / "a,b.onnx"
    odd.write_bytes(b"")
    assert split_models(str(odd)) == [str(odd)]
    assert split_models("a, b") == ["a", "b"]
    with pytest.raises(FlipLabError, match="empty entry"):
        split_models("a,")
