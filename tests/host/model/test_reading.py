"""Tests of host.model.reading: files that are not ONNX, missing paths, external data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from host.errors import FlipLabError
from host.model import load_model

from .helpers import _one_line, float_cnn


def test_external_data_inside_the_folder_loads(tmp_path, rng):
    model = float_cnn(rng)
    original = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    (tmp_path / "data").mkdir()
    onnx.save(model, str(tmp_path / "ext.onnx"), save_as_external_data=True,
              all_tensors_to_one_file=True, location="data/weights.bin", size_threshold=0)
    assert (tmp_path / "data" / "weights.bin").stat().st_size > 4 * 144
    ws = load_model(tmp_path / "ext.onnx")
    assert len(ws.tensors) == 4
    for tensor in ws.tensors:
        np.testing.assert_array_equal(tensor.values, original[tensor.name])


@pytest.mark.parametrize("content", [b"", np.random.default_rng(7).bytes(256), b"this is a text file, not a model\n"],
                         ids=["empty", "random", "text"])
def test_refuses_files_that_are_not_onnx(tmp_path, content):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(FlipLabError) as error:
        load_model(path)
    assert "not an ONNX model" in _one_line(error) or "empty" in _one_line(error)


def test_refuses_missing_path_and_directory(tmp_path):
    with pytest.raises(FlipLabError, match="not found"):
        load_model(tmp_path / "nope.onnx")
    with pytest.raises(FlipLabError, match="not a file"):
        load_model(tmp_path)


# ----------------------------------------------------------------------------- refusals

def _external(model, tmp_path: Path, location: str) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    onnx.save(model, str(folder / "m.onnx"), save_as_external_data=True,
              all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)
    loaded = onnx.load(str(folder / "m.onnx"), load_external_data=False)
    for tensor in loaded.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    onnx.save(loaded, str(folder / "m.onnx"))
    return folder / "m.onnx"


@pytest.mark.parametrize("where", ["parent", "absolute"])
def test_refuses_external_data_outside_the_folder(tmp_path, rng, where):
    outside = tmp_path / "weights.bin"
    outside.write_bytes(b"\0" * 4096)
    location = "../weights.bin" if where == "parent" else str(outside)
    path = _external(float_cnn(rng), tmp_path, location)
    with pytest.raises(FlipLabError, match="leaves the model's folder") as error:
        load_model(path)
    _one_line(error)


def test_refuses_missing_external_data_file(tmp_path, rng):
    path = _external(float_cnn(rng), tmp_path, "weights.bin")
    (path.parent / "weights.bin").unlink()
    with pytest.raises(FlipLabError, match="external data file 'weights.bin' not found"):
        load_model(path)
