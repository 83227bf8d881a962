"""The seed-004 reproduction scripts (bench/repro_bnn_fashion.py, bench/repro_bnn_table.py):
grid cells, model names and the tables' means and standard errors, against hand-worked values."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fashion = _load("repro_bnn_fashion")
table = _load("repro_bnn_table")


def test_cell_b_defaults_and_names_carry_b_only_with_the_hinge():
    assert fashion.parse_cell("0.1:0", "64") == ("0.1", "0", "64")
    assert fashion.parse_cell("0.1:0.001:128", "64") == ("0.1", "0.001", "128")
    assert fashion.cell_name("fcnn", "0.1", "0", "64", "ste") == "fcnn_p0.1_lam0"
    assert fashion.cell_name("cnn", "0", "0.001", "32", "naive") == "cnn_p0_lam0.001_b32_naive"
    with pytest.raises(SystemExit):
        fashion.parse_cell("0.1", "64")
    with pytest.raises(SystemExit):
        fashion.parse_cell("0.1:0:64:1", "64")


def test_mean_and_standard_error_by_hand():
    # 0.5, 0.7, 0.9: mean 0.7, sample variance ((0.2)^2 * 2) / 2 = 0.04, se = 0.2 / sqrt(3)
    mean, se = table.mean_se([0.5, 0.7, 0.9])
    assert mean == pytest.approx(0.7)
    assert se == pytest.approx(0.2 / math.sqrt(3))
    assert table.mean_se([0.8]) == (0.8, 0.0)


def test_table_reads_a_folder_and_writes_the_csv(tmp_path):
    cell = {"arch": "fcnn", "p": 0.1, "lambda": 0.001, "b": 32.0, "gradient": "ste", "width": 8,
            "channels": None, "epochs": 1, "T_b": {"1": 0.9, "4": 0.5},
            "history": [{"epoch": 1, "loss": 1.0, "train_accuracy": 0.5}]}
    (tmp_path / "summary.json").write_text(json.dumps({"m": cell}))
    for folder, rows in (("m_sweep", [(0.0, 0.8), (0.1, 0.6), (0.1, 0.4)]),
                         ("m_rram", [(0.033, 0.7), (0.033, 0.7)])):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "results.jsonl").write_text(
            "\n".join(json.dumps({"rate": r, "accuracy": a}) for r, a in rows) + "\n")
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "repro_bnn_table.py"), str(tmp_path),
                          "--csv", str(tmp_path / "t.csv")], check=True, capture_output=True,
                         text=True).stdout
    assert "| FCNN p = 0.1, λ = 0.001, b = 32 | 2 | 0.8000 | 0.5000 | 0.7000 |" in out
    rows = (tmp_path / "t.csv").read_text().splitlines()
    assert len(rows) == 1 + 3                      # header, bsc 0 and 0.1, rram-ulp 0.033
    assert rows[2].split(",")[9:14] == ["bsc", "0.1", "0.500000", "0.100000", "2"]


def test_training_history_from_the_log_else_the_checkpoint(tmp_path):
    torch = pytest.importorskip("torch", reason="torch is the optional train extra")
    history = [{"epoch": 1, "loss": 0.5, "train_accuracy": 0.75}]
    ckpt = tmp_path / "m.onnx.ckpt"
    torch.save({"history": history, "epoch": 1}, ckpt)
    assert fashion.training_history(tmp_path / "missing.json", ckpt) == history
    log = tmp_path / "m_train.json"
    log.write_text(json.dumps({"history": [{"epoch": 2, "loss": 0.1, "train_accuracy": 0.9}]}))
    assert fashion.training_history(log, ckpt)[0]["epoch"] == 2
    assert fashion.training_history(tmp_path / "no.json", tmp_path / "no.ckpt") is None
