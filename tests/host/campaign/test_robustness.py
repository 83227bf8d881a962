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
    # sample inferences: the reference pass, then at most every probe's trials x samples
    # (fewer: identical variants are answered from one another)
    assert 200 < r.inferences <= 200 + sum(p.trials * p.samples for p in r.probes)
    assert r.inferences + r.reused == 200 + sum(p.trials * p.samples for p in r.probes)
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


# ---------------------------------------------------------------------------------------------
# resuming, and variants that decode to identical weights

SMALL = RobustnessSettings(codec="fixed8", x=0.95, ci=0.02, data=DataSpec(samples=120),
                           max_trials=16, lo=1e-3, hi=0.2, resolution=0.5)


def test_robustness_resumes_from_its_probes_file(tmp_path):
    results = tmp_path / "probes.jsonl"
    first = find_robustness("digits_mlp", SMALL, results=results, progress=False)
    lines = results.read_text().splitlines()
    assert len(lines) == 1 + len(first.probes)
    # a torn last line: that probe alone runs again, and the answer is the same
    results.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:10])
    again = find_robustness("digits_mlp", SMALL, results=results, progress=False)
    assert again.to_json() | {"inferences": 0, "reused": 0, "variants": 0} == \
        first.to_json() | {"inferences": 0, "reused": 0, "variants": 0}
    assert 120 < again.inferences < first.inferences
    # every probe read back: only the reference pass runs
    third = find_robustness("digits_mlp", SMALL, results=results, progress=False)
    assert third.inferences == 120 and third.r == first.r
    with pytest.raises(FlipLabError, match="another search"):
        find_robustness("digits_mlp", RobustnessSettings(**{**SMALL.__dict__, "x": 0.9}),
                        results=results, progress=False)


def test_variants_equal_to_the_clean_model_are_not_run():
    # at 1e-7 the ~0.4 expected flips of the MLP's 8-bit words leave most trials clean: they
    # are answered by the reference pass, and the probe passes as the clean model does
    r = find_robustness("digits_mlp", RobustnessSettings(
        **{**SMALL.__dict__, "lo": 1e-7, "hi": 2e-7, "resolution": 1.5}), progress=False)
    assert r.status == "above_bracket"
    p = r.probes[0]
    assert p.verdict == "above" and r.reused > 0
    assert r.inferences + r.reused == 120 + p.trials * p.samples
