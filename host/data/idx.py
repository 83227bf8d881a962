"""Reader for IDX files, the format of the MNIST distribution (``*-idx3-ubyte``, ``*-idx1-ubyte``).

An IDX file is a 4-byte magic number ``00 00 TT DD`` — ``TT`` the element type, ``DD`` the
number of dimensions — then ``DD`` big-endian uint32 sizes, then the elements, big-endian,
row-major. gzip-compressed files (``.gz``, recognised by their content, not their name) are
read transparently.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from host.errors import FlipLabError

#: IDX element type code -> big-endian numpy dtype.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

GZIP_MAGIC = b"\x1f\x8b"


def read_bytes_maybe_gzip(path: Path) -> bytes:
    """Return the content of ``path``, decompressed when it is gzip data."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FlipLabError(f"file not found: {path}") from None
    except OSError as exc:
        raise FlipLabError(f"cannot read {path}: {exc.strerror or exc}") from None
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise FlipLabError(f"{path}: corrupt gzip data ({exc})") from None


def is_idx(data: bytes) -> bool:
    """True when ``data`` starts with a valid IDX magic number (known type, at least 1 dim)."""
    return len(data) >= 4 and data[:2] == b"\0\0" and data[2] in IDX_DTYPES and data[3] >= 1


def parse_idx(data: bytes, name: str = "IDX data") -> np.ndarray:
    """Parse the bytes of an (uncompressed) IDX file into an array in native byte order.

    ``name`` is used in error messages. Raises FlipLabError on a bad magic number, a
    truncated header or payload, or trailing bytes.
    """
    if len(data) < 4 or data[:2] != b"\0\0":
        raise FlipLabError(f"{name}: not an IDX file (magic number must start with 00 00)")
    type_code, ndim = data[2], data[3]
    if type_code not in IDX_DTYPES:
        raise FlipLabError(f"{name}: unknown IDX element type 0x{type_code:02x}")
    if ndim == 0:
        raise FlipLabError(f"{name}: IDX file with 0 dimensions")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise FlipLabError(f"{name}: truncated IDX header ({len(data)} of {header_len} bytes)")
    dims = struct.unpack(f">{ndim}I", data[4:header_len])
    dtype = IDX_DTYPES[type_code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    payload = len(data) - header_len
    if payload != expected:
        what = "truncated" if payload < expected else "has trailing bytes"
        raise FlipLabError(
            f"{name}: IDX payload {what}: {payload} bytes for shape {list(dims)}, expected {expected}"
        )
    values = np.frombuffer(data, dtype=dtype, offset=header_len).reshape(dims)
    return values.astype(dtype.newbyteorder("="))


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) into a native-byte-order array."""
    path = Path(path)
    return parse_idx(read_bytes_maybe_gzip(path), name=str(path))
