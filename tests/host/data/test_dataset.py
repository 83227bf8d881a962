"""Tests of host.data.dataset (load_dataset): npz files, IDX pairs and MNIST folders, samples,
specs and input shapes.
"""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from host.data import load_dataset
from host.errors import FlipLabError

from .helpers import IMAGES, IMAGES_ARRAY, LABELS, assert_one_line_error, idx_bytes


def test_samples_takes_the_first_n():
    x_all, y_all = load_dataset("digits", input_shape=["batch", 64])
    x, y = load_dataset("digits", input_shape=["batch", 64], samples=7)
    np.testing.assert_array_equal(x, x_all[:7])
    np.testing.assert_array_equal(y, y_all[:7])
    x1, _ = load_dataset("digits", input_shape=["batch", 64], samples=450)
    assert len(x1) == 450


@pytest.mark.parametrize("samples", [0, -3, 451, True, 2.5, "10"])
def test_bad_samples_is_an_error(samples):
    with pytest.raises(FlipLabError) as excinfo:
        load_dataset("digits", input_shape=["batch", 64], samples=samples)
    assert_one_line_error(excinfo, "samples")


# ------------------------------------------------------------------ npz files

def test_npz_test_and_train_keys(tmp_path):
    rng = np.random.default_rng(1)
    x_test = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    x_train = rng.integers(0, 256, size=(3, 784), dtype=np.uint8)
    path = tmp_path / "mnist_like.npz"
    np.savez_compressed(path, x_test=x_test, y_test=np.arange(5, dtype=np.uint8),
                        x_train=x_train, y_train=np.array([9, 8, 7], dtype=np.int32))
    x, y = load_dataset(str(path), input_shape=["batch", 1, 28, 28])
    np.testing.assert_allclose(x[:, 0], x_test / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, np.arange(5))
    xt, yt = load_dataset(str(path), input_shape=["batch", 784], split="train")
    np.testing.assert_allclose(xt, x_train / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(yt, [9, 8, 7])
    assert yt.dtype == np.int64


def test_npz_float_samples_are_taken_as_unit_scale(tmp_path):
    path = tmp_path / "floats.npz"
    x = np.array([[0.0, 0.25], [0.75, 1.0]], dtype=np.float64)
    np.savez(path, x_test=x, y_test=np.array([1.0, 0.0]))
    got, y = load_dataset(str(path), input_shape=["b", 2])
    np.testing.assert_array_equal(got, x.astype(np.float32))
    np.testing.assert_array_equal(y, [1, 0])


def test_npz_missing_key_names_it(tmp_path):
    path = tmp_path / "wrong.npz"
    np.savez(path, x_test=np.zeros((2, 64), np.uint8), labels=np.zeros(2, np.uint8))
    with pytest.raises(FlipLabError) as excinfo:
        load_dataset(str(path), input_shape=["batch", 64])
    assert_one_line_error(excinfo, "'y_test'", "labels")
    with pytest.raises(FlipLabError) as excinfo:
        load_dataset(str(path), input_shape=["batch", 64], split="train")
    assert_one_line_error(excinfo, "'x_train'", "'y_train'")


@pytest.mark.parametrize("x, y, fragment", [
    (np.zeros((3, 4), np.uint8), np.zeros(2, np.int64), "3 samples but 2 labels"),
    (np.zeros((2, 4), np.uint8), np.array([0.5, 1.0]), "labels must be integers"),
    (np.zeros((2, 4), np.uint8), np.array([-1, 1]), "labels must be >= 0"),
    (np.zeros((2, 4), np.uint8), np.zeros((2, 3), np.int64), "1-D"),
    (np.full((2, 4), 16.0), np.zeros(2, np.int64), "outside [0, 1]"),
    (np.full((2, 4), -1, np.int16), np.zeros(2, np.int64), "outside [0, 255]"),
    (np.zeros((0, 4), np.uint8), np.zeros(0, np.int64), "no samples"),
    (np.array([["a", "b"], ["c", "d"]]), np.zeros(2, np.int64), "must be numbers"),
])
def test_npz_bad_content_is_an_error(tmp_path, x, y, fragment):
    path = tmp_path / "bad.npz"
    np.savez(path, x_test=x, y_test=y)
    with pytest.raises(FlipLabError) as excinfo:
        load_dataset(str(path), input_shape=["batch", x.shape[1] if x.ndim == 2 else 1])
    assert_one_line_error(excinfo, fragment)


def test_npz_out_of_range_floats_are_fine_without_normalisation(tmp_path):
    path = tmp_path / "raw.npz"
    np.savez(path, x_test=np.full((2, 4), 16.0), y_test=np.zeros(2, np.int64))
    x, _ = load_dataset(str(path), input_shape=["batch", 4], normalize="none")
    np.testing.assert_array_equal(x, np.full((2, 4), 16.0, np.float32))


def test_npz_that_is_not_an_archive_or_needs_pickle(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"this is not a zip archive")
    with pytest.raises(FlipLabError) as excinfo:
        load_dataset(str(junk), input_shape=["batch", 64])
    assert_one_line_error(excinfo, "junk.npz")
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, x_test=np.array([{"a": 1}], dtype=object), y_test=np.zeros(1, np.int64))
    with pytest.raises(FlipLabError) as excinfo:
        load_dataset(str(pickled), input_shape=["batch", 1])
    assert_one_line_error(excinfo, "pickled.npz")


def test_idx_images_alone_find_their_standard_labels(tmp_path):
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(IMAGES)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(LABELS)
    x, y = load_dataset(str(tmp_path / "t10k-images-idx3-ubyte"), input_shape=["b", 1, 2, 3])
    np.testing.assert_allclose(x[:, 0], IMAGES_ARRAY / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, [7, 3])
    (tmp_path / "lonely-images-idx3-ubyte").write_bytes(IMAGES)
    with pytest.raises(FlipLabError) as excinfo:
        load_dataset(str(tmp_path / "lonely-images-idx3-ubyte"), input_shape=["b", 6])
    assert_one_line_error(excinfo, "IMAGES,LABELS")


def test_mnist_directory_test_and_train_gzip(tmp_path):
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(IMAGES))
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(LABELS))
    train_images = idx_bytes(0x08, [1, 2, 3], bytes([255] * 6))
    (tmp_path / "train-images.idx3-ubyte").write_bytes(train_images)
    (tmp_path / "train-labels.idx1-ubyte").write_bytes(idx_bytes(0x08, [1], b"\x04"))
    x, y = load_dataset(str(tmp_path), input_shape=["batch", 6])
    np.testing.assert_allclose(x, IMAGES_ARRAY.reshape(2, 6) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, [7, 3])
    xt, yt = load_dataset(str(tmp_path), input_shape=["batch", 6], split="train")
    np.testing.assert_array_equal(xt, np.ones((1, 6), np.float32))
    np.testing.assert_array_equal(yt, [4])


def test_mnist_directory_missing_file_is_named(tmp_path):
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(IMAGES)
    with pytest.raises(FlipLabError) as excinfo:
        load_dataset(str(tmp_path), input_shape=["batch", 6])
    assert_one_line_error(excinfo, "t10k-labels-idx1-ubyte")


def test_idx_count_mismatch_and_2d_labels(tmp_path):
    (tmp_path / "i.idx").write_bytes(IMAGES)
    (tmp_path / "l.idx").write_bytes(idx_bytes(0x08, [3], bytes([1, 2, 3])))
    (tmp_path / "l2.idx").write_bytes(idx_bytes(0x08, [2, 1], bytes([1, 2])))
    with pytest.raises(FlipLabError) as excinfo:
        load_dataset(f"{tmp_path / 'i.idx'},{tmp_path / 'l.idx'}", input_shape=["b", 6])
    assert_one_line_error(excinfo, "2 samples but 3 labels")
    with pytest.raises(FlipLabError) as excinfo:
        load_dataset(f"{tmp_path / 'i.idx'},{tmp_path / 'l2.idx'}", input_shape=["b", 6])
    assert_one_line_error(excinfo, "labels must be 1-D")


# ------------------------------------------------------------------ specs and shapes

def test_shape_that_cannot_be_reshaped_names_both_shapes():
    with pytest.raises(FlipLabError) as excinfo:
        load_dataset("digits", input_shape=["batch", 1, 28, 28])
    assert_one_line_error(excinfo, "[8, 8]", "64 values", "[batch, 1, 28, 28]", "784 values")


@pytest.mark.parametrize("shape, fragment", [
    ([], "no batch dimension"),
    (["batch", "features"], "'features'"),
    (["batch", 0], "not a fixed positive size"),
    ("batch,64", "list of dimensions"),
])
def test_unusable_input_shape_is_an_error(shape, fragment):
    with pytest.raises(FlipLabError) as excinfo:
        load_dataset("digits", input_shape=shape)
    assert_one_line_error(excinfo, fragment)


def test_fixed_batch_dimension_is_replaced_too():
    x, _ = load_dataset("digits", input_shape=[1, 64], samples=3)
    assert x.shape == (3, 64)


@pytest.mark.parametrize("spec, split, fragment", [
    ("digits:validation", "test", "unknown digits split"),
    ("digits", "val", "unknown split 'val'"),
    ("", "test", "empty"),
    ("no/such/file.npz", "test", "dataset not found: no/such/file.npz"),
    ("a,b,c", "test", "IMAGES,LABELS"),
    ("missing-images,missing-labels", "test", "file not found: missing-images"),
])
def test_bad_dataset_spec_is_an_error(spec, split, fragment):
    with pytest.raises(FlipLabError) as excinfo:
        load_dataset(spec, input_shape=["batch", 64], split=split)
    assert_one_line_error(excinfo, fragment)


def test_unknown_file_type_is_an_error(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(FlipLabError) as excinfo:
        load_dataset(str(path), input_shape=["batch", 64])
    assert_one_line_error(excinfo, "not a .npz archive or an IDX file")


def test_directory_given_as_idx_file_is_an_error(tmp_path):
    folder = tmp_path / "images.idx3-ubyte"
    folder.mkdir()
    (tmp_path / "labels.idx1-ubyte").write_bytes(LABELS)
    with pytest.raises(FlipLabError) as excinfo:
        load_dataset(f"{folder},{tmp_path / 'labels.idx1-ubyte'}", input_shape=["batch", 6])
    assert_one_line_error(excinfo, "cannot read", "images.idx3-ubyte")
