"""Short names of weight tensors (host.names), worked by hand."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from host.errors import FlipLabError
from host.names import layer_stem, matches, select, short_names


@dataclass
class T:
    name: str
    layer: str
    op_type: str
    role: str


@pytest.mark.parametrize("layer, op_type, stem", [
    ("/rnn/LSTM", "LSTM", "rnn"),
    ("/encoder/layer.0/fc1/Gemm", "Gemm", "encoder.layer.0.fc1"),
    ("node_linear_1", "Gemm", "linear_1"),
    ("Conv_3", "Conv", "Conv_3"),
    ("/Conv", "Conv", "Conv"),
    ("node_", "MatMul", "node_"),
])
def test_layer_stem(layer, op_type, stem):
    assert layer_stem(layer, op_type) == stem


def test_short_names_are_unique_in_graph_order():
    tensors = [T("onnx::MatMul_7", "/fc/MatMul", "MatMul", "weight"),
               T("onnx::MatMul_8", "/fc/MatMul", "MatMul", "weight"),
               T("val_3", "/fc/MatMul", "MatMul", "bias")]
    assert short_names(tensors) == ["fc.weight", "fc.weight_2", "fc.bias"]


def test_patterns_match_name_layer_or_short_name():
    t = T("onnx::LSTM_110", "/rnn/LSTM", "LSTM", "recurrence")
    assert matches(t, "rnn.recurrence", "rnn.*")
    assert matches(t, "rnn.recurrence", "onnx::LSTM_11?")
    assert matches(t, "rnn.recurrence", "/rnn/*")
    assert not matches(t, "rnn.recurrence", "RNN.*")  # case-sensitive, as fnmatchcase
    with pytest.raises(FlipLabError, match="pattern 'fc.*' matches no tensor"):
        select([t], ["fc.*"], "tensor")
