"""Tests of host.campaign.sweep (run_sweep): resume, refusals, process pool and Dask executors."""

from __future__ import annotations

import pytest

from host.campaign import CAMPAIGN, RESULTS, run_sweep
from host.errors import FlipLabError

from .helpers import small_spec, table

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


def test_two_sweeps_never_write_one_folder(mlp_run):
    from host.campaign.store import RunLock
    spec, out = mlp_run
    with RunLock(out):
        with pytest.raises(FlipLabError, match="another sweep is writing"):
            run_sweep(spec, out, progress=False)
    assert run_sweep(spec, out, progress=False, summary=False).units_run == 0


# ---------------------------------------------------------------------------------------------
# --low-memory

@pytest.mark.parametrize("fixture", ["mlp_run", "cnn_layers_run"])
def test_a_low_memory_sweep_writes_the_default_sweeps_rows(request, fixture, tmp_path):
    """In-place walks, float weights dropped, weights fed as inputs: the same flips, nulled
    weights and answers as the default path (whole model, per-layer and bit scopes; the
    digits models' sums decide the same top-1 either way)."""
    spec, out = request.getfixturevalue(fixture)
    run_sweep(spec, tmp_path / "low", progress=False, summary=False, low_memory=True)
    assert table(out).equals(table(tmp_path / "low"))


def test_low_memory_with_workers_equals_serial(cnn_layers_run, tmp_path):
    spec, out = cnn_layers_run
    run_sweep(spec, tmp_path / "pool", workers=2, progress=False, summary=False,
              low_memory=True)
    assert table(out).equals(table(tmp_path / "pool"))


def test_low_memory_refuses_activation_faults(tmp_path):
    spec = small_spec(trials=1, target="activations", codecs="fixed8")
    with pytest.raises(FlipLabError, match="--low-memory runs weight faults only"):
        run_sweep(spec, tmp_path / "x", progress=False, low_memory=True)
    assert not (tmp_path / "x").exists()
