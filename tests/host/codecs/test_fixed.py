"""Tests of host.codecs.fixed: eq. (1) by hand, mid-rise levels, round trips, per-channel ranges."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from host.codecs import get_codec

from .helpers import FAST

# --- fixed point (seed 000 eq. (1), seed 001 II-B2) ------------------------------------------------

def test_fixed_eq1_hand_example():
    codec = get_codec("fixed2")  # Δ = (1 - (-0.5)) / 3 = 0.5: levels -0.5, 0, 0.5, 1
    params = codec.fit(np.array([-0.5, 1.0]))
    assert params["w_min"] == -0.5 and params["w_max"] == 1.0
    codes = codec.encode(np.array([-0.5, -0.2, 0.26, 0.74, 1.0]), params)
    assert codes.tolist() == [0, 1, 2, 2, 3]  # (w + 0.5) / 0.5 = 0, 0.6, 1.52, 2.48, 3 rounded
    values, _ = codec.decode(np.arange(4, dtype=np.uint64), params, dtype=np.float64)
    assert values.tolist() == [-0.5, 0.0, 0.5, 1.0]


def test_image_format_worked_example_codes():
    # docs/image-format.md: w = [[-1, -0.5], [0.5, 1]] in parity4 = parity(fixed3), Δ = 2/7
    codec = get_codec("parity4")
    w = np.array([[-1.0, -0.5], [0.5, 1.0]])
    params = codec.fit(w)
    codes = codec.encode(w, params)
    assert codes.tolist() == [0b0000, 0b0101, 0b1010, 0b1111]
    assert codec.pack(codes).tolist() == [0x50, 0xFA]
    values, nulled = codec.decode(codes ^ np.array([0b0010, 0, 0, 0], dtype=np.uint64), params,
                                  dtype=np.float64)
    assert values == pytest.approx([0.0, -3 / 7, 3 / 7, 1.0]) and nulled.tolist() == [True, False, False, False]
    values, _ = codec.decode(np.array([0b0110], dtype=np.uint64), params, dtype=np.float64)
    assert values[0] == pytest.approx(-1 + 3 * 2 / 7)


def test_fixed_mid_hand_example():
    codec = get_codec("fixed2:mid")  # width = 2/4 = 0.5: intervals [0,.5) [.5,1) [1,1.5) [1.5,2]
    params = codec.fit(np.array([0.0, 2.0]))
    codes = codec.encode(np.array([0.0, 0.49, 0.5, 1.2, 1.99, 2.0]), params)
    assert codes.tolist() == [0, 0, 1, 2, 3, 3]
    values, _ = codec.decode(np.arange(4, dtype=np.uint64), params, dtype=np.float64)
    assert values.tolist() == [0.25, 0.75, 1.25, 1.75]  # w_min + width·(1/2 + i)


finite = st.floats(-1e3, 1e3, allow_nan=False, width=32)


@FAST
@given(w=hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=3, max_side=6), elements=finite),
       q=st.integers(2, 16), family=st.sampled_from(["fixed", "hamming", "gray"]))
def test_round_trip_within_half_a_step(w, q, family):
    codec = get_codec(f"{family}{q}")
    params = codec.fit(w)
    values, nulled = codec.decode(codec.encode(w, params), params, dtype=np.float64)
    delta = (params["w_max"] - params["w_min"]) / (2**q - 1)
    w = w.astype(np.float64).ravel()
    assert np.all(np.abs(values - w) <= delta / 2 + 1e-9 * (1 + np.abs(w)))
    assert not nulled.any()


@FAST
@given(w=hnp.arrays(np.float64, st.integers(1, 50), elements=st.floats(-10, 10)), q=st.integers(2, 16))
def test_mid_round_trip_within_half_an_interval(w, q):
    codec = get_codec(f"fixed{q}:mid")
    params = codec.fit(w)
    values, _ = codec.decode(codec.encode(w, params), params, dtype=np.float64)
    width = (params["w_max"] - params["w_min"]) / 2**q
    assert np.all(np.abs(values - w) <= width / 2 + 1e-12 * (1 + np.abs(w)))


@FAST
@given(w=hnp.arrays(np.float64, st.integers(1, 40), elements=st.floats(-5, 5)), q=st.integers(2, 12))
def test_hamming_and_gray_store_the_same_levels_as_fixed(w, q):
    fixed = get_codec(f"fixed{q}")
    params = fixed.fit(w)
    reference, _ = fixed.decode(fixed.encode(w, params), params, dtype=np.float64)
    for spec in (f"hamming{q}", f"gray{q}"):
        codec = get_codec(spec)
        values, _ = codec.decode(codec.encode(w, params), params, dtype=np.float64)
        np.testing.assert_array_equal(values, reference)


@pytest.mark.parametrize("spec", ["fixed8", "fixed8:mid", "hamming5", "gray6", "int8", "parity8"])
def test_degenerate_range_round_trips_exactly(spec):
    codec = get_codec(spec)
    w = np.full((3, 4), 0.0 if spec.startswith("int") else -0.3125)
    params = codec.fit(w)
    values, _ = codec.decode(codec.encode(w, params), params, dtype=np.float64)
    np.testing.assert_array_equal(values, w.ravel())


def test_per_channel_ranges():
    rng = np.random.default_rng(7)
    w = rng.normal(size=(2, 3, 5)) * np.array([0.01, 1.0, 100.0])[None, :, None]
    w[:, 2, :] = 4.0  # a constant channel: degenerate range inside a per-channel fit
    codec = get_codec("fixed6")
    params = codec.fit(w, axis=1, granularity="channel")
    assert params["w_min"] == [float(w[:, c, :].min()) for c in range(3)]
    assert params["w_max"] == [float(w[:, c, :].max()) for c in range(3)]
    values, _ = codec.decode(codec.encode(w, params), params, dtype=np.float64)
    values = values.reshape(w.shape)
    for c in range(3):
        delta = (params["w_max"][c] - params["w_min"][c]) / 63
        assert np.all(np.abs(values[:, c, :] - w[:, c, :]) <= delta / 2 + 1e-12)
    np.testing.assert_array_equal(values[:, 2, :], 4.0)


def test_negative_channel_axis_and_model_granularity():
    codec = get_codec("fixed4")
    w = np.array([[-1.0, 3.0], [0.0, 1.0]])
    assert codec.fit(w, axis=-1, granularity="channel")["w_min"] == [-1.0, 1.0]
    params = codec.fit(w, granularity="model", model_range=(-2.0, 2.0))
    assert params == {"granularity": "model", "w_min": -2.0, "w_max": 2.0}
    values, _ = codec.decode(codec.encode(np.array([5.0, -5.0]), params), params, dtype=np.float64)
    assert values.tolist() == [2.0, -2.0]  # clipped to the model range
