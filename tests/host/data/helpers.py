"""Helpers shared by the host.data tests."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

import host.data

SHIPPED = Path(host.data.__file__).with_name("digits.npz")


def idx_bytes(type_code: int, dims: list[int], payload: bytes) -> bytes:
    """An IDX file written by hand: magic 00 00 TT DD, big-endian uint32 dims, payload."""
    return bytes([0, 0, type_code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + payload


def assert_one_line_error(excinfo, *fragments: str) -> None:
    message = str(excinfo.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


IMAGES = idx_bytes(0x08, [2, 2, 3], bytes(range(0, 240, 20)))  # 0, 20, ..., 220
LABELS = idx_bytes(0x08, [2], bytes([7, 3]))
IMAGES_ARRAY = np.arange(0, 240, 20, dtype=np.uint8).reshape(2, 2, 3)
