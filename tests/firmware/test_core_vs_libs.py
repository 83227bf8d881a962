"""The C core (built as build/host/libflcore.so, loaded with ctypes) against independent
libraries on random inputs: its CRC against zlib.crc32, its COBS against the `cobs` package, its
frames against the host's protocol module, its spec parser against the host's."""

import ctypes
import zlib

import pytest
from cobs import cobs
from hypothesis import given, settings
from hypothesis import strategies as st

from host.board import protocol as P


@pytest.fixture(scope="module")
def lib(firmware_lib):
    so = ctypes.CDLL(str(firmware_lib))
    so.fl_crc32.restype = ctypes.c_uint32
    so.fl_crc32.argtypes = [ctypes.c_uint32, ctypes.c_char_p, ctypes.c_size_t]
    so.fl_cobs_encode.restype = ctypes.c_size_t
    so.fl_cobs_encode.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t]
    so.fl_cobs_decode.restype = ctypes.c_long
    so.fl_cobs_decode.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t]
    so.fl_threshold.restype = ctypes.c_uint32
    so.fl_threshold.argtypes = [ctypes.c_double]
    return so


def c_encode(lib, data: bytes) -> bytes:
    out = ctypes.create_string_buffer(len(data) + len(data) // 254 + 2)
    n = lib.fl_cobs_encode(data, len(data), out, len(out))
    assert n > 0
    return out.raw[:n]


def c_decode(lib, data: bytes) -> bytes | None:
    out = ctypes.create_string_buffer(len(data) + 1)
    n = lib.fl_cobs_decode(data, len(data), out, len(out))
    return None if n < 0 else out.raw[:n]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000), st.integers(min_value=0, max_value=2**32 - 1))
def test_crc_matches_zlib(lib, data, start):
    assert lib.fl_crc32(start, data, len(data)) == zlib.crc32(data, start)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=1200),
                 st.lists(st.sampled_from([0, 1, 0xFF]), max_size=1200).map(bytes)))
def test_cobs_matches_package(lib, data):
    assert c_encode(lib, data) == cobs.encode(data)
    assert c_decode(lib, cobs.encode(data)) == data


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=600))
def test_cobs_decoder_agrees_on_invalid_input(lib, data):
    """Whatever the bytes, the C decoder accepts exactly what the package accepts, with the
    same result."""
    try:
        expect = cobs.decode(data)
    except cobs.DecodeError:
        expect = None
    assert c_decode(lib, data) == expect


def test_threshold_matches_host(lib):
    for p in (0.0, 1e-9, 2**-33, 3 * 2**-33, 1e-6, 1e-3, 0.25, 0.5, 0.999999, 1 - 2**-33, 1.0):
        assert lib.fl_threshold(p) == P.threshold(p)
    assert P.threshold(2**-33) == 1 and P.threshold(1e-3) == 4294967


def test_c_frame_equals_host_frame(lib):
    """fl_frame_build (through a full READ request) gives byte for byte the host's frame."""
    so = lib
    so.fl_frame_build.restype = ctypes.c_size_t

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint8), ("command", ctypes.c_uint8), ("status", ctypes.c_uint8),
                    ("flags", ctypes.c_uint8), ("seq", ctypes.c_uint16), ("length", ctypes.c_uint16)]

    payload = P.read_request(0x1000, 256)
    h = Header(1, P.Command.READ, 0, 0, 0x1234, len(payload))
    scratch = ctypes.create_string_buffer(P.MAX_RAW)
    out = ctypes.create_string_buffer(P.MAX_ENCODED + 1)
    n = so.fl_frame_build(ctypes.byref(h), payload, len(payload), scratch, out, len(out))
    assert out.raw[:n] == P.encode_frame(P.Command.READ, 0x1234, payload)
