"""host.data: the embedded digits against scikit-learn, npz / IDX loaders, normalisations, errors."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import host.data
from host.data import load_dataset, parse_idx, parse_normalization, read_idx
from host.data.make_digits import make_digits_split
from host.errors import FlipLabError

SHIPPED = Path(host.data.__file__).with_name("digits.npz")


def idx_bytes(type_code: int, dims: list[int], payload: bytes) -> bytes:
    """An IDX file written by hand: magic 00 00 TT DD, big-endian uint32 dims, payload."""
    return bytes([0, 0, type_code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + payload


def assert_one_line_error(excinfo, *fragments: str) -> None:
    message = str(excinfo.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


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


# ------------------------------------------------------------------ IDX files

IMAGES = idx_bytes(0x08, [2, 2, 3], bytes(range(0, 240, 20)))  # 0, 20, ..., 220
LABELS = idx_bytes(0x08, [2], bytes([7, 3]))
IMAGES_ARRAY = np.arange(0, 240, 20, dtype=np.uint8).reshape(2, 2, 3)


def test_parse_hand_written_idx():
    np.testing.assert_array_equal(parse_idx(IMAGES), IMAGES_ARRAY)
    np.testing.assert_array_equal(parse_idx(LABELS), [7, 3])
    # big-endian element types: int16 0x0102 = 258, -2; float32 1.5
    shorts = parse_idx(idx_bytes(0x0B, [2], b"\x01\x02\xff\xfe"))
    assert shorts.dtype == np.int16 and shorts.tolist() == [258, -2]
    floats = parse_idx(idx_bytes(0x0D, [1], b"\x3f\xc0\x00\x00"))
    assert floats.dtype == np.float32 and floats.tolist() == [1.5]


@pytest.mark.parametrize("data, fragment", [
    (b"\x01\x00\x08\x01" + b"\0\0\0\x01" + b"\x05", "not an IDX file"),
    (b"\0\0\x07\x01" + b"\0\0\0\x01" + b"\x05", "unknown IDX element type 0x07"),
    (b"\0\0\x08\x00", "0 dimensions"),
    (b"\0\0\x08\x02\0\0\0\x02", "truncated IDX header"),
    (IMAGES[:-1], "truncated"),
    (IMAGES + b"\0", "trailing bytes"),
    (b"\0\0", "not an IDX file"),
])
def test_bad_idx_is_an_error(data, fragment):
    with pytest.raises(FlipLabError) as excinfo:
        parse_idx(data, "f.idx")
    assert_one_line_error(excinfo, "f.idx", fragment)


def test_idx_pair_spec_plain_and_gzip(tmp_path):
    (tmp_path / "imgs.idx3-ubyte").write_bytes(IMAGES)
    (tmp_path / "labs.idx1-ubyte.gz").write_bytes(gzip.compress(LABELS))
    spec = f"{tmp_path / 'imgs.idx3-ubyte'},{tmp_path / 'labs.idx1-ubyte.gz'}"
    x, y = load_dataset(spec, input_shape=["batch", 6], normalize="none")
    np.testing.assert_array_equal(x, IMAGES_ARRAY.reshape(2, 6).astype(np.float32))
    np.testing.assert_array_equal(y, [7, 3])
    np.testing.assert_array_equal(read_idx(tmp_path / "labs.idx1-ubyte.gz"), [7, 3])


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


def test_corrupt_gzip_is_an_error(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(IMAGES)[:-6])
    with pytest.raises(FlipLabError) as excinfo:
        read_idx(path)
    assert_one_line_error(excinfo, "gzip")


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
