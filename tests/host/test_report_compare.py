"""The comparison report of seed 003 (unprotected / clipped / tuned), against hand arithmetic."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from host.cli import main
from host.metrics import auc_gain
from host.report.compare import comparison_table
from host.report.read import Run


def _run(model: str, curve: dict[float, list[float]]) -> Run:
    rows = [{"model": model, "codec": "float32", "scope": "model", "rate": r, "trial": t,
             "accuracy": a} for r, accs in curve.items() for t, a in enumerate(accs)]
    return Run(path=Path("."), results=pd.DataFrame(rows), campaign={"model": model})


def test_auc_gain_is_the_papers_relative_improvement():
    assert auc_gain(2.7332, 1.0) == pytest.approx(1.7332)  # "173.32 % improvement"
    assert auc_gain(0.5, 0.25) == 1.0
    assert auc_gain(0.3, 0.0) != auc_gain(0.3, 0.0)  # NaN


def test_comparison_table_the_papers_18_20_points_and_the_auc_gain():
    # seed 003, AlexNet at 5e-7: 69.36 % clipped vs 51.16 % unprotected -> +18.20 points
    base = _run("alexnet.onnx", {0.0: [0.728], 5e-7: [0.5016, 0.5216], 1e-6: [0.2, 0.2]})
    clip = _run("alexnet_clipped.onnx", {0.0: [0.728], 5e-7: [0.6936, 0.6936], 1e-6: [0.6, 0.6]})
    table = comparison_table([base, clip], at=[5e-7])
    assert table["acc@5e-07"].tolist() == pytest.approx([0.5116, 0.6936])
    assert table["pp@5e-07"].tolist() == pytest.approx([0.0, 18.20])
    # AUC by hand (trapezoid over u = p / p_max = 0, 0.5, 1):
    # base 0.5 * ((0.728 + 0.5116) / 2 + (0.5116 + 0.2) / 2) = 0.48780
    # clip 0.5 * ((0.728 + 0.6936) / 2 + (0.6936 + 0.6) / 2) = 0.67880
    assert table["auc"].tolist() == pytest.approx([0.4878, 0.6788])
    assert table["auc_gain"].iloc[1] == pytest.approx(0.6788 / 0.4878 - 1)


def test_report_compares_campaign_folders(tmp_path, capsys):
    clipped = tmp_path / "clipped.onnx"
    assert main(["clip", "digits_cnn", "--profile-samples", "100", "-o", str(clipped)]) == 0
    for name, model in (("base", "digits_cnn"), ("clip", str(clipped))):
        assert main(["sweep", model, "--codecs", "float32", "--rates", "1e-3,1e-2",
                     "--trials", "2", "--samples", "60", "--out", str(tmp_path / name),
                     "--json"]) == 0
    capsys.readouterr()
    assert main(["report", str(tmp_path / "base"), str(tmp_path / "clip"), "--out",
                 str(tmp_path / "cmp"), "--at", "1e-2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    base, clip = out["variants"]
    assert base["variant"] == "digits_cnn.onnx (float32)" and clip["auc_gain"] == \
        pytest.approx(clip["auc"] / base["auc"] - 1)
    assert clip["pp@0.01"] == pytest.approx(100 * (clip["acc@0.01"] - base["acc@0.01"]))
    text = (tmp_path / "cmp" / "compare.md").read_text()
    assert "AUC gain" in text and "pp)" in text
    assert (tmp_path / "cmp" / "plots" / "compare_boxes.png").stat().st_size > 0
    assert main(["report", str(tmp_path / "base"), str(tmp_path / "clip")]) == 2
    assert "--out" in capsys.readouterr().err
