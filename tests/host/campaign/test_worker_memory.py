"""Memory of a campaign unit does not grow with the number of rates (issue 15, item 4).

A unit walks every rate of one trial; each rate's variant must be dropped before the next is
decoded, on the whole-graph path and on the per-layer (prefix + suffix) path. Measured with
tracemalloc (numpy registers its buffers with it; onnxruntime's own arena is the same for any
number of rates): the peak while a unit runs, with 2 rates and with 16 rates over the same
range, differs by less than half of one variant's decoded weights and payload.
"""

from __future__ import annotations

import gc
import tracemalloc

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from host.campaign import Unit
from host.campaign.sweep import reference_run
from host.campaign.worker import CampaignJob, context_for, run_unit
from host.model import load_model

from .helpers import small_spec

#: hidden width of the test MLP: ~180,000 weights, so that one variant (~0.9 MB) dwarfs the
#: result rows (~1 kB per rate)
WIDTH = 384


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    """digits (64 features) -> Gemm fc1 -> Relu -> Gemm fc2 -> Relu -> Gemm fc3 -> 10 logits."""
    rng = np.random.default_rng(0)
    sizes = [64, WIDTH, WIDTH, 10]
    nodes, inits, x = [], [], "input"
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:]), start=1):
        y = "logits" if i == len(sizes) - 1 else f"h{i}"
        nodes.append(helper.make_node("Gemm", [x, f"fc{i}.weight", f"fc{i}.bias"],
                                      [y if i == len(sizes) - 1 else f"g{i}"], transB=1,
                                      name=f"fc{i}"))
        if i < len(sizes) - 1:
            nodes.append(helper.make_node("Relu", [f"g{i}"], [y], name=f"relu{i}"))
        inits += [numpy_helper.from_array(
                      (rng.normal(size=(n_out, n_in)) / np.sqrt(n_in)).astype(np.float32),
                      f"fc{i}.weight"),
                  numpy_helper.from_array(np.zeros(n_out, np.float32), f"fc{i}.bias")]
        x = y
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path_factory.mktemp("mlp") / "mlp.onnx"
    onnx.save(model, str(path))
    return str(path)


def _peak_of_unit(model: str, scope: str, rates: str) -> tuple[int, int]:
    """(traced peak bytes while one unit runs, bytes of one variant of that scope)."""
    spec = small_spec(model, codecs="fixed8", scopes=[scope], rates=rates, trials=3)
    _, right = reference_run(spec)
    job = CampaignJob(spec, np.packbits(right).tobytes())
    run_unit(job, Unit("fixed8", spec.scopes[0], 1))  # builds the context and fills its caches
    ctx = context_for(job)
    stored = ctx.stored("fixed8")
    scoped = spec.scopes[0][len("layer:"):] if scope != "model" else None
    layer = {t.name: t.layer for t in stored.image.tensors}
    variant = stored.image.payload.nbytes + sum(
        w.nbytes for name, w in stored.clean.weights.items()
        if scoped is None or layer[name] == scoped)
    gc.collect()
    tracemalloc.start()
    try:
        run_unit(job, Unit("fixed8", spec.scopes[0], 2))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, variant


@pytest.mark.parametrize("scope", ["model", "layer:fc2"])
def test_unit_memory_does_not_grow_with_the_number_of_rates(mlp, scope):
    few, variant = _peak_of_unit(mlp, scope, "1e-3:1e-2:2")
    many, _ = _peak_of_unit(mlp, scope, "1e-3:1e-2:16")
    assert many - few < variant / 2, (few, many, variant)


def test_a_low_memory_context_holds_images_only_between_units(mlp):
    """--low-memory: the float weights go once every codec's image is stored (as for any
    weight-fault campaign), a unit's decoded weights go when it ends, and its in-place flips
    leave the image as stored."""
    from host.campaign.worker import store

    spec = small_spec(mlp, codecs="fixed8,parity8", rates="1e-3:1e-2:3", trials=2)
    _, right = reference_run(spec, low_memory=True)
    job = CampaignJob(spec, np.packbits(right).tobytes(), low_memory=True)
    rows = run_unit(job, Unit("parity8", "model", 1))
    ctx = context_for(job)
    assert ctx.ws.tensors == [] and ctx._stored == {}
    assert sum(r["flips"] for r in rows) > 0 and any(r["nulled"] for r in rows)
    fresh = store(load_model(mlp), spec, "parity8")
    assert np.array_equal(ctx.image("parity8").payload, fresh.payload)
    assert ctx.stored("fixed8").executor.strategy == "inputs"
