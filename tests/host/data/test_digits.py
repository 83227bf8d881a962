"""Tests of the embedded digits (host/data/digits.npz, host.data.make_digits) against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest

from host.data import load_dataset
from host.data.make_digits import make_digits_split

from .helpers import SHIPPED

# ------------------------------------------------------------------ embedded digits

@pytest.fixture(scope="module")
def sklearn_digits():
    from sklearn.datasets import load_digits

    return load_digits()


def test_shipped_digits_equal_what_make_digits_produces():
    expected = make_digits_split()
    with np.load(SHIPPED) as shipped:
        assert sorted(shipped.files) == sorted(expected)
        for key, value in expected.items():
            assert shipped[key].dtype == np.uint8
            np.testing.assert_array_equal(shipped[key], value, err_msg=key)


def test_embedded_split_is_a_stratified_partition_of_sklearn_digits(sklearn_digits):
    with np.load(SHIPPED) as shipped:
        x = np.concatenate([shipped["x_train"], shipped["x_test"]]).reshape(-1, 64)
        y = np.concatenate([shipped["y_train"], shipped["y_test"]])
        y_test = shipped["y_test"]
    assert (len(y) - len(y_test), len(y_test)) == (1347, 450)
    rows = np.column_stack([x, y]).astype(np.int64)
    truth = np.column_stack([sklearn_digits.data, sklearn_digits.target]).astype(np.int64)
    # the same 1,797 (image, label) rows, each exactly once
    np.testing.assert_array_equal(np.unique(rows, axis=0, return_counts=True)[1],
                                  np.unique(truth, axis=0, return_counts=True)[1])
    np.testing.assert_array_equal(np.unique(rows, axis=0), np.unique(truth, axis=0))
    # stratified: each class contributes 25 % of its images to the test split (± 1 image)
    per_class = np.bincount(sklearn_digits.target, minlength=10)
    assert np.all(np.abs(np.bincount(y_test, minlength=10) - 0.25 * per_class) <= 1)


def test_digits_unit_is_pixels_over_16_for_mlp_and_cnn_shapes():
    with np.load(SHIPPED) as shipped:
        images, labels = shipped["x_test"], shipped["y_test"]
    x, y = load_dataset("digits", input_shape=["batch", 64])
    assert x.dtype == np.float32 and y.dtype == np.int64
    assert x.shape == (450, 64) and y.shape == (450,)
    np.testing.assert_array_equal(x, images.reshape(450, 64) / np.float32(16))
    np.testing.assert_array_equal(y, labels)
    assert x.min() == 0.0 and x.max() == 1.0
    x4, _ = load_dataset("digits:test", input_shape=[None, 1, 8, 8])
    assert x4.shape == (450, 1, 8, 8)
    np.testing.assert_array_equal(x4[:, 0], images / np.float32(16))


def test_digits_train_split_by_suffix_or_argument():
    with np.load(SHIPPED) as shipped:
        expected = shipped["y_train"]
    _, y_suffix = load_dataset("digits:train", input_shape=["N", 64])
    _, y_arg = load_dataset("digits", input_shape=["N", 64], split="train")
    np.testing.assert_array_equal(y_suffix, expected)
    np.testing.assert_array_equal(y_arg, expected)
    # the suffix wins over the argument
    _, y_test = load_dataset("digits:test", input_shape=["N", 64], split="train")
    assert len(y_test) == 450
