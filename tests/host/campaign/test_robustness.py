"""Tests of host.campaign.robustness: R(x) by bisection against the grid."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from host.campaign import CAMPAIGN, RobustnessSettings, SweepSettings, find_robustness, make_spec, read_rows, run_sweep
from host.data import DataSpec
from host.errors import FlipLabError

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
