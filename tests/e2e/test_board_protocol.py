"""host.board.protocol on its own: the worked example of docs/protocol.md byte for byte, bad
frames of every kind, payload layouts and spec strings."""

import struct
import zlib

import pytest
from cobs import cobs
from hypothesis import given, settings
from hypothesis import strategies as st

from host.board import protocol as P
from host.errors import FlipLabError

# docs/protocol.md, "Worked example": READ 4 bytes at 0x1000, seq 0x0102, reply 11 00 22 33
REQUEST_RAW = bytes.fromhex("01 03 00 00 02 01 08 00 00 10 00 00 04 00 00 00 8f ba 70 85")
REQUEST_WIRE = bytes.fromhex("03 01 03 01 04 02 01 08 01 02 10 01 02 04 01 01 05 8f ba 70 85 00")
REPLY_RAW = bytes.fromhex("01 83 00 00 02 01 04 00 11 00 22 33 8d 80 77 81")
REPLY_WIRE = bytes.fromhex("03 01 83 01 04 02 01 04 02 11 07 22 33 8d 80 77 81 00")


def test_worked_example_request():
    assert zlib.crc32(REQUEST_RAW[:-4]) == 0x8570BA8F
    assert cobs.encode(REQUEST_RAW) + b"\x00" == REQUEST_WIRE
    assert P.encode_frame(P.Command.READ, 0x0102, P.read_request(0x1000, 4)) == REQUEST_WIRE
    f = P.decode_frame(REQUEST_WIRE[:-1])
    assert (f.command, f.seq, f.status, f.response) == (P.Command.READ, 0x0102, 0, False)
    assert f.payload == bytes.fromhex("00 10 00 00 04 00 00 00")


def test_worked_example_reply():
    assert zlib.crc32(REPLY_RAW[:-4]) == 0x8177808D
    assert P.encode_frame(P.Command.READ, 0x0102, bytes.fromhex("11 00 22 33"), response=True) == REPLY_WIRE
    f = P.decode_frame(REPLY_WIRE[:-1])
    assert f.response and f.command == P.Command.READ and f.payload == bytes.fromhex("11002233")


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(list(P.Command)), st.integers(0, 0xFFFF), st.binary(max_size=P.MAX_PAYLOAD),
       st.booleans())
def test_encode_decode_roundtrip(cmd, seq, payload, response):
    wire = P.encode_frame(cmd, seq, payload, response=response)
    assert wire.endswith(b"\x00") and b"\x00" not in wire[:-1]
    assert len(wire) - 1 <= P.MAX_ENCODED
    f = P.decode_frame(wire[:-1])
    assert (f.command, f.seq, f.payload, f.response) == (cmd, seq, payload, response)


def test_every_single_bit_error_is_detected():
    raw = cobs.decode(REQUEST_WIRE[:-1])
    for bit in range(8 * len(raw)):
        bad = bytearray(raw)
        bad[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(P.FrameError) as exc:
            P.decode_frame(cobs.encode(bytes(bad)))
        assert exc.value.reason == "crc"


@pytest.mark.parametrize("encoded,reason", [
    (b"\x05\x01\x02", "cobs"),                                         # code points past the end
    (cobs.encode(b"\x01\x03\x00"), "short"),
    (cobs.encode((b := P.HEADER.pack(2, 1, 0, 0, 1, 0)) + struct.pack("<I", zlib.crc32(b))), "version"),
    (cobs.encode((b := P.HEADER.pack(1, 3, 0, 0, 1, 0xFFFF)) + struct.pack("<I", zlib.crc32(b))), "length"),
])
def test_bad_frames_are_rejected_with_a_reason(encoded, reason):
    with pytest.raises(P.FrameError) as exc:
        P.decode_frame(encoded)
    assert exc.value.reason == reason


def test_oversized_payload_is_refused():
    with pytest.raises(ValueError):
        P.encode_frame(P.Command.WRITE, 1, bytes(P.MAX_PAYLOAD + 1))


def test_payload_layouts():
    assert P.write_request(0x01020304, b"\xaa") == bytes.fromhex("04030201aa")
    assert P.erase_request(4096, 8192) == bytes.fromhex("00100000 00200000")
    assert P.digest_request(1, 2, P.DigestSource.READ) == bytes.fromhex("01000000 02000000 01 000000")
    assert P.Mode(P.Model.BSC, 0x10, 0x20, 0x0102030405060708).pack() == bytes.fromhex(
        "01 000000 10000000 20000000 0807060504030201")


def test_threshold_and_specs():
    assert P.threshold(0.0) == 0 and P.threshold(0.5) == 2**31 and P.threshold(1.0) == 2**32 - 1
    assert P.threshold(1e-3) == round(1e-3 * 2**32)
    assert P.mode_from_spec("none") == P.Mode(P.Model.NONE)
    assert P.mode_from_spec("bsc:1e-3", seed=4) == P.Mode(P.Model.BSC, P.threshold(1e-3), 0, 4)
    assert P.mode_from_spec("asym:0.25,0.5") == P.Mode(P.Model.ASYM, 2**30, 2**31, 0)
    assert P.mode_from_spec("stuck:0.01,0.5,seed=7") == P.Mode(P.Model.STUCK, P.threshold(0.01), 2**31, 7)
    assert P.mode_from_spec("stuck:0.01,0.5", seed=3).seed == 3
    assert P.mode_from_spec("program:0x1c") == P.Mode(P.Model.PROGRAM, 0x1C, 0, 0)
    for bad in ("bsc", "bsc:2", "bsc:x", "asym:0.1", "stuck:0.1,0.5,seed=q", "gauss:1", "program:300",
                "stuck:0.1,0.5,7", "bsc:1e-3,seed=1"):
        with pytest.raises(FlipLabError):
            P.mode_from_spec(bad)


def test_the_board_speaks_the_host_channel_grammar():
    """One grammar: every spec the host accepts maps to a board mode, the board refuses what
    the host refuses, with the host's message, and the help text is the registry's."""
    from host.board.cli import CHANNEL_USAGE
    from host.channels import channel_usage, parse_channel

    assert CHANNEL_USAGE == channel_usage()
    for spec in ("none", "bsc:0.001", "asym:0.25,0.5", "stuck:0.01,0.5,seed=7", " BSC : 1e-3 "):
        channel = parse_channel(spec)
        assert P.mode_from_spec(spec).model.name.lower() == channel.name
    for bad in ("bsc:1e-3,2", "asym:nan,0.1", "stuck:0.1,0.5,device=2"):
        with pytest.raises(FlipLabError) as host_error:
            parse_channel(bad)
        with pytest.raises(FlipLabError) as board_error:
            P.mode_from_spec(bad)
        assert str(board_error.value) == str(host_error.value)


def test_info_and_stats_parsing():
    payload = struct.pack("<BBHIIIHBB12s", 1, 8, 5, 1 << 20, 1234, 0, 4096, 1, 0xFF, b"emu-rram")
    info = P.Info.unpack(payload)
    assert (info.memory_size, info.written_extent, info.model, info.name) == (1 << 20, 1234, P.Model.BSC, "emu-rram")
    assert info.exact_cells is True
    with pytest.raises(P.FrameError):
        P.Info.unpack(payload[:-1])
    stats = P.unpack_stats(struct.pack("<10I", *range(10)))
    assert stats["rx_frames"] == 0 and stats["flips_injected"] == 9


def test_protocol_v2_payloads_byte_for_byte():
    """The accelerator commands' layouts of docs/protocol.md ("Protocol version 2"), by hand."""
    assert P.accel_write_request(P.AccelSpace.PARAMETERS, 0x0102, [1, -2]) == bytes.fromhex(
        "01 00 02 01 01 00 00 00 fe ff ff ff")
    assert P.accel_load_request(0x8000, 4256) == bytes.fromhex("00 80 00 00 a0 10 00 00")
    assert P.accel_run_request(3, 10, [255, -1, 0]) == bytes.fromhex("03 00 0a 00 ff 00 ff ff 00 00")
    run = P.AccelRun.unpack(bytes.fromhex("47 03 00 00 05 00 00 00 0a 00 f6 ff"), 2)
    assert (run.cycles, run.detected, run.outputs) == (839, 5, (10, -10))
    info = P.AccelInfo.unpack(bytes.fromhex("08 10 80 00 00 40 00 00 80 00 00 01 08 10 00 00"))
    assert (info.lanes, info.max_q, info.word_bits, info.payload_bytes, info.activations,
            info.neurons, info.layers, info.act_bits) == (8, 16, 128, 16384, 128, 256, 8, 16)
    with pytest.raises(P.FrameError):
        P.AccelRun.unpack(bytes(9), 1)
    with pytest.raises(ValueError):
        P.accel_write_request(P.AccelSpace.PROGRAM, 0, [0] * (P.ACCEL_WRITE_MAX + 1))
