"""Tests of host.data.normalize: the normalisations by hand and their properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from host.data import load_dataset, parse_normalization
from host.errors import FlipLabError

from .helpers import SHIPPED, assert_one_line_error

# ------------------------------------------------------------------ normalisations

def test_normalisations_by_hand(tmp_path):
    path = tmp_path / "four.npz"
    pixels = np.array([[0, 51, 127, 128, 255, 204]], dtype=np.uint8)
    np.savez(path, x_test=pixels, y_test=np.array([3]))
    shape = ["batch", 6]
    unit, _ = load_dataset(str(path), input_shape=shape)
    np.testing.assert_allclose(unit, [[0, 0.2, 127 / 255, 128 / 255, 1, 0.8]], rtol=1e-6)
    none, _ = load_dataset(str(path), input_shape=shape, normalize="none")
    np.testing.assert_array_equal(none, pixels.astype(np.float32))
    assert none.dtype == np.float32
    ms, _ = load_dataset(str(path), input_shape=shape, normalize="meanstd:0.5,0.25")
    np.testing.assert_allclose(ms, [[-2, -1.2, (127 / 255 - 0.5) * 4, (128 / 255 - 0.5) * 4, 2, 1.2]],
                               rtol=1e-5, atol=1e-6)
    binary, _ = load_dataset(str(path), input_shape=shape, normalize="binary")
    np.testing.assert_array_equal(binary, [[-1, -1, -1, 1, 1, 1]])


def test_digits_binary_threshold_is_pixel_8_of_16():
    with np.load(SHIPPED) as shipped:
        images = shipped["x_test"].reshape(450, 64)
    x, _ = load_dataset("digits", input_shape=["batch", 64], normalize="binary")
    np.testing.assert_array_equal(x, np.where(images >= 8, 1.0, -1.0))


@given(hnp.arrays(np.uint8, st.integers(1, 40)),
       st.floats(-2, 2), st.floats(0.01, 10))
@settings(max_examples=50, deadline=None)
def test_meanstd_and_binary_properties(values, mean, std):
    unit = parse_normalization("unit").apply(values, 255.0)
    ms = parse_normalization(f"meanstd:{mean!r},{std!r}").apply(values, 255.0)
    np.testing.assert_allclose(ms * np.float32(std) + np.float32(mean), unit, atol=1e-5)
    binary = parse_normalization("binary").apply(values, 255.0)
    np.testing.assert_array_equal(binary == 1, values >= 128)
    assert set(np.unique(binary)) <= {-1.0, 1.0}


@pytest.mark.parametrize("spec", ["", "foo", "meanstd", "meanstd:", "meanstd:1", "meanstd:a,b",
                                  "meanstd:0,0", "meanstd:0,-1", "meanstd:nan,1", "meanstd:1,2,3",
                                  "unit:3", "binary:0.5"])
def test_bad_normalize_spec_is_an_error(spec):
    with pytest.raises(FlipLabError) as excinfo:
        load_dataset("digits", input_shape=["batch", 64], normalize=spec)
    assert_one_line_error(excinfo, "normalize")


def test_normalization_spec_round_trips():
    for spec in ["unit", "none", "binary", "meanstd:0.1307,0.3081"]:
        parsed = parse_normalization(spec)
        assert parse_normalization(parsed.spec) == parsed
