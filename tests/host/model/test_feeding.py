"""Tests of host.model.feeding: putting weights back into the graph."""

from __future__ import annotations

import numpy as np
import pytest

from host.errors import FlipLabError
from host.model import load_model, weight_slots, with_weights_as_initializers, with_weights_as_inputs

from .helpers import _run, _save, float_mlp


def test_reinsertion_refuses_unknown_names_and_wrong_shapes(tmp_path, rng):
    ws = load_model(_save(float_mlp(rng), tmp_path / "mlp.onnx"))
    with pytest.raises(FlipLabError, match="no missing weight called 'nope'"):
        with_weights_as_initializers(ws.graph, {"nope": np.zeros(2, np.float32)})
    with pytest.raises(FlipLabError, match=r"'fc2.bias': got float32\[5\], the graph expects float32\[4\]"):
        with_weights_as_initializers(ws.graph, {"fc2.bias": np.zeros(5, np.float32)})
    with pytest.raises(FlipLabError, match="got float64"):
        with_weights_as_initializers(ws.graph, {"fc2.bias": np.zeros(4, np.float64)})


def test_partial_reinsertion_composes(tmp_path, rng):
    model = float_mlp(rng)
    ws = load_model(_save(model, tmp_path / "mlp.onnx"))
    clean = with_weights_as_initializers(ws.graph, {t.name: t.values for t in ws.tensors if t.layer != "fc2"})
    assert set(weight_slots(clean)) == {"fc2.weight", "fc2.bias"}
    mixed = with_weights_as_inputs(clean, [t for t in ws.tensors if t.layer == "fc2"])
    x = rng.normal(size=(2, 8)).astype(np.float32)
    feeds = {"x": x, "fc2.weight": ws["fc2.weight"].values, "fc2.bias": ws["fc2.bias"].values}
    np.testing.assert_allclose(_run(mixed, feeds), _run(model, {"x": x}), rtol=1e-6)
