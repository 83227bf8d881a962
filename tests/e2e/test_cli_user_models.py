"""`host export` / `eval` / `inspect` on models as users export them (tests/models), in process."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from host.cli import main

FOLDER = Path(__file__).resolve().parents[1] / "models"
EXPECTED = json.loads((FOLDER / "expected.json").read_text())


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_token_model_exported_with_its_normalisation_evaluates_without_options(tmp_path, capsys):
    image = tmp_path / "emb.img"
    code, _, err = run(capsys, "export", FOLDER / "embedding_legacy.onnx", "--codec", "float32",
                       "--normalize", "none", "-o", image)
    assert code == 0, err
    code, out, err = run(capsys, "eval", "--image", image, "--samples", 100, "--json")
    assert code == 0, err
    assert json.loads(out)["accuracy"] == pytest.approx(EXPECTED["embedding_legacy"]["accuracy"])
    code, out, _ = run(capsys, "inspect", image)
    assert "input normalisation none" in out and "emb.embedding" in out


def test_eval_warns_when_the_clean_image_scores_near_chance(tmp_path, capsys):
    """Blank images with balanced labels: every sample gets the same logits, so exactly one
    class in ten is right (0.1, chance)."""
    image, blank = tmp_path / "mlp.img", tmp_path / "blank.npz"
    np.savez(blank, x_test=np.zeros((100, 8, 8), np.uint8), y_test=np.arange(100) % 10)
    assert run(capsys, "export", FOLDER / "mlp_legacy.onnx", "--codec", "float32", "-o", image)[0] == 0
    code, out, err = run(capsys, "eval", "--image", image, "--data", blank, "--json")
    assert code == 0 and json.loads(out)["accuracy"] == 0.1
    [line] = err.strip().splitlines()
    assert line.startswith("host: warning: the clean image scores 0.1000, near chance (0.10)")
    code, out, err = run(capsys, "eval", "--image", image, "--json")
    assert json.loads(out)["accuracy"] > 0.9 and err == ""


def test_parity_on_int32_biases_is_one_line_naming_the_tensor_and_the_fix(tmp_path, capsys):
    code, out, err = run(capsys, "export", FOLDER / "cnn_qdq.onnx", "--codec", "parity(int8)",
                         "-o", tmp_path / "q.img")
    assert code == 2 and out == "" and not (tmp_path / "q.img").exists()
    [line] = err.strip().splitlines()
    assert line.startswith("host: error: tensor 'conv1.bias_quantized' (bias of '/conv1/Conv')")
    assert "--override 'conv1.bias_quantized=int32'" in line


def test_export_data_check_reports_the_clean_loss(tmp_path, capsys):
    code, out, err = run(capsys, "export", FOLDER / "mlp_legacy.onnx", "--codec", "int2",
                         "--data", "digits", "--samples", 100, "-o", tmp_path / "m.img", "--json")
    assert code == 0
    check = json.loads(out)["clean_check"]
    assert check["model_accuracy"] - check["accuracy"] > 0.01
    assert "--range channel scores" in err
