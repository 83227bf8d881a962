"""Algorithm 1 with torch fine-tuning (seed 002): conversion, write-back, resumable log."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")

from host.errors import FlipLabError  # noqa: E402
from host.mitigation.relevance import read_chain  # noqa: E402
from host.train.rescale import (  # noqa: E402
    RescaleConfig,
    accuracy,
    algorithm1,
    fine_tune,
    to_torch,
    write_back,
)
from host.train.table1 import table1_model  # noqa: E402
from tests.host.mitigation.toy_nets import chain_model, run  # noqa: E402


def _net(rng):
    return chain_model(["N", 1, 8, 8], [
        ("conv", rng.normal(size=(3, 1, 3, 3)), rng.normal(size=3), 1), ("relu",),
        ("maxpool", 2), ("conv", rng.normal(size=(4, 3, 3, 3)), None, 1), ("relu",),
        ("avgpool", 2), ("flatten",), ("matmul", rng.normal(size=(16, 3)), rng.normal(size=3))])


def _data(rng, n=48):
    x = rng.uniform(0, 1, size=(n, 1, 8, 8)).astype(np.float32)
    return x, (x[:, 0, :4].mean(axis=(1, 2)) * 3).astype(np.int64).clip(0, 2)


def test_torch_conversion_agrees_with_onnxruntime_and_writes_back_unchanged():
    import torch

    rng = np.random.default_rng(0)
    model = _net(rng)
    x, _ = _data(rng, 5)
    chain = read_chain(model)
    module = to_torch(chain)
    with torch.no_grad():
        np.testing.assert_allclose(module(torch.from_numpy(x)).numpy(), run(model, x),
                                   rtol=1e-5, atol=1e-5)
    again = write_back(model, chain, module)
    for a, b in zip(model.graph.initializer, again.graph.initializer):
        assert a.SerializeToString() == b.SerializeToString()


def test_fine_tune_lowers_the_loss():
    rng = np.random.default_rng(1)
    model = _net(rng)
    x, y = _data(rng)
    before = accuracy(model, x, y)
    tuned, _ = fine_tune(model, x, y, epochs=8, lr=1e-2, batch=16, seed=0)
    assert accuracy(tuned, x, y) > before


def test_algorithm1_logs_each_iteration_and_resumes(tmp_path):
    rng = np.random.default_rng(2)
    model = _net(rng)
    train, test = _data(rng), _data(rng, 16)
    config = RescaleConfig(iterations=2, epochs=1, lr=1e-3, batch=16, lrp_samples=16)
    final, records = algorithm1(model, train, test, config, tmp_path / "log")
    assert [r["iteration"] for r in records] == ["original", 0, 1]
    assert "fine_tune_loss" in records[1] and "fine_tune_loss" not in records[2]
    lines = (tmp_path / "log" / "iterations.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == records
    # a rerun finds every iteration done: same records, same model, no work
    again, records_again = algorithm1(model, train, test, config, tmp_path / "log")
    assert records_again == records
    assert again.SerializeToString() == final.SerializeToString()
    with pytest.raises(FlipLabError, match="other settings"):
        algorithm1(model, train, test, RescaleConfig(iterations=3, lrp_samples=16),
                   tmp_path / "log")


def test_table1_shapes():
    from host.mitigation.bottleneck import pool_after_pointwise
    from host.mitigation.relevance import criticality

    model = table1_model(0)
    x = np.random.default_rng(3).uniform(0, 1, size=(2, 1, 28, 28)).astype(np.float32)
    assert run(model, x).shape == (2, 10)
    shapes = [la.shape for la in criticality(read_chain(model), x, np.array([0, 1]))]
    assert shapes == [(16, 28, 28), (64, 14, 14), (64, 1, 1), (10, 1, 1)]
    moved = pool_after_pointwise(model)
    np.testing.assert_allclose(run(moved, x), run(model, x), rtol=1e-4, atol=1e-5)
    shapes = [la.shape for la in criticality(read_chain(moved), x, np.array([0, 1]))]
    assert shapes[2] == (64, 14, 14)
