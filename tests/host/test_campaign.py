"""Campaigns (host.campaign): grid parsing, results against the plain export/inject/eval
pipeline, per-layer prefix reuse, resume, refusal of a different campaign, executors, R(x)."""

from __future__ import annotations

import glob
import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host.campaign import (CAMPAIGN, RESULTS, ROW_KEYS, RobustnessSettings, SweepSettings,
                           find_robustness, make_spec, parse_rates, read_rows, run_sweep,
                           split_at_weights)
from host.campaign.worker import CampaignJob, run_unit
from host.channels import parse_channel
from host.data import DataSpec, load_dataset
from host.errors import FlipLabError
from host.export import CodecPlan, build_image
from host.inject import inject
from host.model import load_model
from host.evaluate import evaluate_image
from host.executors.ort import OnnxExecutor
from host.models import resolve_model

SAMPLES = 120
KEY = ["codec", "scope", "rate", "trial"]


def table(out) -> pd.DataFrame:
    """The results of a folder without the timing column, in a canonical order."""
    df = pd.DataFrame(read_rows(out)).drop(columns="elapsed_s")
    return df.sort_values(KEY).reset_index(drop=True)


def small_spec(model="digits_mlp", samples=SAMPLES, **kw):
    args = dict(codecs="fixed8,parity8", rates="3e-3:5e-2:3", trials=2, seed=11)
    args.update(kw)
    return make_spec(model, SweepSettings(data=DataSpec(samples=samples), **args))


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("mlp") / "run"
    spec = small_spec()
    run_sweep(spec, out, progress=False)
    return spec, out


@pytest.fixture(scope="module")
def cnn_layers_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cnn") / "run"
    spec = small_spec("digits_cnn", codecs="parity8", scopes=["layers", "bits:msb"],
                      rates="1e-2,6e-2")
    run_sweep(spec, out, progress=False)
    return spec, out


# ---------------------------------------------------------------------------------------------
# the grid

def test_rates_log_spaced_inclusive():
    assert parse_rates("1e-5:1e-1:5") == (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
    r = parse_rates("1e-5:1e-1:13")
    assert len(r) == 13 and r[0] == 1e-5 and r[-1] == 1e-1
    assert np.allclose(np.diff(np.log(r)), math.log(1e4) / 12, rtol=1e-5)
    assert parse_rates("0.1, 1e-3,0.01") == (1e-3, 1e-2, 0.1)
    assert parse_rates("0.02:0.02:1") == (0.02,)


@pytest.mark.parametrize("text, words", [
    ("", "empty"), ("1e-1:1e-5:5", "inverted"), ("1e-5:1e-1:0", "empty"),
    ("0:1e-1:3", "outside"), ("1e-3,2", "outside"), ("1e-3,1e-3", "twice"),
    ("1e-3:abc:3", "not a number"), ("1e-3:1e-2", "lo:hi:n"), ("1e-3:1e-3:4", "repeats"),
])
def test_bad_rates_are_one_line_errors(text, words):
    with pytest.raises(FlipLabError, match=words) as info:
        parse_rates(text)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("kw, words", [
    ({"codecs": "fixed8,nonsense9"}, "unknown codec"),
    ({"channel": "gauss:0.1"}, "unknown channel"),
    ({"channel": "none"}, "no rate to sweep"),
    ({"trials": 0}, "trials"),
    ({"rates": "1e-1:1e-3:3"}, "inverted"),
    ({"scopes": ["layer:nope"]}, "no layer"),
    ({"scopes": ["everything"]}, "unknown scope"),
])
def test_bad_campaign_is_refused(kw, words):
    with pytest.raises(FlipLabError, match=words):
        small_spec(**kw)


def test_layers_scope_expands_in_graph_order():
    spec = small_spec("digits_cnn", scopes=["model", "layers"])
    assert spec.scopes == ("model", "layer:conv1", "layer:conv2", "layer:fc")


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


@settings(max_examples=6, deadline=None)
@given(model=st.sampled_from(["digits_mlp", "digits_cnn", "digits_bnn", "digits_mlp_int8"]),
       which=st.integers(0, 10), seed=st.integers(0, 2**31))
def test_suffix_of_prefix_is_the_whole_graph(model, which, seed):
    ws = load_model(resolve_model(model))
    layers = list(dict.fromkeys(t.layer for t in ws.tensors))
    layer = layers[which % len(layers)]
    corrupted = [t.name for t in ws.tensors if t.layer == layer]
    cut = split_at_weights(ws.graph, corrupted, input_name=ws.input_name,
                           output_name=ws.output_name)
    assert cut is not None
    rng = np.random.default_rng(seed)
    weights = {t.name: (t.values + rng.normal(0, 0.05, t.values.shape).astype(t.values.dtype)
                        if t.name in corrupted and t.values.dtype.kind == "f" else t.values)
               for t in ws.tensors}
    specs = {t.name: (t.values.shape, t.values.dtype) for t in ws.tensors}
    x = rng.random((7, *[d for d in ws.input_shape[1:]]), dtype=np.float32)
    whole = OnnxExecutor(ws.graph, specs, input_name=ws.input_name,
                         output_name=ws.output_name).logits(weights, x)
    feeds = {ws.input_name: x} if ws.input_name in cut.boundary else {}
    if cut.prefix is not None:
        pre = OnnxExecutor(cut.prefix, {n: specs[n] for n in cut.prefix_weights},
                           input_name=ws.input_name, output_name=cut.prefix_outputs[0])
        acts = pre.session({n: weights[n] for n in cut.prefix_weights}).run(
            list(cut.prefix_outputs), {ws.input_name: x})
        feeds.update(zip(cut.prefix_outputs, acts))
    suf = OnnxExecutor(cut.suffix, {n: specs[n] for n in cut.suffix_weights},
                       input_name=cut.boundary[0], output_name=ws.output_name)
    got = suf.session({n: weights[n] for n in cut.suffix_weights}).run(
        [ws.output_name], feeds)[0]
    np.testing.assert_array_equal(got, whole)
    # the prefix reads none of the corrupted weights; the suffix reads all of them
    assert not set(corrupted) & set(cut.prefix_weights)
    assert set(corrupted) <= set(cut.suffix_weights)


# ---------------------------------------------------------------------------------------------
# resume, refusal, executors

def test_resume_after_crash_drops_torn_line_and_partial_unit(mlp_run, tmp_path):
    spec, full = mlp_run
    out = tmp_path / "crashed"
    lines = (full / RESULTS).read_text().splitlines(keepends=True)
    (out).mkdir()
    (out / CAMPAIGN).write_text((full / CAMPAIGN).read_text())
    # 1.5 units and a torn half line: as if the process died inside a write
    first = spec.rows_of(spec.units()[0])
    kept = lines[:first + 2]
    (out / RESULTS).write_text("".join(kept) + lines[first + 2][:25])
    result = run_sweep(spec, out, progress=False, summary=False)
    assert result.units_skipped == 1 and result.units_run == len(spec.units()) - 1
    assert table(out).equals(table(full))
    assert len((out / RESULTS).read_text().splitlines()) == len(lines)


def test_rerun_of_a_finished_campaign_runs_nothing(mlp_run):
    spec, out = mlp_run
    before = (out / RESULTS).read_bytes()
    result = run_sweep(spec, out, progress=False, summary=False)
    assert result.units_run == 0 and result.units_skipped == len(spec.units())
    assert (out / RESULTS).read_bytes() == before


@pytest.mark.parametrize("kw, words", [
    ({"trials": 3}, "grid.trials"),
    ({"seed": 12}, "seed"),
    ({"codecs": "fixed8"}, "grid.codecs"),
])
def test_a_different_campaign_is_refused_and_nothing_is_mixed(mlp_run, kw, words):
    _, out = mlp_run
    before = (out / RESULTS).read_bytes()
    with pytest.raises(FlipLabError, match=words) as info:
        run_sweep(small_spec(**kw), out, progress=False)
    assert "different campaign" in str(info.value)
    assert (out / RESULTS).read_bytes() == before


def test_a_different_model_is_refused(mlp_run):
    _, out = mlp_run
    with pytest.raises(FlipLabError, match="model"):
        run_sweep(small_spec("digits_cnn"), out, progress=False)


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


def test_two_workers_equal_serial(cnn_layers_run, tmp_path):
    spec, out = cnn_layers_run
    run_sweep(spec, tmp_path / "pool", workers=2, progress=False, summary=False)
    assert table(out).equals(table(tmp_path / "pool"))


def test_dask_local_cluster_equals_serial(cnn_layers_run, tmp_path):
    import distributed  # dask[distributed]: a test dependency of the project
    spec, out = cnn_layers_run
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                                  dashboard_address=None, processes=True) as cluster:
        run_sweep(spec, tmp_path / "dask", scheduler=cluster.scheduler_address, progress=False,
                  summary=False)
    assert table(out).equals(table(tmp_path / "dask"))


def test_unreachable_scheduler_is_one_line(tmp_path):
    with pytest.raises(FlipLabError, match="Dask scheduler"):
        run_sweep(small_spec(trials=1), tmp_path / "x", scheduler="tcp://127.0.0.1:9",
                  progress=False)


# ---------------------------------------------------------------------------------------------
# R(x) by bisection against the grid

def test_robustness_agrees_with_the_grid(tmp_path):
    x, seed, trials = 0.95, 5, 12
    r = find_robustness("digits_mlp", RobustnessSettings(
        codec="parity8", x=x, ci=0.01, data=DataSpec(samples=200), seed=seed,
        max_trials=trials, lo=1e-4, hi=0.3, resolution=0.15), progress=False)
    assert r.status == "bracketed" and r.ci_low <= r.r <= r.ci_high
    assert r.inferences == (r.variants + 1) * 200
    # the grid R(x) of a fine sweep with the same seed (same trial patterns), per seed 000:
    # the largest tested rate whose mean accuracy is >= x*A
    rates = np.geomspace(r.ci_low / 1.5, min(r.ci_high * 1.5, 0.3), 14)
    spec = make_spec("digits_mlp", SweepSettings(
        codecs="parity8", rates=",".join(f"{p:.6g}" for p in rates), trials=trials,
        data=DataSpec(samples=200), seed=seed))
    run_sweep(spec, tmp_path / "grid", progress=False, summary=False)
    df = pd.DataFrame(read_rows(tmp_path / "grid"))
    a = json.loads((tmp_path / "grid" / CAMPAIGN).read_text())["reference"]["accuracy"]
    assert a == pytest.approx(r.reference_accuracy)
    means = df[df.rate > 0].groupby("rate")["accuracy"].mean()
    passing = means[means >= x * a - 1e-12]
    grid_r = float(passing.index.max())
    above = means.index[means.index > grid_r]
    grid_next = float(above.min()) if len(above) else 1.0
    # the grid brackets R(x) in [grid_r, grid_next); the bisection's interval must meet it
    assert grid_r <= r.ci_high and r.ci_low < grid_next, (grid_r, grid_next, r)


def test_robustness_bad_input():
    with pytest.raises(FlipLabError, match="bracket"):
        find_robustness("digits_mlp", RobustnessSettings(lo=0.1, hi=0.01), progress=False)
    with pytest.raises(FlipLabError, match="unknown codec"):
        find_robustness("digits_mlp", RobustnessSettings(codec="fixed99x"), progress=False)


def test_two_sweeps_never_write_one_folder(mlp_run):
    from host.campaign.store import RunLock
    spec, out = mlp_run
    with RunLock(out):
        with pytest.raises(FlipLabError, match="another sweep is writing"):
            run_sweep(spec, out, progress=False)
    assert run_sweep(spec, out, progress=False, summary=False).units_run == 0
