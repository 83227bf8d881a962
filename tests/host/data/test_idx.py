"""Tests of host.data.idx: IDX files written by hand, plain and gzip."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from host.data import load_dataset, parse_idx, read_idx
from host.errors import FlipLabError

from .helpers import IMAGES, IMAGES_ARRAY, LABELS, assert_one_line_error, idx_bytes

# ------------------------------------------------------------------ IDX files

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


def test_corrupt_gzip_is_an_error(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(IMAGES)[:-6])
    with pytest.raises(FlipLabError) as excinfo:
        read_idx(path)
    assert_one_line_error(excinfo, "gzip")
