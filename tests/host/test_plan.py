"""host.plan: the per-layer codec search and the campaign flow around it.

Truth: exhaustive search over every assignment (hypothesis draws the per-layer sensitivities,
i.e. a toy model whose drops and costs are known by construction), a hand-worked case, and on
a bundled model the plan is checked against the exhaustive optimum of its own measurements.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host.data import DataSpec
from host.errors import FlipLabError
from host.plan import Option, PlanSettings, cheapest, exhaustive, make_plan, pareto_front, parse_target

CODECS = ("fixed8", "parity8", "secded(fixed8)", "reliable(fixed8)")


def toy(drops: list[tuple[float, float, float]], sizes: list[int]) -> list[list[Option]]:
    """Layer i of sizes[i] weights: fixed8 8 bits/weight, parity8 8, secded 9, reliable 24;
    drops[i] = (fixed8, parity8, secded) accuracy drops, reliable drops nothing."""
    return [[Option("fixed8", 8 * n, d[0]), Option("parity8", 8 * n, d[1]),
             Option("secded(fixed8)", 9 * n, d[2]), Option("reliable(fixed8)", 24 * n, 0.0)]
            for d, n in zip(drops, sizes)]


def test_hand_worked_plan():
    # layer a (10 weights) is fragile in every noisy codec, layer b (1000) only without checks
    options = toy([(0.3, 0.2, 0.1), (0.05, 0.0, 0.0)], [10, 1000])
    best = cheapest(pareto_front(options), budget=0.02)
    # a: reliable (240 bits) beats nothing else fitting 0.02; b: parity8 (8000 bits, drop 0)
    assert best.codecs == ("reliable(fixed8)", "parity8") and best.bits == 240 + 8000
    assert cheapest(pareto_front(options), budget=0.12).codecs == ("secded(fixed8)", "parity8")
    assert cheapest(pareto_front(toy([(0.5, 0.5, 0.5)], [3])), budget=-0.1) is None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(*[st.floats(0, 0.3, allow_nan=False)] * 3), min_size=1, max_size=5),
       st.lists(st.integers(1, 500), min_size=5, max_size=5),
       st.floats(0, 0.5, allow_nan=False))
def test_pareto_search_finds_the_exhaustive_optimum(drops, sizes, budget):
    options = toy(drops, sizes[: len(drops)])
    front = pareto_front(options)
    got, want = cheapest(front, budget), exhaustive(options, budget)
    assert (got is None) == (want is None)
    if got is not None:
        assert got.bits == want.bits and got.drop <= budget + 1e-12
    # the front is non-dominated and sorted by bits with strictly falling drop
    assert all(a.bits <= b.bits and a.drop > b.drop for a, b in zip(front, front[1:]))


@pytest.mark.parametrize("text, rate, thr", [("R(0.95)>=1e-2", 0.01, 0.95 * 0.9),
                                             ("acc>=0.8@0.003", 0.003, 0.8),
                                             (" r( 0.99 ) >= 1e-3 ", 0.001, 0.99 * 0.9)])
def test_targets(text, rate, thr):
    t = parse_target(text)
    assert t.rate == rate and t.threshold(0.9) == pytest.approx(thr)


@pytest.mark.parametrize("text", ["R(0.95)>1e-2", "R(2)>=1e-2", "acc>=0.9", "R(0.9)>=0",
                                  "acc>=1.5@0.1", ""])
def test_bad_targets(text):
    with pytest.raises(FlipLabError, match="target"):
        parse_target(text)


def test_plan_on_a_bundled_model_is_the_exhaustive_optimum_of_its_measurements(tmp_path):
    res = make_plan("digits_cnn", PlanSettings(
        codecs="fixed8,parity8", target="R(0.95)>=1e-2", trials=2,
        data=DataSpec("digits", "unit", 120), rates=3), tmp_path, progress=False)
    options = [res.options[layer] for layer in res.layers]
    want = exhaustive(options, res.reference - res.threshold)
    assert res.plan is not None and res.plan.bits == want.bits
    assert all(o.drop == 0.0 for opts in options for o in opts if o.codec.startswith("reliable"))
    doc = res.to_json()
    json.dumps(doc)
    names = [r["name"] for r in doc["table"]]
    assert names == ["fixed8", "parity8", "secded(fixed8)", "plan"]
    assert (tmp_path / "pareto.png").stat().st_size > 1000
    assert all(len(o) == 3 for o in options)  # fixed8, parity8, reliable(fixed8)
