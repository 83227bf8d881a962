"""FlipLab board protocol, host side: frames and payloads (the wire format of docs/protocol.md).

A frame is ``header (8 bytes) | payload | CRC-32`` COBS-encoded and followed by one 0x00
delimiter. The CRC is CRC-32/ISO-HDLC (``zlib.crc32``) over header and payload, stored
little-endian; COBS is the ``cobs`` package. The firmware (firmware/core) implements the same
definitions in C and the tests check it against these libraries (docs/decisions.md#15).
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum

from cobs import cobs

from host.errors import FlipLabError

PROTOCOL_VERSION = 1  # the frame header's version byte (the frame format of version 1)
#: protocol versions a board may report in INFO: 2 = version 1 plus the accelerator commands
SUPPORTED_VERSIONS = (1, 2)
HEADER = struct.Struct("<BBBBHH")  # version, command, status, flags, seq, length
HEADER_LEN = HEADER.size  # 8 bytes
CRC_LEN = 4
MAX_CHUNK = 4096  # data bytes in one WRITE or READ
MAX_PAYLOAD = 4 + MAX_CHUNK
MAX_RAW = HEADER_LEN + MAX_PAYLOAD + CRC_LEN
MAX_ENCODED = MAX_RAW + math.ceil(MAX_RAW / 254)  # without the 0x00 delimiter
RESPONSE_BIT = 0x80
DELIMITER = b"\x00"


class Command(IntEnum):
    """Request command codes; a response carries ``command | RESPONSE_BIT``."""

    INFO = 0x01
    WRITE = 0x02
    READ = 0x03
    ERASE = 0x04
    DIGEST = 0x05
    SET_MODE = 0x06
    STATS = 0x07
    RESET = 0x08
    # protocol v2: the accelerator (boards with capability CAP_ACCELERATOR)
    ACCEL_INFO = 0x10
    ACCEL_WRITE = 0x11
    ACCEL_LOAD = 0x12
    ACCEL_RUN = 0x13


class Status(IntEnum):
    """Status byte of a response."""

    OK = 0x00
    UNKNOWN_COMMAND = 0x01
    BAD_LENGTH = 0x02
    OUT_OF_RANGE = 0x03
    BAD_VERSION = 0x04
    UNSUPPORTED = 0x05
    BAD_ARGUMENT = 0x06
    NVM_ERROR = 0x07


class Model(IntEnum):
    """Error model / mode selected with SET_MODE."""

    NONE = 0x00
    BSC = 0x01
    ASYM = 0x02
    STUCK = 0x03
    PROGRAM = 0x10


class DigestSource(IntEnum):
    """What DIGEST reads: the stored cells (bypassing an emulated read error model) or a read."""

    CELLS = 0
    READ = 1


CAP_ERROR_MODELS = 0x0001
CAP_PROGRAM_MODE = 0x0002
CAP_EXACT_CELLS = 0x0004
CAP_VOLATILE = 0x0008
CAP_ACCELERATOR = 0x0010  # protocol v2: ACCEL_INFO / ACCEL_WRITE / ACCEL_LOAD / ACCEL_RUN


class AccelSpace(IntEnum):
    """What ACCEL_WRITE fills: the program registers (address layer * 8 + register) or the
    neuron parameters (address neuron * 4 + field), docs/datapath.md "Accelerator top"."""

    PROGRAM = 0
    PARAMETERS = 1


class FrameError(ValueError):
    """A received frame that cannot be used; ``reason`` is cobs, short, crc, version or length."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Frame:
    """A decoded frame. ``command`` is without the response bit."""

    command: int
    seq: int
    status: int
    payload: bytes
    response: bool
    version: int = PROTOCOL_VERSION


def encode_frame(
    command: int,
    seq: int,
    payload: bytes = b"",
    *,
    status: int = 0,
    response: bool = False,
    version: int = PROTOCOL_VERSION,
) -> bytes:
    """Returns the wire bytes of one frame: COBS(header | payload | CRC) + 0x00.

    ``seq`` is 0..65535; ``payload`` at most MAX_PAYLOAD (4100) bytes.
    """
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds the maximum of {MAX_PAYLOAD}")
    cmd = (command | RESPONSE_BIT) if response else command
    body = HEADER.pack(version, cmd, status, 0, seq & 0xFFFF, len(payload)) + bytes(payload)
    raw = body + struct.pack("<I", zlib.crc32(body))
    return cobs.encode(raw) + DELIMITER


def decode_frame(encoded: bytes) -> Frame:
    """Decodes one encoded frame (without its 0x00 delimiter); raises FrameError."""
    try:
        raw = cobs.decode(bytes(encoded))
    except cobs.DecodeError as exc:
        raise FrameError("cobs", f"not a valid COBS frame: {exc}") from None
    if len(raw) < HEADER_LEN + CRC_LEN:
        raise FrameError("short", f"frame of {len(raw)} bytes is shorter than header + CRC")
    body, crc = raw[:-CRC_LEN], struct.unpack("<I", raw[-CRC_LEN:])[0]
    if zlib.crc32(body) != crc:
        raise FrameError("crc", f"CRC mismatch: 0x{zlib.crc32(body):08x} != 0x{crc:08x}")
    version, cmd, status, _flags, seq, length = HEADER.unpack(body[:HEADER_LEN])
    if version != PROTOCOL_VERSION:
        raise FrameError("version", f"protocol version {version}, expected {PROTOCOL_VERSION}")
    if length != len(body) - HEADER_LEN:
        raise FrameError("length", f"length field {length} != {len(body) - HEADER_LEN} payload bytes")
    return Frame(
        command=cmd & ~RESPONSE_BIT,
        seq=seq,
        status=status,
        payload=bytes(body[HEADER_LEN:]),
        response=bool(cmd & RESPONSE_BIT),
        version=version,
    )


# ---------------------------------------------------------------------------- payloads ----


def write_request(offset: int, data: bytes) -> bytes:
    """WRITE payload: u32 offset (bytes) + 1..4096 data bytes."""
    return struct.pack("<I", offset) + bytes(data)


def read_request(offset: int, length: int) -> bytes:
    """READ payload: u32 offset, u16 length (1..4096 bytes), u16 reserved."""
    return struct.pack("<IHH", offset, length, 0)


def erase_request(offset: int, length: int) -> bytes:
    """ERASE payload: u32 offset, u32 length (bytes)."""
    return struct.pack("<II", offset, length)


def digest_request(offset: int, length: int, source: DigestSource = DigestSource.CELLS) -> bytes:
    """DIGEST payload: u32 offset, u32 length, u8 source, 3 reserved bytes."""
    return struct.pack("<IIB3x", offset, length, int(source))


def threshold(p: float) -> int:
    """Probability p in [0, 1] as the 32-bit threshold floor(p * 2^32 + 1/2) (halves round up, as
    in the firmware), capped at 2^32 - 1."""
    if not 0.0 <= p <= 1.0 or math.isnan(p):
        raise FlipLabError(f"probability {p} is outside [0, 1]")
    return min(math.floor(p * 2**32 + 0.5), 2**32 - 1)


@dataclass(frozen=True)
class Mode:
    """SET_MODE payload: model, two 32-bit thresholds (or a status-register value) and a seed."""

    model: Model
    a: int = 0
    b: int = 0
    seed: int = 0

    def pack(self) -> bytes:
        """The 20-byte SET_MODE payload."""
        return struct.pack("<B3xIIQ", int(self.model), self.a, self.b, self.seed & (2**64 - 1))


def mode_from_spec(spec: str, seed: int = 0) -> Mode:
    """The SET_MODE of a channel spec (the host's one grammar, host.channels) or ``program:V``.

    ``none``, ``bsc:P``, ``asym:P01,P10``, ``stuck:F,S[,seed=D]`` as everywhere in FlipLab:
    P01 is the probability that a stored 0 reads as 1, P10 that a stored 1 reads as 0; F the
    fraction of stuck cells, S the share of them stuck at 1. ``seed`` seeds the board's read
    noise and is the stuck-at device seed unless the spec gives one. ``program:V`` (a board
    mode, not a channel) writes the byte V to a real chip's status register.
    """
    name, _, body = spec.partition(":")
    if name.strip().lower() == "program":
        try:
            value = int(body, 0)
        except ValueError:
            value = -1
        if not 0 <= value <= 255:
            raise FlipLabError(f"bad mode {spec!r}: program:V needs a byte value V in 0..255")
        return Mode(Model.PROGRAM, value, 0, 0)
    from host.channels import parse_spec  # the channels need numpy; the protocol does not

    parsed = parse_spec(spec)
    numbers = parsed.numbers
    family = parsed.family.name
    if family == "none":
        return Mode(Model.NONE, seed=seed)
    if family == "bsc":
        return Mode(Model.BSC, threshold(numbers[0]), 0, seed)
    if family == "asym":
        return Mode(Model.ASYM, threshold(numbers[0]), threshold(numbers[1]), seed)
    if family == "stuck":
        return Mode(Model.STUCK, threshold(numbers[0]), threshold(numbers[1]),
                    parsed.given.get("seed", seed))
    raise FlipLabError(f"channel {family!r} has no board mode; the board models "
                       f"none, bsc, asym and stuck")


@dataclass(frozen=True)
class Info:
    """INFO response (32 bytes)."""

    protocol_version: int
    word_bits: int
    capabilities: int
    memory_size: int  # bytes
    written_extent: int  # bytes: end of the highest byte written since the last full erase
    erase_block: int  # bytes; 0 = writes overwrite
    max_chunk: int  # bytes per READ/WRITE
    model: Model
    erased_value: int
    name: str

    FORMAT = struct.Struct("<BBHIIIHBB12s")

    @classmethod
    def unpack(cls, payload: bytes) -> Info:
        """Parses the INFO payload; raises FrameError if it is not 32 bytes."""
        if len(payload) != cls.FORMAT.size:
            raise FrameError("length", f"INFO payload of {len(payload)} bytes, expected {cls.FORMAT.size}")
        ver, bits, caps, size, extent, blk, chunk, model, erased, name = cls.FORMAT.unpack(payload)
        try:
            model_enum = Model(model)
        except ValueError:
            model_enum = Model.NONE
        return cls(ver, bits, caps, size, extent, blk, chunk, model_enum, erased,
                   name.rstrip(b"\x00").decode("ascii", "replace"))

    @property
    def exact_cells(self) -> bool:
        """True if DIGEST(CELLS) reads the stored cells without the emulated error model."""
        return bool(self.capabilities & CAP_EXACT_CELLS)


STATS_FIELDS = (
    "rx_frames", "rx_crc_errors", "rx_cobs_errors", "rx_oversize", "rx_timeouts",
    "rx_bad_requests", "tx_frames", "bytes_written", "bytes_read", "flips_injected",
)


def unpack_stats(payload: bytes) -> dict[str, int]:
    """Parses the STATS payload (10 little-endian u32 counters) into a dict by field name."""
    if len(payload) != 4 * len(STATS_FIELDS):
        raise FrameError("length", f"STATS payload of {len(payload)} bytes, expected {4 * len(STATS_FIELDS)}")
    return dict(zip(STATS_FIELDS, struct.unpack(f"<{len(STATS_FIELDS)}I", payload)))


# ------------------------------------------------------------------ protocol v2 ----

ACCEL_WRITE_MAX = MAX_CHUNK // 4  # u32 values in one ACCEL_WRITE


@dataclass(frozen=True)
class AccelInfo:
    """ACCEL_INFO response (16 bytes): the accelerator's build parameters."""

    lanes: int
    max_q: int  # widest weight field, bits
    word_bits: int  # payload RAM word width
    payload_bytes: int  # payload RAM size
    activations: int  # activation buffer entries (widest layer)
    neurons: int  # neuron parameter records (all layers)
    layers: int  # program layers
    act_bits: int  # width of an activation / output entry

    FORMAT = struct.Struct("<BBHIHHBBxx")

    @classmethod
    def unpack(cls, payload: bytes) -> AccelInfo:
        """Parses the ACCEL_INFO payload; raises FrameError if it is not 16 bytes."""
        if len(payload) != cls.FORMAT.size:
            raise FrameError("length", f"ACCEL_INFO payload of {len(payload)} bytes, expected {cls.FORMAT.size}")
        return cls(*cls.FORMAT.unpack(payload))


def accel_write_request(space: AccelSpace, first: int, values: list[int]) -> bytes:
    """ACCEL_WRITE payload: u8 space, u8 reserved, u16 first address, 1..1024 u32 values (each
    taken modulo 2^32, so negative numbers are their two's complement)."""
    if not 1 <= len(values) <= ACCEL_WRITE_MAX:
        raise ValueError(f"ACCEL_WRITE takes 1 to {ACCEL_WRITE_MAX} values, not {len(values)}")
    return struct.pack("<BxH", int(space), first) + struct.pack(
        f"<{len(values)}I", *(int(v) & 0xFFFFFFFF for v in values))


def accel_load_request(offset: int, length: int) -> bytes:
    """ACCEL_LOAD payload: u32 offset, u32 length (bytes of the board memory to copy into the
    accelerator's payload RAM, from its byte 0)."""
    return struct.pack("<II", offset, length)


def accel_run_request(layers: int, outputs: int, inputs: list[int]) -> bytes:
    """ACCEL_RUN payload: u8 layers, u8 reserved, u16 output entries, one i16 per input entry."""
    return struct.pack(f"<BxH{len(inputs)}h", layers, outputs, *(int(v) for v in inputs))


@dataclass(frozen=True)
class AccelRun:
    """ACCEL_RUN response: clock cycles of the inference, weights whose parity check failed,
    and the output vector (signed entries)."""

    cycles: int
    detected: int
    outputs: tuple[int, ...]

    @classmethod
    def unpack(cls, payload: bytes, outputs: int) -> AccelRun:
        """Parses the ACCEL_RUN payload of a request for `outputs` entries."""
        if len(payload) != 8 + 2 * outputs:
            raise FrameError("length", f"ACCEL_RUN payload of {len(payload)} bytes, expected {8 + 2 * outputs}")
        cycles, detected = struct.unpack("<II", payload[:8])
        return cls(cycles, detected, struct.unpack(f"<{outputs}h", payload[8:]))
