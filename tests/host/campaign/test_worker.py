"""Tests of host.campaign.worker: every row equals export -> inject (seed, trial) -> eval done
separately, per-layer prefix reuse, a unit re-run alone.
"""

from __future__ import annotations

import glob
import json

import numpy as np
import pytest

from host.campaign import CAMPAIGN, ROW_KEYS, read_rows, run_sweep
from host.campaign.worker import CampaignJob, run_unit
from host.channels import parse_channel
from host.data import load_dataset
from host.evaluate import evaluate_image
from host.executors.ort import OnnxExecutor
from host.export import CodecPlan, build_image
from host.inject import inject
from host.model import load_model
from host.models import resolve_model

from .helpers import SAMPLES, table

# ---------------------------------------------------------------------------------------------
# results against the plain pipeline: export -> inject (seed, trial) -> eval, done separately

def _independent(model, codec, rate, seed, trial, *, tensors=None, bits=None):
    ws = load_model(resolve_model(model))
    image, _ = build_image(ws, CodecPlan(codec))
    x, y = load_dataset("digits", input_shape=image.model["input_shape"], samples=SAMPLES)
    if rate > 0:
        image, report = inject(image, parse_channel(f"bsc:{rate!r}"), seed=seed, trial=trial,
                               tensors=tensors, bit_positions=bits)
        flips = report.flips
    else:
        flips = 0
    ev = evaluate_image(image, x, y, executor=OnnxExecutor.for_image(image))
    return ev, flips


def test_rows_have_exactly_the_schema(mlp_run):
    spec, out = mlp_run
    rows = read_rows(out)
    assert all(tuple(r) == ROW_KEYS for r in rows)
    # one clean row per (codec, scope) and one row per (codec, scope, rate, trial)
    assert len(rows) == len(spec.codecs) * (1 + len(spec.rates) * spec.trials)
    camp = json.loads((out / CAMPAIGN).read_text())
    assert set(camp) == {"model", "model_sha256", "reference", "grid", "data", "seed"}
    assert camp["grid"]["rates"] == list(spec.rates) and camp["seed"] == 11
    assert set(camp["reference"]) == {"accuracy", "correct", "samples"}


def test_every_row_equals_inject_then_eval(mlp_run):
    spec, out = mlp_run
    for r in read_rows(out):
        ev, flips = _independent("digits_mlp", r["codec"], r["rate"], spec.seed, r["trial"])
        assert (r["correct"], r["flips"], r["nulled"]) == (ev.correct, flips,
                                                           sum(ev.nulled.values())), r
        assert r["accuracy"] == pytest.approx(ev.correct / SAMPLES)


def test_failures_are_counted_against_the_original_model(mlp_run):
    spec, out = mlp_run
    ws = load_model(resolve_model("digits_mlp"))
    x, y = load_dataset("digits", input_shape=ws.input_shape, samples=SAMPLES)
    ex = OnnxExecutor(ws.graph, {t.name: (t.values.shape, t.values.dtype) for t in ws.tensors},
                      input_name=ws.input_name, output_name=ws.output_name)
    ref_right = ex.logits({t.name: t.values for t in ws.tensors}, x).argmax(axis=1) == y
    camp = json.loads((out / CAMPAIGN).read_text())
    assert camp["reference"]["correct"] == int(ref_right.sum())
    some = [r for r in read_rows(out) if r["rate"] == spec.rates[-1]]
    for r in some:
        image, _ = build_image(ws, CodecPlan(r["codec"]))
        noisy, _ = inject(image, parse_channel(f"bsc:{r['rate']!r}"), seed=spec.seed,
                          trial=r["trial"])
        pred = evaluate_image(noisy, x, y).predictions
        assert r["failures"] == int(np.sum(ref_right & (pred != y)))


def test_layer_and_bit_scopes_equal_inject_with_tensors_and_bits(cnn_layers_run):
    spec, out = cnn_layers_run
    rows = read_rows(out)
    assert {r["scope"] for r in rows} == {"layer:conv1", "layer:conv2", "layer:fc", "bits:msb"}
    for r in rows:
        if r["rate"] == 0.0:
            continue
        if r["scope"].startswith("layer:"):
            kw = {"tensors": [glob.escape(r["scope"][6:])]}
        else:
            kw = {"bits": ["msb"]}
        ev, flips = _independent("digits_cnn", r["codec"], r["rate"], spec.seed, r["trial"], **kw)
        assert (r["correct"], r["flips"], r["nulled"]) == (ev.correct, flips,
                                                           sum(ev.nulled.values())), r


def test_prefix_reuse_gives_the_same_rows_as_the_whole_graph(cnn_layers_run, tmp_path):
    spec, out = cnn_layers_run
    run_sweep(spec, tmp_path / "whole", progress=False, reuse_prefix=False)
    assert table(out).equals(table(tmp_path / "whole"))


def test_prefix_cache_budget_does_not_change_results(cnn_layers_run, tmp_path):
    spec, out = cnn_layers_run
    run_sweep(spec, tmp_path / "nocache", progress=False, prefix_cache_bytes=0)
    assert table(out).equals(table(tmp_path / "nocache"))


def test_unit_is_reproducible_alone_and_independent_of_order(mlp_run):
    spec, out = mlp_run
    from host.campaign.sweep import reference_run
    _, right = reference_run(spec)
    job = CampaignJob(spec, np.packbits(right).tobytes())
    unit = spec.units()[-1]
    rows = [{k: v for k, v in r.items() if k != "elapsed_s"} for r in run_unit(job, unit)]
    stored = [{k: v for k, v in r.items() if k != "elapsed_s"} for r in read_rows(out)
              if (r["codec"], r["scope"], r["trial"]) == unit.key]
    assert sorted(rows, key=lambda r: r["rate"]) == sorted(stored, key=lambda r: r["rate"])
